"""Weightings and the denoising loss against closed forms (exact Gaussian denoisers, known posterior variance)."""

from __future__ import annotations

import math

import pytest
import torch
from gmm import gaussian_denoiser

from diffkit.core import weighting as W
from diffkit.core.losses import DenoisingLoss
from diffkit.core.precond import EDMPrecond, FlowPrecond
from diffkit.core.processes import GaussianProcess
from diffkit.core.schedules import log_normal, log_uniform


def test_edm_weight_is_one_over_c_out_squared() -> None:
    sigma = torch.tensor([0.01, 0.3, 2.0, 50.0], dtype=torch.float64)
    c_out = EDMPrecond(torch.nn.Identity(), sigma_data=0.5).scalings(sigma)[1]
    torch.testing.assert_close(W.edm_weight(sigma, 0.5), c_out**-2)
    t = sigma / (1 + sigma)
    torch.testing.assert_close(W.flow_weight(sigma), t**-2)
    torch.testing.assert_close(W.flow_weight(sigma), FlowPrecond(torch.nn.Identity()).scalings(sigma)[1] ** -2)


@pytest.mark.parametrize("name", ["edm", "flow"])
def test_weighted_x0_loss_equals_the_raw_target_mse(name: str) -> None:
    """λ(σ)·||D - x0||² = ||F - F_target||² for D = c_skip·x + c_out·F (EDM eq. 8; flow velocity MSE)."""
    precond = EDMPrecond(torch.nn.Identity(), 0.5) if name == "edm" else FlowPrecond(torch.nn.Identity())
    weight = (lambda s: W.edm_weight(s, 0.5)) if name == "edm" else W.flow_weight
    g = torch.Generator().manual_seed(0)
    sigma = torch.tensor([0.01, 0.3, 2.0, 50.0], dtype=torch.float64)
    x0, eps, raw = (torch.randn(4, 6, generator=g, dtype=torch.float64) for _ in range(3))
    x = x0 + sigma[:, None] * eps
    c_skip, c_out, _, _ = (c[:, None] for c in precond.scalings(sigma))
    denoised = c_skip * x + c_out * raw
    lhs = weight(sigma) * ((denoised - x0) ** 2).mean(1)
    torch.testing.assert_close(lhs, ((raw - precond.target(x0, x, sigma)) ** 2).mean(1))


def test_snr_weightings() -> None:
    sigma = torch.tensor([0.1, 0.5, 1.0, 10.0])
    torch.testing.assert_close(W.snr_weight(sigma), sigma**-2)
    torch.testing.assert_close(W.min_snr_weight(sigma, gamma=5.0), torch.tensor([5.0, 4.0, 1.0, 0.01]))
    soft = W.soft_min_snr_weight(sigma, gamma=5.0)
    torch.testing.assert_close(soft, 1 / (sigma**2 + 1 / 5.0))
    assert bool((soft <= torch.minimum(W.snr_weight(sigma), torch.tensor(5.0)) + 1e-6).all())
    torch.testing.assert_close(W.unit_weight(sigma), torch.ones(4))


def test_loss_of_the_exact_denoiser_is_the_posterior_variance() -> None:
    """For N(0, s²) data, E||D* - x0||² per dim = s²σ²/(s²+σ²); with unit weight the loss estimates it."""
    s, sigma = 0.7, 0.9
    loss = DenoisingLoss(GaussianProcess(), log_normal, W.unit_weight)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(200_000, 4, generator=g, dtype=torch.float64) * s
    per_example = loss(gaussian_denoiser(0.0, s), x0, generator=g, sigma=torch.full((200_000,), sigma))
    assert per_example.shape == (200_000,)
    expected = s**2 * sigma**2 / (s**2 + sigma**2)
    assert abs(per_example.mean().item() - expected) / expected < 0.01


@pytest.mark.parametrize("density", [log_normal, log_uniform], ids=lambda f: f.__name__)
def test_edm_weighted_loss_of_the_exact_denoiser_is_one(density) -> None:
    """With σ_data = s, λ_EDM(σ)·s²σ²/(s²+σ²) = 1 for every σ: the exact denoiser's EDM loss is 1 in expectation."""
    s = 0.5
    loss = DenoisingLoss(GaussianProcess(), density, lambda sig: W.edm_weight(sig, sigma_data=s))
    g = torch.Generator().manual_seed(1)
    x0 = 0.2 + s * torch.randn(100_000, 8, generator=g, dtype=torch.float64)
    per_example = loss(gaussian_denoiser(0.2, s), x0, generator=g)
    assert abs(per_example.mean().item() - 1) < 0.01  # per-example std is sqrt(2/8) = 0.5: SE 0.0016


