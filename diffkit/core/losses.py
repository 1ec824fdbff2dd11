"""Training losses: per-example denoising score matching in the σ-frame.

References:
    Karras et al. 2022 (EDM, eq. 2 and 8); Vincent 2011 (denoising score matching).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Generator, Tensor

from diffkit.core.types import Cond, Denoiser, Process
from diffkit.core.utils import mean_flat


class DenoisingLoss:
    """E_σ λ(σ)·||D(x0 + σε, σ) - x0||², σ from an injected density, per example [B] (Karras et al. 2022, eq. 2)."""

    def __init__(
        self,
        process: Process,
        sigma_density: Callable[..., Tensor],
        weighting: Callable[[Tensor], Tensor],
    ) -> None:
        self.process = process
        self.sigma_density = sigma_density
        self.weighting = weighting

    def __call__(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        cond: Cond | None = None,
        generator: Generator | None = None,
        sigma: Tensor | None = None,
    ) -> Tensor:
        if sigma is None:
            sigma = self.sigma_density(x0.shape[0], device=x0.device, generator=generator)
        sigma = sigma.to(device=x0.device, dtype=torch.float32)
        x = self.process.add_noise(x0, sigma, generator)
        denoised = denoiser(x, sigma, cond)
        return self.weighting(sigma) * mean_flat((denoised.float() - x0.float()) ** 2)
