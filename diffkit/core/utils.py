"""Small tensor helpers used across the core: rank-agnostic broadcasting and seeded noise."""

from __future__ import annotations

import torch
from torch import Generator, Tensor


def append_dims(t: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton dims so that t [B] broadcasts against a tensor of rank ndim."""
    missing = ndim - t.ndim
    if missing < 0:
        raise ValueError(f"append_dims: tensor has rank {t.ndim}, more than the target rank {ndim}")
    return t[(...,) + (None,) * missing]


def to_d(x: Tensor, sigma: Tensor, denoised: Tensor) -> Tensor:
    """Probability-flow ODE derivative dx/dσ = (x - D(x, σ)) / σ (Karras et al. 2022, eq. 3)."""
    return (x - denoised) / append_dims(sigma, x.ndim)


def randn_like(x: Tensor, generator: Generator | None = None) -> Tensor:
    """Standard normal noise shaped like x, drawn from `generator` (on its own device) when given."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def mean_flat(x: Tensor) -> Tensor:
    """Mean over every dimension but the batch: [B,*S] -> [B]."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def check_grid(x: Tensor, sigmas: Tensor) -> None:
    """Raise ValueError unless sigmas is a non-increasing 1-d grid ending in 0 and x is batched."""
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be a 1-d grid of n + 1 >= 2 values, got shape {tuple(sigmas.shape)}")
    if bool((sigmas[1:] > sigmas[:-1]).any()) or float(sigmas[-1]) != 0.0:
        raise ValueError("sigmas must be non-increasing and end in 0 (e.g. karras_sigmas(n, ...))")
    if x.ndim < 2:
        raise ValueError(f"x must be batched [B, ...], got shape {tuple(x.shape)}")


def sigma_rows(sigmas: Tensor, x: Tensor) -> list[Tensor]:
    """Per-step σ [B] views in x's dtype/device, made once per call (no allocation inside the sampling loop)."""
    return list(sigmas.to(device=x.device, dtype=x.dtype)[:, None].expand(-1, x.shape[0]).unbind(0))
