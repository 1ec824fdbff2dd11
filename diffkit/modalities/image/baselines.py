"""Closed-form image baselines a diffusion model has to beat: Gaussian pixel models and Wiener inpainting.

References:
    Rasmussen & Williams 2006, eq. A.6 (conditional of a joint Gaussian = the Wiener / kriging estimate).
"""

from __future__ import annotations

import torch
from torch import Generator, Tensor


def fit_gaussian(images: Tensor, ridge: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Mean [D] and covariance [D,D] (float64, ridge·I added) of flattened images [N,*S]."""
    flat = images.reshape(len(images), -1).double()
    cov = torch.cov(flat.T)
    return flat.mean(0), cov + ridge * torch.eye(cov.shape[0], dtype=cov.dtype)


def sample_gaussian(images: Tensor, n: int, *, generator: Generator | None = None, low_rank: bool = False) -> Tensor:
    """n samples [n,*S] from one Gaussian fitted to all pixels of images [N,*S] (full covariance). low_rank: the
    exact factor of the sample covariance, μ + (X - μ)ᵀ z / √(N-1) with z ~ N(0, I_N), O(N·D) instead of O(D³) when
    N < D pixels (the same distribution without the ridge)."""
    if low_rank:
        flat = images.reshape(len(images), -1).double()
        centred = (flat - flat.mean(0)) / max(len(flat) - 1, 1) ** 0.5
        z = torch.randn(n, len(flat), generator=generator, dtype=torch.float64)
        return (flat.mean(0) + z @ centred).float().reshape(n, *images.shape[1:])
    mean, cov = fit_gaussian(images)
    z = torch.randn(n, mean.numel(), generator=generator, dtype=torch.float64)
    samples = mean + z @ torch.linalg.cholesky(cov).T
    return samples.float().reshape(n, *images.shape[1:])


def sample_class_gaussians(
    images: Tensor, labels: Tensor, n: int, *, generator: Generator | None = None, low_rank: bool = False
) -> Tensor:
    """n samples [n,*S] with labels 0, 1, ..., C-1, 0, ... from one full-covariance Gaussian per class."""
    classes = torch.unique(labels)
    wanted = classes[torch.arange(n) % len(classes)]
    out = torch.empty(n, *images.shape[1:])
    for c in classes:
        idx = (wanted == c).nonzero().squeeze(1)
        out[idx] = sample_gaussian(images[labels == c], len(idx), generator=generator, low_rank=low_rank)
    return out


def wiener_fill(known: Tensor, mask: Tensor, mean: Tensor, cov: Tensor) -> Tensor:
    """Unknown pixels (mask 0) set to E[x_u | x_k] = μ_u + Σ_uk Σ_kk⁻¹ (x_k − μ_k) under N(mean, cov); [N,*S]."""
    flat, keep = known.reshape(len(known), -1).double(), mask.reshape(len(mask), -1).bool()
    out = flat.clone()
    for pattern in torch.unique(keep, dim=0):  # one linear solve per distinct mask
        rows = (keep == pattern).all(dim=1)
        k, u = pattern.nonzero().squeeze(1), (~pattern).nonzero().squeeze(1)
        if len(u) == 0:
            continue
        if len(k) == 0:
            out[rows.nonzero().squeeze(1)[:, None], u] = mean[u]
            continue
        gain = torch.linalg.solve(cov[k][:, k], cov[k][:, u])  # Σ_kk⁻¹ Σ_ku  [K,U]
        residual = flat[rows][:, k] - mean[k]
        out[rows.nonzero().squeeze(1)[:, None], u] = mean[u] + residual @ gain
    return out.to(known.dtype).reshape(known.shape)
