"""gather_cat without a process group, and in a real 2-process gloo group with unequal shards (no hang)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from helpers import ROOT

from diffkit.training.distributed import gather_cat, rank_and_world


def test_without_a_process_group_it_is_the_identity() -> None:
    t = torch.arange(5.0)
    assert rank_and_world() == (0, 1)
    assert gather_cat(t) is t


def test_two_gloo_ranks_with_unequal_shards(tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, torch, torch.distributed as dist, torch.multiprocessing as mp
        sys.path.insert(0, {str(ROOT)!r})
        from diffkit.training.distributed import gather_cat

        def worker(rank):
            dist.init_process_group("gloo", init_method="file://{tmp_path / "rdzv"}", rank=rank, world_size=2)
            local = torch.full((rank + 1,), float(rank))   # rank 0: 1 value, rank 1: 2 values
            out = gather_cat(local)
            assert out.tolist() == [0.0, 1.0, 1.0], out
            empty = gather_cat(torch.zeros(0) if rank == 0 else torch.ones(3))  # an empty shard still joins
            assert empty.tolist() == [1.0, 1.0, 1.0], empty
            dist.destroy_process_group()

        if __name__ == "__main__":
            mp.spawn(worker, nprocs=2)
            print("ok")
    """)
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_likelihood_over_two_gloo_ranks_with_unequal_shards(tmp_path: Path) -> None:
    """evaluate_likelihood on 3 batches (2 + 2 + 1 examples) over 2 ranks: rank 0 takes batches 0 and 2, rank 1
    batch 1; both ranks return the same gathered result over all 5 examples, and nobody hangs."""
    script = tmp_path / "ddp_lik.py"
    script.write_text(
        textwrap.dedent(f"""
        import json, pathlib, sys, torch, torch.distributed as dist, torch.multiprocessing as mp
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests" / "core")!r}]
        from types import SimpleNamespace
        from torch import nn
        from gmm import gaussian_denoiser
        from diffkit.core.processes import GaussianProcess
        from diffkit.training.evaluation import evaluate_likelihood

        class Exact(nn.Module):  # the exact denoiser of N(0.2, 0.5² I) data as the "EMA model"
            def __init__(self):
                super().__init__()
                self.d = gaussian_denoiser(0.2, 0.5)
            def forward(self, x, sigma, cond=None):
                return self.d(x, sigma)

        class Holder(nn.Module):
            def __init__(self):
                super().__init__()
                self.ema = SimpleNamespace(module=Exact())
                self.process = GaussianProcess()
                self.modality = SimpleNamespace(encode=lambda b: (b["x"], {{}}), example_shape=lambda: (3,))
                self.device = torch.device("cpu")

        def worker(rank):
            dist.init_process_group("gloo", init_method="file://{tmp_path / "rdzv"}", rank=rank, world_size=2)
            g = torch.Generator().manual_seed(0)
            batches = [{{"x": 0.2 + 0.5 * torch.randn(n, 3, generator=g, dtype=torch.float64)}} for n in (2, 2, 1)]
            out = evaluate_likelihood(Holder(), batches, bin_width=None, steps=32, seed=0)
            pathlib.Path({str(tmp_path)!r}, f"rank{{rank}}.json").write_text(json.dumps(out))
            dist.destroy_process_group()

        if __name__ == "__main__":
            mp.spawn(worker, nprocs=2)
    """)
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1 and r0["n_examples"] == 5
    # For isotropic Gaussian data ∂D/∂x = c·I, so a Rademacher probe gives the exact trace: only the ODE error
    # (32 RK4 steps) and the N(0, σ_max²) prior remain; compare with the closed-form density of the same 5 points.
    g = torch.Generator().manual_seed(0)
    x = torch.cat([0.2 + 0.5 * torch.randn(n, 3, generator=g, dtype=torch.float64) for n in (2, 2, 1)])
    exact = -torch.distributions.Normal(0.2, (0.25 + 0.002**2) ** 0.5).log_prob(x).sum(1).mean()
    assert abs(r0["nll_nats"] - float(exact)) < 0.02, (r0, float(exact))
