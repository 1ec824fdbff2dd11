"""Sampling grids and training densities: endpoints, monotonicity, closed forms, statistics, seeding."""

from __future__ import annotations

import math

import pytest
import torch

from diffkit.core import schedules as S


@pytest.mark.parametrize("n", [1, 2, 10, 50])
@pytest.mark.parametrize(
    "grid", [S.karras_sigmas, S.exponential_sigmas, S.ddpm_sigmas, S.linear_t_sigmas], ids=lambda f: f.__name__
)
def test_grids_decrease_and_end_in_zero(grid, n: int) -> None:
    sigmas = grid(n)
    assert sigmas.shape == (n + 1,)
    assert sigmas[-1] == 0
    assert bool((sigmas[:-1] > 0).all()) and bool((sigmas[1:] < sigmas[:-1]).all())


def test_karras_endpoints_and_rho_spacing() -> None:
    sigmas = S.karras_sigmas(10, 0.002, 80.0, rho=7.0).double()
    assert math.isclose(sigmas[0].item(), 80.0, rel_tol=1e-6)
    assert math.isclose(sigmas[-2].item(), 0.002, rel_tol=1e-5)
    steps = sigmas[:-1] ** (1 / 7)
    diffs = steps[1:] - steps[:-1]
    torch.testing.assert_close(diffs, diffs[:1].expand_as(diffs), rtol=1e-4, atol=1e-6)  # uniform in σ^(1/ρ)


def test_exponential_grid_is_uniform_in_log_sigma() -> None:
    logs = S.exponential_sigmas(8, 0.01, 10.0)[:-1].double().log()
    diffs = logs[1:] - logs[:-1]
    torch.testing.assert_close(diffs, diffs[:1].expand_as(diffs), rtol=1e-4, atol=1e-6)
    assert math.isclose(logs[0].exp().item(), 10.0, rel_tol=1e-5)
    assert math.isclose(logs[-1].exp().item(), 0.01, rel_tol=1e-5)


def test_linear_t_grid_is_uniform_in_flow_time() -> None:
    sigmas = S.linear_t_sigmas(8, t_max=0.99).double()
    t = sigmas / (1 + sigmas)
    torch.testing.assert_close(t, torch.linspace(0.99, 0.0, 9, dtype=torch.float64), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError):
        S.linear_t_sigmas(8, t_max=1.0)


def test_ddpm_sigmas_match_the_linear_beta_closed_form() -> None:
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    sigmas = S.ddpm_sigmas(10)
    steps = torch.tensor([999, 899, 799, 699, 599, 499, 399, 299, 199, 99])  # "trailing" spacing
    torch.testing.assert_close(sigmas[:-1].double(), ((1 - abar[steps]) / abar[steps]).sqrt(), rtol=1e-6, atol=0)
    leading = S.ddpm_sigmas(10, spacing="leading")
    torch.testing.assert_close(leading[0].double(), ((1 - abar[900]) / abar[900]).sqrt(), rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="spacing"):
        S.ddpm_sigmas(10, spacing="middle")


@pytest.mark.parametrize("scheduler", ["DDIMScheduler", "DDPMScheduler"])
@pytest.mark.parametrize("n", [10, 50, 1000])
def test_ddpm_sigmas_match_diffusers_scheduler(scheduler: str, n: int) -> None:
    """sqrt((1 - ᾱ)/ᾱ) at diffusers' trailing timesteps of its linear-β schedule.

    ᾱ is recomputed in float64 from diffusers' betas: its float32 cumprod loses ~1e-4 relative at t near 0.
    """
    diffusers = pytest.importorskip("diffusers")
    sched = getattr(diffusers, scheduler)(num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="trailing")
    sched.set_timesteps(n)
    torch.testing.assert_close(sched.alphas_cumprod, S.ddpm_alphas_cumprod().float(), rtol=2e-4, atol=0)
    abar = torch.cumprod(1 - sched.betas.double(), 0)[sched.timesteps]
    torch.testing.assert_close(S.ddpm_sigmas(n)[:-1].double(), ((1 - abar) / abar).sqrt(), rtol=1e-5, atol=0)
    with pytest.raises(ValueError):
        S.ddpm_sigmas(1001)


def test_bad_grid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="sigma_min"):
        S.karras_sigmas(5, 1.0, 0.5)
    with pytest.raises(ValueError, match="n >= 1"):
        S.exponential_sigmas(0)


N = 200_000


def test_log_normal_statistics() -> None:
    log_s = S.log_normal(N, p_mean=-1.2, p_std=1.2, generator=torch.Generator().manual_seed(0)).log()
    assert abs(log_s.mean().item() + 1.2) < 0.01 and abs(log_s.std().item() - 1.2) < 0.01


def test_log_uniform_is_uniform_in_log_sigma() -> None:
    s = S.log_uniform(N, sigma_min=0.01, sigma_max=100.0, generator=torch.Generator().manual_seed(0))
    assert s.min() >= 0.01 and s.max() <= 100.0
    u = (s.log() - math.log(0.01)) / (math.log(100.0) - math.log(0.01))
    assert abs(u.mean().item() - 0.5) < 0.005 and abs(u.var().item() - 1 / 12) < 0.002


def test_cosine_density_is_uniform_in_cosine_time() -> None:
    s = S.cosine_interpolated(N, sigma_min=0.01, sigma_max=10.0, generator=torch.Generator().manual_seed(0))
    t = torch.atan(s.double()) * 2 / math.pi
    t_min, t_max = math.atan(0.01) * 2 / math.pi, math.atan(10.0) * 2 / math.pi
    assert s.min() >= 0.01 * 0.999 and s.max() <= 10.0 * 1.001
    u = (t - t_min) / (t_max - t_min)  # uniform on [0, 1]
    assert abs(u.mean().item() - 0.5) < 0.005 and abs(u.var().item() - 1 / 12) < 0.002


def test_flow_densities_map_time_to_sigma() -> None:
    s = S.uniform_t(N, t_min=0.1, t_max=0.9, generator=torch.Generator().manual_seed(0))
    t = (s / (1 + s) - 0.1) / 0.8  # uniform on [0, 1]
    assert t.min() >= -1e-6 and t.max() <= 1 + 1e-6
    assert abs(t.mean().item() - 0.5) < 0.005 and abs(t.var().item() - 1 / 12) < 0.002
    z = S.logit_normal(N, mean=0.5, std=1.0, generator=torch.Generator().manual_seed(0)).log()  # logit t = ln σ
    assert abs(z.mean().item() - 0.5) < 0.01 and abs(z.std().item() - 1.0) < 0.01


@pytest.mark.parametrize("density", [S.log_normal, S.log_uniform, S.cosine_interpolated, S.uniform_t, S.logit_normal])
def test_densities_respect_the_generator(density) -> None:
    a = density(16, generator=torch.Generator().manual_seed(3))
    b = density(16, generator=torch.Generator().manual_seed(3))
    c = density(16, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (16,)
