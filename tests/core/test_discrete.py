"""Masked discrete diffusion: the NELBO of the exact denoiser is the entropy, SUBS, samplers, cache, infilling."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from diffkit.core.guidance import replace_tokens
from diffkit.core.losses import MaskedNELBO
from diffkit.core.precond import SubsPrecond
from diffkit.core.processes import MaskingProcess
from diffkit.core.samplers.discrete import sample_masked_ancestral, sample_masked_cached, sample_tau_leaping
from diffkit.core.schedules import loglinear_noise, loglinear_sigmas

MASK = 0
PROBS = torch.tensor([0.0, 0.5, 0.25, 0.125, 0.0625, 0.0625], dtype=torch.float64)  # id 0 is [MASK]
ENTROPY = float(-(PROBS[1:] * PROBS[1:].log()).sum())  # 1.875 bits = 1.2997 nats


class MarginalNet(nn.Module):
    """Raw logits log p(v) at every position: the exact denoiser for i.i.d. tokens, once wrapped in SUBS."""

    def __init__(self, probs: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", probs.clamp_min(1e-30).log().float())
        self.calls = 0

    def forward(self, x, c_noise=None, cond=None):
        self.calls += 1
        return self.logits.expand(*x.shape, -1)


def _iid(n: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(PROBS.float(), n * length, replacement=True, generator=g).reshape(n, length)


def test_loglinear_schedule_matches_its_definition() -> None:
    t = torch.tensor([0.0, 0.25, 0.5, 0.999], dtype=torch.float64)
    sigma, dsigma = loglinear_noise(t, eps=1e-3)
    torch.testing.assert_close(MaskingProcess.mask_prob(sigma), (1 - 1e-3) * t)  # mask prob linear in t
    torch.testing.assert_close((dsigma / torch.expm1(sigma))[1:], 1 / t[1:])  # MDLM weight = 1/t
    grid = loglinear_sigmas(16)
    assert grid.shape == (17,) and float(grid[-1]) == 0.0 and bool((grid[1:] <= grid[:-1]).all())
    assert abs(float(grid[0]) - math.log(1e3)) < 1e-4


def test_masking_process_masks_with_probability_one_minus_exp_minus_sigma() -> None:
    process = MaskingProcess(mask_id=MASK)
    x0 = torch.ones(20_000, 8, dtype=torch.long)
    sigma = torch.full((20_000,), 0.7)
    x = process.add_noise(x0, sigma, torch.Generator().manual_seed(0))
    frac = (x == MASK).float().mean().item()
    assert abs(frac - (1 - math.exp(-0.7))) < 0.01
    assert bool(((x == MASK) | (x == x0)).all())
    assert bool((process.prior((2, 5)) == MASK).all())


def test_subs_zero_mask_mass_and_carry_over() -> None:
    denoiser = SubsPrecond(MarginalNet(PROBS), mask_id=MASK)
    x = torch.tensor([[0, 3, 0, 5]])
    logp = denoiser(x, torch.tensor([1.0]))
    assert logp.shape == (1, 4, 6)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(1, 4))
    assert bool((logp[..., MASK] == float("-inf")).all())
    assert logp[0, 1, 3] == 0 and logp[0, 3, 5] == 0  # unmasked tokens are copied
    torch.testing.assert_close(logp[0, 0].exp().double(), PROBS, atol=1e-6, rtol=0)


@pytest.mark.parametrize("antithetic", [True, False])
def test_nelbo_of_the_exact_denoiser_is_the_entropy(antithetic: bool) -> None:
    """For i.i.d. tokens the exact denoiser is the marginal, and NELBO (nats/token) = H up to O(eps + t_min)."""
    loss = MaskedNELBO(MaskingProcess(mask_id=MASK), loglinear_noise, antithetic=antithetic)
    x0 = _iid(8192, 32)
    g = torch.Generator().manual_seed(1)
    exact = loss.evaluate(SubsPrecond(MarginalNet(PROBS), MASK), x0, n_t=4, generator=g)
    assert exact.shape == (8192,)
    assert abs(exact.mean().item() - ENTROPY) / ENTROPY < 0.01, (exact.mean().item(), ENTROPY)
    # A wrong model pays the cross-entropy: uniform over the 5 tokens costs log 5 > H.
    uniform = torch.tensor([0.0] + [0.2] * 5, dtype=torch.float64)
    wrong = loss.evaluate(SubsPrecond(MarginalNet(uniform), MASK), x0, n_t=4, generator=g)
    assert abs(wrong.mean().item() - math.log(5)) / math.log(5) < 0.01


def test_nelbo_is_differentiable_and_finite() -> None:
    net = nn.Sequential(nn.Embedding(6, 16), nn.Linear(16, 6))
    denoiser = SubsPrecond(_Wrap(net), MASK)
    loss = MaskedNELBO(MaskingProcess(mask_id=MASK), loglinear_noise)(denoiser, _iid(16, 8))
    loss.mean().backward()
    assert bool(loss.isfinite().all()) and all(p.grad is not None and p.grad.isfinite().all() for p in net.parameters())


class _Wrap(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x, c_noise=None, cond=None):
        return self.net(x)


class ContextNet(nn.Module):
    """σ-independent but context-dependent logits, so cached reuse is only valid when x did not change."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Embedding(6, 8), nn.Flatten(1), nn.Linear(8 * 12, 12 * 6))
        self.calls = 0

    def forward(self, x, c_noise=None, cond=None):
        self.calls += 1
        return self.net(x).reshape(*x.shape, 6)


