"""Samplers for masked (absorbing-state) discrete diffusion over ids [B,L], walking a decreasing σ grid ending in 0.

The denoiser returns log-probs [B,L,V] of the clean tokens (e.g. SubsPrecond). A masked token at σ_i stays masked
at σ_(i+1) with probability p(σ_(i+1)) / p(σ_i), p(σ) = 1 - e^(-σ); otherwise it is replaced by a draw from the
denoiser. Every step draws the same two uniforms per position from `generator`, whichever sampler runs, so the
cached and naive samplers consume identical randomness and give identical sequences.

The cached sampler re-evaluates only the rows whose tokens changed in the previous step, calling the denoiser on
the sub-batch x[rows], sigma[rows], {k: v[rows]} of cond. The denoiser must therefore be row-wise: a wrapper that
closes over per-example tensors (replace_tokens) exposes `select_rows(rows) -> Denoiser` for its sub-batch.

References:
    Austin et al. 2021 (D3PM); Sahoo et al. 2024 (MDLM, ancestral sampler and its cache, §3.5 / App. B);
    Campbell et al. 2022 and Lou et al. 2024 (τ-leaping for discrete diffusion).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Generator, Tensor

from diffkit.core.types import Callback, Cond, Denoiser


def _check(x: Tensor, sigmas: Tensor) -> None:
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be a 1-d grid of n + 1 >= 2 values, got shape {tuple(sigmas.shape)}")
    if bool((sigmas[1:] > sigmas[:-1]).any()) or float(sigmas[-1]) != 0.0:
        raise ValueError("sigmas must be non-increasing and end in 0 (e.g. loglinear_sigmas(n))")
    if x.ndim != 2 or x.is_floating_point():
        raise ValueError(f"x must be integer ids [B, L], got {x.dtype} {tuple(x.shape)}")


def _uniform(shape: torch.Size, x: Tensor, generator: Generator | None) -> Tensor:
    device = generator.device if generator is not None else x.device
    return torch.rand(shape, generator=generator, device=device, dtype=torch.float64).to(x.device)


def _draw_tokens(log_probs: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draw of one token per row of log_probs [N,V] with uniforms u [N] in [0, 1)."""
    cdf = log_probs.double().exp().cumsum(dim=-1)
    ids = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).squeeze(-1)
    return ids.clamp_max(log_probs.shape[-1] - 1)


def _unmask_step(x: Tensor, log_probs: Tensor, p_unmask: Tensor, mask_id: int, generator: Generator | None) -> Tensor:
    """Reveal each masked token with probability p_unmask, drawing it from log_probs [B,L,V]."""
    u_move, u_token = _uniform(x.shape, x, generator), _uniform(x.shape, x, generator)
    move = (x == mask_id) & (u_move < p_unmask)
    out = x.clone()
    if bool(move.any()):
        out[move] = _draw_tokens(log_probs[move], u_token[move]).to(x.dtype)
    return out


def _mask_prob(sigma: Tensor) -> Tensor:
    return -torch.expm1(-sigma.double())


def _select(denoiser: Denoiser, cond: Cond | None, rows: Tensor) -> tuple[Denoiser, Cond | None]:
    """The denoiser and cond restricted to batch rows (cond tensors are batch-first)."""
    select = getattr(denoiser, "select_rows", None)
    sub = select(rows) if select is not None else denoiser
    return sub, None if cond is None else {key: value[rows] for key, value in cond.items()}


def _walk(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    p_unmask_fn: Callable[[Tensor, Tensor], Tensor],
    *,
    mask_id: int,
    cond: Cond | None,
    generator: Generator | None,
    callback: Callback | None,
    cache: bool,
) -> Tensor:
    _check(x, sigmas)
    log_probs: Tensor | None = None
    stale = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)  # rows whose cached log-probs are out of date
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i].expand(x.shape[0]).float()
        if log_probs is None or not cache or bool(stale.all()):
            log_probs, n_rows = denoiser(x, sigma, cond), x.shape[0]
        elif bool(stale.any()):
            # Per-sequence cache: only rows that changed since their last evaluation see the network; index_copy
            # returns a new tensor, so a callback that kept the previous log-probs sees them unchanged.
            rows = stale.nonzero().squeeze(1)
            sub, sub_cond = _select(denoiser, cond, rows)
            log_probs = log_probs.index_copy(0, rows, sub(x[rows], sigma[rows], sub_cond))
            n_rows = rows.numel()
        else:
            n_rows = 0
        p_unmask = p_unmask_fn(sigmas[i], sigmas[i + 1])
        x_next = _unmask_step(x, log_probs, p_unmask, mask_id, generator)
        stale = (x_next != x).any(dim=1)
        x = x_next
        if callback is not None:
            callback({"i": i, "sigma": sigmas[i], "sigma_next": sigmas[i + 1], "x": x, "denoised": log_probs,
                      "network_call": n_rows > 0, "rows_evaluated": n_rows})  # fmt: skip
    return x


def _ancestral_p(sigma: Tensor, sigma_next: Tensor) -> Tensor:
    """Exact reverse posterior: P(unmask in (σ_next, σ]) = (p(σ) - p(σ_next)) / p(σ)."""
    p, p_next = _mask_prob(sigma), _mask_prob(sigma_next)
    return (p - p_next) / p.clamp_min(1e-30)


def _tau_leaping_p(sigma: Tensor, sigma_next: Tensor) -> Tensor:
    """τ-leaping: the unmasking rate e^(-σ) / (1 - e^(-σ)) per unit σ frozen at σ over the step."""
    if float(sigma_next) == 0.0:
        return torch.ones((), dtype=torch.float64, device=sigma.device)
    rate = torch.exp(-sigma.double()) / _mask_prob(sigma).clamp_min(1e-30)
    return -torch.expm1(-(sigma - sigma_next).double() * rate)


@torch.no_grad()
def sample_masked_ancestral(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    mask_id: int,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Ancestral unmasking with the exact posterior q(x_s | x_t, x0 ~ D) (MDLM eq. 7); one network call per step."""
    return _walk(denoiser, x, sigmas, _ancestral_p, mask_id=mask_id, cond=cond, generator=generator,
                 callback=callback, cache=False)  # fmt: skip


@torch.no_grad()
def sample_masked_cached(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    mask_id: int,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Ancestral unmasking with a per-sequence cache: a row is re-evaluated only if it changed (MDLM App. B, per row).

    Assumes a σ-independent, row-wise denoiser (the exact absorbing-state posterior; MDLM's time-free nets, DiT
    with time_conditioning=False): then equal token for token to sample_masked_ancestral for the same generator,
    up to last-bit differences of batched kernels on a sub-batch. With a σ-conditioned net it is an approximation.
    """
    return _walk(denoiser, x, sigmas, _ancestral_p, mask_id=mask_id, cond=cond, generator=generator,
                 callback=callback, cache=True)  # fmt: skip


@torch.no_grad()
def sample_tau_leaping(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    mask_id: int,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """τ-leaping for the absorbing process: jump probability 1 - exp(-Δσ · rate(σ)) (Campbell et al. 2022)."""
    return _walk(denoiser, x, sigmas, _tau_leaping_p, mask_id=mask_id, cond=cond, generator=generator,
                 callback=callback, cache=False)  # fmt: skip
