"""CompiledLoss: compiled values and gradients match eager ones; other batch sizes run eagerly; a compiled run
trains to the eager run's weights."""

from pathlib import Path

import pytest
import torch
from helpers import compose_train

from diffkit.train import run
from diffkit.training.compiled import CompiledLoss


def squared_error(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (net(x) - x.flip(-1)).square().mean(-1)


def test_compiled_loss_matches_eager_and_skips_other_batch_sizes() -> None:
    torch.manual_seed(0)
    net, x = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.SiLU(), torch.nn.Linear(16, 6)), torch.randn(8, 6)
    loss = CompiledLoss(squared_error)
    compiled = loss(8, net, x)
    compiled.mean().backward()
    compiled_grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    eager = squared_error(net, x)
    eager.mean().backward()
    assert loss.batch_size == 8 and loss.compiled is not None
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    for got, want in zip(compiled_grads, [p.grad for p in net.parameters()], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)

    def fail(*args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("a ragged batch must not use (or recompile) the compiled graph")

    loss.compiled = fail
    torch.testing.assert_close(loss(3, net, x[:3]), squared_error(net, x[:3]))  # ragged batch: eager
    with pytest.raises(AssertionError, match="ragged"):
        loss(8, net, x)
    assert CompiledLoss(fail, enabled=False).compiled is None


def test_a_compiled_training_run_reaches_the_eager_runs_weights(tmp_path: Path) -> None:
    common = ["recipe=smoke/image", "eval.before_training=false", "eval.after_training=false"]
    common += ["backbone.channel_mult=[1]", "backbone.attn_levels=[]", "trainer.max_steps=4"]  # a small graph: fast
    weights = {}
    for flag in (False, True):
        out = tmp_path / str(flag)
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        run(compose_train([*common, f"module.compile_training={flag}"], out))
        assert (torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0) == flag  # the compiled path ran
        weights[flag] = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert weights[True].keys() == weights[False].keys()  # compiling does not rename the saved parameters
    for name, eager in weights[False].items():
        torch.testing.assert_close(weights[True][name], eager, rtol=1e-3, atol=1e-4, msg=name)
