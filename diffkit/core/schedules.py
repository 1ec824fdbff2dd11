"""Sampling grids (decreasing sigmas ending in 0) and training densities over σ.

References:
    Karras et al. 2022 (EDM), eq. 5 and Table 1; Ho et al. 2020 (DDPM linear β); Nichol & Dhariwal 2021 (cosine);
    Lipman et al. 2023 / Liu et al. 2023 (flow matching, σ = t / (1 - t)); Sahoo et al. 2024 (MDLM, log-linear
    masking schedule σ(t) = -log(1 - (1 - ε) t)).
"""

from __future__ import annotations

import math

import torch
from torch import Generator, Tensor


def _append_zero(sigmas: Tensor) -> Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def _check_range(n: int, sigma_min: float, sigma_max: float) -> None:
    if n < 1:
        raise ValueError(f"a sigma grid needs n >= 1 steps, got n={n}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")


# ----------------------------------------------------------------------------------------------------------
# Sampling grids: n steps -> n + 1 decreasing sigmas ending in 0.


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """Polynomial grid in σ^(1/ρ) (Karras et al. 2022, eq. 5); n + 1 values ending in 0."""
    _check_range(n, sigma_min, sigma_max)
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (max_inv + ramp * (min_inv - max_inv)) ** rho
    return _append_zero(sigmas).float()


def exponential_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0) -> Tensor:
    """Grid uniform in log σ (log-linear; uniform in DPM-Solver's λ = -log σ); n + 1 values ending in 0."""
    _check_range(n, sigma_min, sigma_max)
    sigmas = torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64).exp()
    return _append_zero(sigmas).float()


def ddpm_alphas_cumprod(
    num_train_steps: int = 1000,  # T of Ho et al. 2020
    beta_start: float = 1e-4,  # β_1 of Ho et al. 2020
    beta_end: float = 0.02,  # β_T of Ho et al. 2020
) -> Tensor:
    """ᾱ_t of the discrete linear-β DDPM schedule (Ho et al. 2020), t = 1..T, float64."""
    betas = torch.linspace(beta_start, beta_end, num_train_steps, dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


def ddpm_sigmas(
    n: int,
    num_train_steps: int = 1000,  # T of Ho et al. 2020
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    spacing: str = "trailing",  # "trailing" (Lin et al. 2024) or "leading" (DDIM's original spacing)
) -> Tensor:
    """σ_t = sqrt((1 - ᾱ_t) / ᾱ_t) at n evenly spaced DDPM timesteps (DDIM, Song et al. 2021); ends in 0."""
    if not 1 <= n <= num_train_steps:
        raise ValueError(f"ddpm_sigmas: need 1 <= n <= num_train_steps={num_train_steps}, got n={n}")
    alphas_cumprod = ddpm_alphas_cumprod(num_train_steps, beta_start, beta_end)
    if spacing == "trailing":
        steps = torch.arange(num_train_steps, 0, -num_train_steps / n, dtype=torch.float64).round().long() - 1
    elif spacing == "leading":
        steps = (torch.arange(n, dtype=torch.float64) * (num_train_steps // n)).long().flip(0)
    else:
        raise ValueError(f"ddpm_sigmas: unknown spacing {spacing!r}; use 'trailing' or 'leading'")
    abar = alphas_cumprod[steps]
    return _append_zero(((1 - abar) / abar).sqrt()).float()


def linear_t_sigmas(n: int, t_max: float = 1.0 - 1e-3) -> Tensor:
    """Rectified-flow grid: t uniform from t_max to 0, σ = t / (1 - t) (Liu et al. 2023); ends in 0."""
    if n < 1 or not 0 < t_max < 1:
        raise ValueError(f"linear_t_sigmas: need n >= 1 and 0 < t_max < 1, got n={n}, t_max={t_max}")
    t = torch.linspace(t_max, 0, n + 1, dtype=torch.float64)
    return (t / (1 - t)).float()


def loglinear_sigmas(n: int, eps: float = 1e-3) -> Tensor:
    """Masking grid: t uniform from 1 to 0, σ = -log(1 - (1 - ε) t) (MDLM log-linear); n + 1 values ending in 0."""
    if n < 1 or not 0 < eps < 1:
        raise ValueError(f"loglinear_sigmas: need n >= 1 and 0 < eps < 1, got n={n}, eps={eps}")
    t = torch.linspace(1, 0, n + 1, dtype=torch.float64)
    return loglinear_noise(t, eps)[0].float()


def loglinear_noise(t: Tensor, eps: float = 1e-3) -> tuple[Tensor, Tensor]:
    """(σ(t), dσ/dt) of the log-linear masking schedule σ = -log(1 - (1 - ε) t): mask probability (1 - ε) t (MDLM)."""
    keep = 1 - (1 - eps) * t
    return -torch.log(keep), (1 - eps) / keep


# ----------------------------------------------------------------------------------------------------------
# Training densities: draw n noise levels [n].


def log_normal(
    n: int,
    *,
    p_mean: float = -1.2,  # P_mean of EDM Table 1
    p_std: float = 1.2,  # P_std of EDM Table 1
    device: torch.device | str = "cpu",
    generator: Generator | None = None,
) -> Tensor:
    """ln σ ~ N(P_mean, P_std²) (Karras et al. 2022, Table 1)."""
    z = torch.randn(n, generator=generator, device=device)
    return (p_mean + p_std * z).exp()


def log_uniform(
    n: int,
    *,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    device: torch.device | str = "cpu",
    generator: Generator | None = None,
) -> Tensor:
    """ln σ ~ U(ln σ_min, ln σ_max) (the VE density of Song et al. 2021)."""
    u = torch.rand(n, generator=generator, device=device)
    return (math.log(sigma_min) + u * (math.log(sigma_max) - math.log(sigma_min))).exp()


def cosine_interpolated(
    n: int,
    *,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    device: torch.device | str = "cpu",
    generator: Generator | None = None,
) -> Tensor:
    """Cosine schedule σ = tan(π t / 2), t uniform on the range that maps to [σ_min, σ_max] (Nichol & Dhariwal 2021)."""
    t_min, t_max = math.atan(sigma_min) * 2 / math.pi, math.atan(sigma_max) * 2 / math.pi
    t = t_min + torch.rand(n, generator=generator, device=device) * (t_max - t_min)
    return torch.tan(t * math.pi / 2)


def uniform_t(
    n: int,
    *,
    t_min: float = 1e-4,
    t_max: float = 1.0 - 1e-4,
    device: torch.device | str = "cpu",
    generator: Generator | None = None,
) -> Tensor:
    """Flow-matching time t ~ U(t_min, t_max) mapped to σ = t / (1 - t) (Lipman et al. 2023)."""
    t = t_min + torch.rand(n, generator=generator, device=device) * (t_max - t_min)
    return t / (1 - t)


def logit_normal(
    n: int,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    device: torch.device | str = "cpu",
    generator: Generator | None = None,
) -> Tensor:
    """Flow time t = sigmoid(N(mean, std²)) mapped to σ = t / (1 - t) = exp(z) (Esser et al. 2024, SD3)."""
    return (mean + std * torch.randn(n, generator=generator, device=device)).exp()