SAMPLERS = [sample_masked_ancestral, sample_masked_cached, sample_tau_leaping]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samplers_unmask_everything_and_match_the_marginal(sampler) -> None:
    denoiser = SubsPrecond(MarginalNet(PROBS), MASK)
    x = MaskingProcess(mask_id=MASK).prior((2000, 12))
    out = sampler(denoiser, x, loglinear_sigmas(20), mask_id=MASK, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.long and bool((out != MASK).all())
    freq = torch.bincount(out.flatten(), minlength=6).double() / out.numel()
    torch.testing.assert_close(freq, PROBS, atol=0.01, rtol=0)
    again = sampler(denoiser, x, loglinear_sigmas(20), mask_id=MASK, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_cached_sampler_equals_naive_with_fewer_network_calls() -> None:
    net = ContextNet()
    denoiser = SubsPrecond(net, MASK)
    x, sigmas = MaskingProcess(mask_id=MASK).prior((4, 12)), loglinear_sigmas(256)
    naive = sample_masked_ancestral(denoiser, x, sigmas, mask_id=MASK, generator=torch.Generator().manual_seed(3))
    naive_calls, net.calls = net.calls, 0
    cached = sample_masked_cached(denoiser, x, sigmas, mask_id=MASK, generator=torch.Generator().manual_seed(3))
    assert torch.equal(naive, cached)
    assert naive_calls == 256 and net.calls <= 4 * 12 + 1 < naive_calls


class RowHashNet(nn.Module):
    """Row-wise, context-dependent logits computed exactly (integer hash of the row, elementwise sin), + cond label."""

    def __init__(self, length: int = 12, vocab: int = 6) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("primes", torch.randint(1, 1000, (length,), generator=g))
        self.register_buffer("freq", torch.rand(length, vocab, generator=g, dtype=torch.float64))
        self.register_buffer("phase", 6.3 * torch.rand(length, vocab, generator=g, dtype=torch.float64))
        self.vocab, self.rows = vocab, []

    def forward(self, x, c_noise=None, cond=None):
        self.rows.append(x.shape[0])
        h = (x * self.primes).sum(-1) % 10_007  # exact integers: no batch-size-dependent rounding
        logits = 3 * torch.sin(h[:, None, None].double() * self.freq + self.phase)
        if cond is not None:
            assert cond["label"].shape[0] == x.shape[0]
            logits = logits + 6 * nn.functional.one_hot(cond["label"], self.vocab)[:, None, :]
        return logits


def _run(sampler, denoiser, x, steps: int, cond=None) -> tuple[torch.Tensor, list[dict]]:
    events: list[dict] = []
    out = sampler(denoiser, x, loglinear_sigmas(steps), mask_id=MASK, cond=cond,
                  generator=torch.Generator().manual_seed(5), callback=events.append)  # fmt: skip
    return out, events


def test_per_sequence_cache_equals_naive_and_evaluates_only_changed_rows() -> None:
    net = RowHashNet()
    denoiser, batch, length, steps = SubsPrecond(net, MASK), 8, 12, 512
    x = MaskingProcess(mask_id=MASK).prior((batch, length))
    naive, naive_events = _run(sample_masked_ancestral, denoiser, x, steps)
    assert net.rows == [batch] * steps and all(e["rows_evaluated"] == batch for e in naive_events)
    net.rows = []
    cached, events = _run(sample_masked_cached, denoiser, x, steps)
    assert torch.equal(naive, cached) and bool((cached != MASK).all())
    rows = [e["rows_evaluated"] for e in events]
    assert len(events) == steps  # the callback runs on every step, evaluated or not
    assert [n for n in rows if n > 0] == net.rows and all(
        e["network_call"] == (e["rows_evaluated"] > 0) for e in events
    )
    # Each row is stale at most once per revealed token, so at most batch · (length + 1) row evaluations;
    # a batch-level cache evaluates all 8 rows whenever any one changed, several hundred here.
    assert sum(rows) <= batch * (length + 1) < steps * batch
    assert any(0 < n < batch for n in rows)  # sub-batches really happened
    for e, prev in zip(events[1:], events[:-1], strict=True):  # a kept row's log-probs are reused, not recomputed
        if e["rows_evaluated"] == 0:
            assert e["denoised"] is prev["denoised"]


def test_per_sequence_cache_slices_cond_by_row() -> None:
    net = RowHashNet()
    denoiser, batch, steps = SubsPrecond(net, MASK), 8, 256
    x = MaskingProcess(mask_id=MASK).prior((batch, 12))
    cond = {"label": torch.arange(batch) % 5 + 1}
    naive, _ = _run(sample_masked_ancestral, denoiser, x, steps, cond)
    net.rows = []
    cached, events = _run(sample_masked_cached, denoiser, x, steps, cond)
    assert any(0 < n < batch for n in net.rows)
    assert torch.equal(naive, cached)
    mode = torch.mode(cached, dim=1).values  # the label's +6 logit makes it each row's most frequent token
    assert torch.equal(mode, cond["label"])


def test_per_sequence_cache_with_replace_tokens_selects_rows() -> None:
    net = RowHashNet()
    known = torch.randint(1, 6, (8, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(8, 12, dtype=torch.bool)
    mask[:, :3], mask[torch.arange(8), torch.arange(8) + 3] = True, True  # a prefix and one row-specific token
    guided = replace_tokens(SubsPrecond(net, MASK), known, mask)
    x = MaskingProcess(mask_id=MASK).prior((8, 12))
    naive, _ = _run(sample_masked_ancestral, guided, x, 256)
    net.rows = []
    cached, _ = _run(sample_masked_cached, guided, x, 256)
    assert any(0 < n < 8 for n in net.rows)
    assert torch.equal(naive, cached) and torch.equal(cached[mask], known[mask])


def test_replace_tokens_infilling_never_changes_given_tokens() -> None:
    denoiser = SubsPrecond(ContextNet(), MASK)
    known = torch.randint(1, 6, (8, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(8, 12, dtype=torch.bool)
    mask[:, :3], mask[:, -2:], mask[:, 6] = True, True, True  # prefix, suffix, one span token
    guided = replace_tokens(denoiser, known, mask)
    for sampler in SAMPLERS:
        out = sampler(guided, MaskingProcess(mask_id=MASK).prior((8, 12)), loglinear_sigmas(10), mask_id=MASK,
                      generator=torch.Generator().manual_seed(1))  # fmt: skip
        assert torch.equal(out[mask], known[mask]) and bool((out != MASK).all())
    seen = []
    replace_tokens(lambda x, s, c=None: seen.append(x) or denoiser(x, s, c), known, mask)(
        torch.zeros(8, 12, dtype=torch.long), torch.ones(8)
    )
    assert torch.equal(seen[0][mask], known[mask])  # the model sees the given tokens, too
