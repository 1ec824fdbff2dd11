"""Parity with k-diffusion (minGPT style): same toy denoiser, same sigmas, same numbers to 1e-5.

Skipped when k-diffusion (the `bench` extra) is not installed.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
from helpers import import_k_diffusion_sampling
from torch import nn

from diffkit.core.samplers.gaussian import (
    ancestral_step,
    sample_dpmpp_2m,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
)
from diffkit.core.samplers.multistep import sample_dpmpp_2s, sample_dpmpp_3m, sample_lms
from diffkit.core.schedules import karras_sigmas

kd = import_k_diffusion_sampling()


class ToyDenoiser(nn.Module):
    """A small random MLP over (x, log σ) in the EDM form c_skip·x + c_out·F: smooth and nonlinear in x and σ."""

    def __init__(self, dim: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(dim + 1, 32), nn.SiLU(), nn.Linear(32, dim))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond=None) -> torch.Tensor:
        s = sigma.to(x.dtype)[:, None]
        c_skip, c_out, c_in = 1 / (s**2 + 1), s / (s**2 + 1).sqrt(), 1 / (s**2 + 1).sqrt()
        return c_skip * x + c_out * self.net(torch.cat([c_in * x, s.log() / 4], dim=1))


@pytest.fixture(scope="module")
def toy() -> ToyDenoiser:
    with torch.random.fork_rng(devices=[]):
        return ToyDenoiser().eval()


@pytest.mark.parametrize("n", [1, 2, 10, 40])
def test_karras_grid_matches(n: int) -> None:
    ours = karras_sigmas(n, 0.002, 80.0, rho=7.0)
    theirs = kd.get_sigmas_karras(n, 0.002, 80.0, rho=7.0)
    assert ours.shape == theirs.shape == (n + 1,)
    torch.testing.assert_close(ours, theirs.float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "ours, theirs, kwargs",
    [
        (sample_euler, kd.sample_euler, {}),
        (sample_heun, kd.sample_heun, {}),
        (sample_heun, kd.sample_heun, {"s_churn": 0.0, "s_tmin": 0.1, "s_tmax": 10.0}),
        (sample_dpmpp_2m, kd.sample_dpmpp_2m, {}),
        (sample_lms, kd.sample_lms, {}),
        (partial(sample_dpmpp_2s, r=0.5), partial(kd.sample_dpmpp_2s_ancestral, eta=0.0), {}),
    ],
    ids=["euler", "heun", "heun_tmin_tmax", "dpmpp_2m", "lms", "dpmpp_2s"],
)
@pytest.mark.parametrize("steps", [1, 5, 20])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_ode_samplers_match_k_diffusion(toy, ours, theirs, kwargs, steps: int, dtype) -> None:
    sigmas = karras_sigmas(steps, 0.002, 80.0).to(dtype)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=dtype) * sigmas[0]
    with torch.no_grad():
        toy = toy.to(dtype)
        mine = ours(toy, x.clone(), sigmas, **kwargs)
        ref = theirs(toy, x.clone(), sigmas, disable=True, **kwargs)
    # float32: a step x + d·Δσ from σ = 80 cancels |x| ~ 240 to O(1), so either side rounds by ~|x|·ε32 ≈ 1.4e-5.
    atol = 1e-5 if dtype == torch.float64 else 1e-5 + 2 * float(x.abs().max()) * torch.finfo(dtype).eps
    torch.testing.assert_close(mine, ref, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_euler_ancestral_matches_k_diffusion_with_the_same_noise(toy, eta: float) -> None:
    """k-diffusion draws ancestral noise through `noise_sampler`; feed it the same seeded stream as ours."""
    sigmas = karras_sigmas(12, 0.002, 80.0).double()
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sigmas[0]
    toy = toy.double()
    mine = sample_euler_ancestral(toy, x.clone(), sigmas, generator=torch.Generator().manual_seed(7), eta=eta)
    g = torch.Generator().manual_seed(7)
    noise = lambda sigma, sigma_next: torch.randn(x.shape, generator=g, dtype=x.dtype)  # noqa: E731
    with torch.no_grad():
        ref = kd.sample_euler_ancestral(toy, x.clone(), sigmas, disable=True, eta=eta, noise_sampler=noise)
    torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0, 1.7])
@pytest.mark.parametrize("sigmas", [(80.0, 59.7), (1.0, 0.5), (0.01, 0.002), (0.5, 0.0)])
def test_ancestral_step_matches_k_diffusion(sigmas: tuple[float, float], eta: float) -> None:
    down, up = ancestral_step(*sigmas, eta=eta)
    ref_down, ref_up = kd.get_ancestral_step(*map(torch.tensor, sigmas), eta=eta)
    assert down == pytest.approx(float(ref_down), rel=1e-6, abs=1e-12)
    assert up == pytest.approx(float(ref_up), rel=1e-6, abs=1e-12)
    assert down**2 + up**2 == pytest.approx(sigmas[1] ** 2)


def test_heun_with_churn_matches_k_diffusion_with_the_same_noise(toy) -> None:
    """With churn on every step both draw one N(0, I) per step: ours from the generator, theirs from the global RNG."""
    sigmas = karras_sigmas(10, 0.002, 80.0).double()
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sigmas[0]
    toy = toy.double()
    mine = sample_heun(toy, x.clone(), sigmas, generator=torch.Generator().manual_seed(3), s_churn=2.0)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(3)
        ref = kd.sample_heun(toy, x.clone(), sigmas, disable=True, s_churn=2.0)
    torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-5)


def test_dpmpp_3m_matches_k_diffusion_up_to_its_second_order_warm_up(toy) -> None:
    """Two steps (orders 1, then the exact step to 0) agree with k-diffusion's 3M SDE at η = 0.

    From the third step on the two differ on purpose: k-diffusion weights the second divided difference by
    φ3·h²·f[0,1,2] where the exact integral of the Newton interpolant needs twice that, so its "3M" converges at
    order ~2 on the exact Gaussian flow map, ours at order 3 (tests/core/test_samplers.py checks the order).
    """
    sigmas = karras_sigmas(2, 0.002, 80.0).double()
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sigmas[0]
    toy = toy.double()
    with torch.no_grad():
        ref = kd.sample_dpmpp_3m_sde(toy, x.clone(), sigmas, disable=True, eta=0.0)
    torch.testing.assert_close(sample_dpmpp_3m(toy, x.clone(), sigmas), ref, rtol=1e-5, atol=1e-5)
