"""Loss weightings λ(σ) on the x0-space squared error ||D(x, σ) - x0||².

References:
    Karras et al. 2022 (EDM, eq. 8 and Table 1); Ho et al. 2020 (ε-MSE = SNR-weighted x0-MSE);
    Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy"; Crowson et al. 2024
    (soft min-SNR, HDiT).
"""

from __future__ import annotations

from torch import Tensor


def edm_weight(sigma: Tensor, sigma_data: float = 0.5) -> Tensor:
    """λ(σ) = (σ² + σ_data²) / (σ·σ_data)²: unit-variance raw-net target (Karras et al. 2022, Table 1)."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def snr_weight(sigma: Tensor) -> Tensor:
    """λ(σ) = SNR = 1/σ²: makes the x0 loss equal the ε-prediction MSE (Ho et al. 2020)."""
    return sigma**-2


def min_snr_weight(sigma: Tensor, gamma: float = 5.0) -> Tensor:
    """λ(σ) = min(SNR, γ) on the x0 loss (Hang et al. 2023; γ = 5 is the paper's default)."""
    return (sigma**-2).clamp(max=gamma)


def soft_min_snr_weight(sigma: Tensor, gamma: float = 5.0) -> Tensor:
    """λ(σ) = 1 / (1/SNR + 1/γ) = 1 / (σ² + 1/γ): a smooth min-SNR-γ (Crowson et al. 2024, HDiT)."""
    return 1 / (sigma**2 + 1 / gamma)


def unit_weight(sigma: Tensor) -> Tensor:
    """λ(σ) = 1: plain x0-prediction MSE."""
    return sigma.new_ones(sigma.shape)


def flow_weight(sigma: Tensor) -> Tensor:
    """λ(σ) = 1/t² with t = σ / (1 + σ): makes the x0 loss the velocity MSE of rectified flow (Liu et al. 2023)."""
    return ((1 + sigma) / sigma) ** 2
