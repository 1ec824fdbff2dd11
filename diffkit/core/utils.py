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
