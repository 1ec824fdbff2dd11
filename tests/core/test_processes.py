"""GaussianProcess: x = x0 + σ·ε with per-example σ, and the N(0, σ_max² I) prior."""

from __future__ import annotations

import pytest
import torch

from diffkit.core.processes import GaussianProcess


def test_add_noise_has_mean_x0_and_per_example_std_sigma() -> None:
    """Rank-4 x0 [B, C, H, W] with a different σ per example: residual (x - x0) / σ is standard normal."""
    p = GaussianProcess(0.002, 80.0)
    sigma = torch.tensor([0.01, 0.5, 3.0, 80.0], dtype=torch.float64)
    x0 = torch.linspace(-1, 1, 4 * 3 * 100 * 100, dtype=torch.float64).reshape(4, 3, 100, 100)
    x = p.add_noise(x0, sigma, torch.Generator().manual_seed(0))
    assert x.shape == x0.shape and x.dtype == x0.dtype
    eps = (x - x0) / sigma[:, None, None, None]
    per_example = eps.reshape(4, -1)
    assert bool((per_example.mean(1).abs() < 0.02).all()) and bool(((per_example.std(1) - 1).abs() < 0.01).all())
    assert not torch.allclose(per_example[0], per_example[1])  # fresh noise for every example


def test_add_noise_is_reproducible_with_a_generator_and_exact_at_zero_sigma() -> None:
    p = GaussianProcess()
    x0 = torch.randn(8, 5)
    sigma = torch.full((8,), 0.7)
    a = p.add_noise(x0, sigma, torch.Generator().manual_seed(3))
    b = p.add_noise(x0, sigma, torch.Generator().manual_seed(3))
    c = p.add_noise(x0, sigma, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(p.add_noise(x0, torch.zeros(8), torch.Generator().manual_seed(3)), x0)


def test_prior_std_is_sigma_max_or_the_given_sigma() -> None:
    p = GaussianProcess(0.002, 80.0)
    prior = p.prior((50_000, 4), generator=torch.Generator().manual_seed(0))
    assert prior.shape == (50_000, 4)
    assert abs(prior.mean().item()) < 0.8 and abs(prior.std().item() / 80.0 - 1) < 0.01
    small = p.prior((50_000,), generator=torch.Generator().manual_seed(0), sigma=2.0)
    assert small.shape == (50_000,)
    assert abs(small.std().item() / 2.0 - 1) < 0.01
    again = p.prior((50_000, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(prior, again)


def test_invalid_sigma_range_raises() -> None:
    with pytest.raises(ValueError, match="sigma_min"):
        GaussianProcess(1.0, 0.5)
    with pytest.raises(ValueError, match="sigma_min"):
        GaussianProcess(0.0, 1.0)
