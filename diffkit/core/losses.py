"""Training losses: per-example denoising score matching in the σ-frame.

References:
    Karras et al. 2022 (EDM, eq. 2 and 8); Vincent 2011 (denoising score matching).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Generator, Tensor

from diffkit.core.types import Cond, Denoiser, Process
from diffkit.core.utils import append_dims, mean_flat


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
        noise: Tensor | None = None,  # pre-drawn ε [B,*S], e.g. this rank's share of a draw for the global batch
    ) -> Tensor:
        if sigma is None:
            sigma = self.sigma_density(x0.shape[0], device=x0.device, generator=generator)
        sigma = sigma.to(device=x0.device, dtype=torch.float32)
        if noise is None:
            x = self.process.add_noise(x0, sigma, generator)
        else:  # the σ-frame: x = x0 + σ·ε
            x = x0 + append_dims(sigma, x0.ndim) * noise.to(device=x0.device, dtype=x0.dtype)
        denoised = denoiser(x, sigma, cond)
        return self.weighting(sigma) * mean_flat((denoised.float() - x0.float()) ** 2)

    def draw(self, n: int, shape: tuple[int, ...], *, generator: Generator | None = None) -> tuple[Tensor, Tensor]:
        """σ [n] and ε [n,*shape] on the CPU, in the order __call__ would use them for a batch of n."""
        sigma = self.sigma_density(n, device="cpu", generator=generator)
        return sigma, torch.randn((n, *shape), generator=generator)
