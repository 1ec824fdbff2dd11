"""Exact denoisers of Gaussian data for testing the core (a helper module, not a test file).

For x = x0 + σ·ε with x0 ~ Σ_k w_k N(μ_k, s_k² I), the optimal denoiser is the posterior mean
E[x0 | x, σ] = Σ_k r_k(x, σ)·(μ_k + s_k² / (s_k² + σ²)·(x - μ_k)), r_k ∝ w_k N(x; μ_k, (s_k² + σ²) I).
For a full-covariance Gaussian N(μ, Σ): E[x0 | x, σ] = μ + Σ (Σ + σ² I)^{-1} (x - μ).
Everything is computed in float64 and cast back to the dtype of x.
"""

from __future__ import annotations

import math

import torch
from torch import Generator, Tensor


class GaussianMixture:
    """Isotropic Gaussian mixture in D dims; `__call__` is its exact denoiser on x [B, D] (or [B, *S], ∏S = D)."""

    def __init__(self, means: Tensor, stds: Tensor, weights: Tensor | None = None) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float64).reshape(len(means), -1)  # [K, D]
        self.stds = torch.as_tensor(stds, dtype=torch.float64).reshape(-1)  # [K]
        k = self.means.shape[0]
        w = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None else torch.as_tensor(weights)
        self.weights = w.to(torch.float64) / w.sum()
        self.dim = self.means.shape[1]

    def __call__(self, x: Tensor, sigma: Tensor, cond: object = None) -> Tensor:
        xf = x.reshape(x.shape[0], -1).to(torch.float64)  # [B, D]
        s2 = (sigma.to(torch.float64).reshape(-1, 1) ** 2).expand(x.shape[0], 1)  # [B, 1]
        var = self.stds**2 + s2  # [B, K]: variance of x under component k
        diff = xf[:, None, :] - self.means  # [B, K, D]
        logp = self.weights.log() - 0.5 * self.dim * torch.log(2 * math.pi * var) - (diff**2).sum(-1) / (2 * var)
        resp = torch.softmax(logp, dim=1)  # logsumexp-normalised responsibilities [B, K]
        post = self.means + (self.stds**2 / var)[..., None] * diff  # [B, K, D]
        out = (resp[..., None] * post).sum(1)
        return out.reshape(x.shape).to(x.dtype)

    denoise = __call__  # the exact denoiser, as a bound method

    def sample(self, n: int, generator: Generator | None = None) -> Tensor:
        """Draw n true data points [n, D] (float64)."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.means[k] + self.stds[k, None] * z

    def cdf_1d(self, x: Tensor) -> Tensor:
        """Exact CDF of a 1-D mixture at points x [N]."""
        assert self.dim == 1
        z = (x.to(torch.float64)[:, None] - self.means[:, 0]) / self.stds
        return (self.weights * torch.special.ndtr(z)).sum(-1)

    def assign(self, x: Tensor) -> Tensor:
        """Index of the nearest component mean for each sample x [N, D] -> [N]."""
        return torch.cdist(x.to(torch.float64), self.means).argmin(dim=1)


class FullCovGaussian:
    """N(μ, Σ) in D dims; `__call__` is its exact denoiser μ + Σ (Σ + σ² I)^{-1} (x - μ) on x [B, D]."""

    def __init__(self, mean: Tensor, cov: Tensor) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.cov = torch.as_tensor(cov, dtype=torch.float64)

    def __call__(self, x: Tensor, sigma: Tensor, cond: object = None) -> Tensor:
        xf = x.to(torch.float64)
        eye = torch.eye(len(self.mean), dtype=torch.float64)
        s2 = sigma.to(torch.float64).reshape(-1, 1, 1).expand(x.shape[0], 1, 1) ** 2
        gain = self.cov @ torch.linalg.inv(self.cov + s2 * eye)  # [B, D, D]
        out = self.mean + (gain @ (xf - self.mean)[..., None])[..., 0]
        return out.to(x.dtype)


class DiagGaussian:
    """N(μ, diag(s²)); its exact denoiser μ + s² / (s² + σ²)·(x - μ) acts per coordinate on x [B, D]."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        self.mean = mean.to(torch.float64)
        self.std = std.to(torch.float64)

    def __call__(self, x: Tensor, sigma: Tensor, cond: object = None) -> Tensor:
        s2 = sigma.to(torch.float64).reshape(-1, *([1] * (x.ndim - 1))) ** 2
        out = self.mean + self.std**2 / (self.std**2 + s2) * (x.to(torch.float64) - self.mean)
        return out.to(x.dtype)


def grid_mixture(spacing: float = 2.0, std: float = 0.15) -> GaussianMixture:
    """The 2-D 3×3 grid: 9 equally weighted components at {-spacing, 0, spacing}², each N(μ_k, std² I)."""
    ticks = torch.tensor([-spacing, 0.0, spacing])
    means = torch.cartesian_prod(ticks, ticks)
    return GaussianMixture(means, torch.full((9,), std))


def two_mode_mixture() -> GaussianMixture:
    """A 1-D mixture 0.3·N(-1.5, 0.3²) + 0.7·N(1, 0.5²) (unequal weights and widths)."""
    return GaussianMixture(torch.tensor([[-1.5], [1.0]]), torch.tensor([0.3, 0.5]), torch.tensor([0.3, 0.7]))


def w1_to_cdf(samples: Tensor, cdf: object, lo: float = -6.0, hi: float = 6.0, n_grid: int = 6001) -> float:
    """W1 between 1-D samples and an exact distribution: ∫ |F_n(x) - F(x)| dx on a fine grid."""
    grid = torch.linspace(lo, hi, n_grid, dtype=torch.float64)
    sorted_samples = samples.reshape(-1).to(torch.float64).sort().values
    emp = torch.searchsorted(sorted_samples, grid, right=True).to(torch.float64) / sorted_samples.numel()
    return float(torch.trapezoid((emp - cdf(grid)).abs(), grid))


def sliced_w1(a: Tensor, b: Tensor, n_proj: int = 64, seed: int = 0) -> float:
    """Sliced Wasserstein-1 between equal-size sample sets a, b [N, D]: mean 1-D W1 over random directions."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], n_proj, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0)
    pa = (a.to(torch.float64) @ dirs).sort(dim=0).values
    pb = (b.to(torch.float64) @ dirs).sort(dim=0).values
    return float((pa - pb).abs().mean())


def gaussian_denoiser(mean: float, std: float) -> DiagGaussian:
    """Exact denoiser of N(mean, std² I) in any number of dims."""
    return DiagGaussian(torch.tensor(float(mean)), torch.tensor(float(std)))