def test_snr_weighted_loss_matches_the_closed_form_expectation() -> None:
    """λ = 1/σ²: E loss = E_σ[s² / (s² + σ²)] under the injected σ density (same σ draws, exact formula)."""
    s = 1.3
    loss = DenoisingLoss(GaussianProcess(), log_normal, W.snr_weight)
    g = torch.Generator().manual_seed(2)
    x0 = s * torch.randn(100_000, 8, generator=g, dtype=torch.float64)
    sigma = log_normal(100_000, generator=torch.Generator().manual_seed(3)).double()
    per_example = loss(gaussian_denoiser(0.0, s), x0, generator=g, sigma=sigma)
    expected = (s**2 / (s**2 + sigma.float().double() ** 2)).mean().item()
    assert abs(per_example.mean().item() / expected - 1) < 0.01


def test_loss_draws_sigmas_from_the_density_and_applies_the_weighting() -> None:
    seen = {}

    def density(n, *, device, generator=None):
        seen["n"] = n
        return torch.full((n,), 2.0, device=device)

    loss = DenoisingLoss(GaussianProcess(), density, lambda sig: 3 * torch.ones_like(sig))
    x0 = torch.zeros(5, 2, 2)
    out = loss(lambda x, sig, c=None: torch.zeros_like(x), x0, generator=torch.Generator().manual_seed(0))
    assert seen["n"] == 5 and out.shape == (5,)
    torch.testing.assert_close(out, torch.zeros(5))  # perfect denoiser of all-zero data
    out = loss(lambda x, sig, c=None: torch.ones_like(x), x0)
    torch.testing.assert_close(out, torch.full((5,), 3.0))  # unit error times the weighting


def test_per_element_weight_masks_entries_and_defaults_to_one() -> None:
    """weight multiplies each element's error: 0 leaves an entry out, None is the unweighted loss (bit for bit)."""
    loss = DenoisingLoss(GaussianProcess(), log_normal, W.unit_weight)
    x0, sigma, noise = torch.zeros(3, 4), torch.ones(3), torch.randn(3, 4, generator=torch.Generator().manual_seed(0))

    def wrong_on_the_first_entry(x, sig, c=None):
        return torch.zeros_like(x).index_fill(1, torch.tensor([0]), 2.0)

    plain = loss(wrong_on_the_first_entry, x0, sigma=sigma, noise=noise)
    torch.testing.assert_close(plain, torch.full((3,), 1.0))  # error 4 on one entry of four
    assert torch.equal(loss(wrong_on_the_first_entry, x0, sigma=sigma, noise=noise, weight=None), plain)
    weight = torch.tensor([0.0, 1.0, 1.0, 1.0])  # broadcast over the batch
    torch.testing.assert_close(loss(wrong_on_the_first_entry, x0, sigma=sigma, noise=noise, weight=weight),
                               torch.zeros(3))  # fmt: skip


def test_both_losses_satisfy_the_loss_protocols() -> None:
    from diffkit.core.losses import MaskedNELBO
    from diffkit.core.processes import MaskingProcess
    from diffkit.core.schedules import loglinear_noise
    from diffkit.core.types import PredrawnLoss

    denoising = DenoisingLoss(GaussianProcess(), log_normal, W.unit_weight)
    draws = denoising.draw(4, (2, 3), generator=torch.Generator().manual_seed(0))
    assert isinstance(denoising, PredrawnLoss) and set(draws) == {"sigma", "noise"}
    assert draws["noise"].shape == (4, 2, 3) and draws["sigma"].shape == (4,)
    nelbo = MaskedNELBO(MaskingProcess(mask_id=0), loglinear_noise)
    assert not isinstance(nelbo, PredrawnLoss)  # draws t and masks from the generator it is given
    ids = torch.randint(1, 5, (2, 6), generator=torch.Generator().manual_seed(0))

    def uniform(x, sig, c=None):
        return torch.full((*x.shape, 5), -math.log(5.0))

    g = torch.Generator().manual_seed(1)
    full = nelbo(uniform, ids, generator=torch.Generator().manual_seed(1))
    half = nelbo(uniform, ids, generator=g, weight=torch.tensor([1.0, 1, 1, 0, 0, 0]))
    assert bool((half <= full).all()) and bool((half < full).any())
