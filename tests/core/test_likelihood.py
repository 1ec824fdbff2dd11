"""Probability-flow log-likelihood against the closed-form density of Gaussian data, and bits/dim bookkeeping."""

from __future__ import annotations

import math

import pytest
import torch
from gmm import FullCovGaussian

from diffkit.core.samplers.likelihood import bits_per_dim, dequantize, pf_ode_log_likelihood

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def _problem(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64)
    cov = a @ a.T / 3 + 0.1 * torch.eye(3, dtype=torch.float64)  # a correlated covariance, eigenvalues ~0.1-2
    mean = torch.tensor([1.0, -0.5, 0.3], dtype=torch.float64)
    x0 = torch.distributions.MultivariateNormal(mean, cov).sample((n,))
    return mean, cov, x0


def _logpdf(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    return torch.distributions.MultivariateNormal(mean, cov).log_prob(x)


def test_exact_trace_matches_the_closed_form_density_per_point() -> None:
    """With the exact trace and the exact σ_max marginal as prior, only the ODE discretisation is left (< 2e-3 nats)."""
    torch.manual_seed(0)
    mean, cov, x0 = _problem(64)
    eye = torch.eye(3, dtype=torch.float64)
    prior = lambda x: _logpdf(x, mean, cov + SIGMA_MAX**2 * eye)  # noqa: E731
    est = pf_ode_log_likelihood(FullCovGaussian(mean, cov), x0, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX,
                                steps=48, hutchinson=False, prior_logp=prior)  # fmt: skip
    exact = _logpdf(x0, mean, cov + SIGMA_MIN**2 * eye)  # the density of x(σ_min)
    assert float((est - exact).abs().max()) < 2e-3, (est - exact).abs().max()


def test_hutchinson_is_unbiased_and_the_default_prior_is_close() -> None:
    """Hutchinson + N(0, σ_max² I) prior: the mean over 400 points matches the closed form within 4 standard errors
    of the per-point estimation noise, and a wrong sign/scale in the trace would be off by several nats."""
    torch.manual_seed(1)
    mean, cov, x0 = _problem(400, seed=1)
    est = pf_ode_log_likelihood(FullCovGaussian(mean, cov), x0, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX,
                                steps=24, generator=torch.Generator().manual_seed(0))  # fmt: skip
    exact = _logpdf(x0, mean, cov + SIGMA_MIN**2 * torch.eye(3, dtype=torch.float64))
    diff = est - exact
    stderr = float(diff.std()) / math.sqrt(len(diff))
    assert 0 < stderr < 0.1, stderr
    assert abs(float(diff.mean())) < 4 * stderr + 2e-3, (float(diff.mean()), stderr)


def test_bits_per_dim_of_uniform_discrete_data_is_log2_levels() -> None:
    """Data uniform over 17 levels in [-1, 1] (spacing 1/8), density 1/(17/8) per dim on [-1.0625, 1.0625]:
    the bound -log2 P(bin) / d is exactly log2(17)."""
    d = 64
    logp = torch.full((5,), -d * math.log(17 / 8), dtype=torch.float64)
    torch.testing.assert_close(bits_per_dim(logp, d, bin_width=2 / 16), torch.full((5,), math.log2(17)).double())
    x0 = torch.linspace(-1, 1, 17).repeat(100, 1)
    noisy = dequantize(x0, 2 / 16, torch.Generator().manual_seed(0))
    assert bool(((noisy - x0).abs() <= 1 / 16).all()) and float((noisy - x0).std()) == pytest.approx(
        (2 / 16) / math.sqrt(12), rel=0.05
    )
