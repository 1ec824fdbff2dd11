"""Forward corruption processes and their priors in the shared σ-frame.

References:
    Karras et al. 2022 (EDM): x = x0 + σ·ε; VP, VE and flow processes are rescalings of it.
    Austin et al. 2021 (D3PM absorbing state); Sahoo et al. 2024 (MDLM); Lou et al. 2024 (SEDD): discrete σ is the
    integrated rate, a token is masked with probability 1 - e^(-σ).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Generator, Tensor

from diffkit.core.utils import append_dims, randn_like


class GaussianProcess:
    """x = x0 + σ·ε with ε ~ N(0, I); prior N(0, σ_max² I) (Karras et al. 2022, eq. 1)."""

    def __init__(
        self,
        sigma_min: float = 0.002,  # EDM Table 1
        sigma_max: float = 80.0,  # EDM Table 1
    ) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"GaussianProcess: need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)

    def add_noise(self, x0: Tensor, sigma: Tensor, generator: Generator | None = None) -> Tensor:
        """Draw x ~ q(x | x0, σ) for x0 [B,*S] and σ [B]."""
        return x0 + append_dims(sigma, x0.ndim) * randn_like(x0, generator)

    def prior(
        self,
        shape: Sequence[int],
        *,
        device: torch.device | str = "cpu",
        generator: Generator | None = None,
        sigma: float | None = None,  # start level of the sampling grid; default σ_max
    ) -> Tensor:
        """Draw x ~ N(0, σ² I) of the given shape (σ = σ_max unless given)."""
        noise_device = generator.device if generator is not None else device
        x = torch.randn(tuple(shape), generator=generator, device=noise_device).to(device)
        return x * (self.sigma_max if sigma is None else float(sigma))


class MaskingProcess:
    """Absorbing-state corruption: each token becomes `mask_id` with probability 1 - e^(-σ) (MDLM, SEDD); ids [B,L]."""

    def __init__(
        self,
        mask_id: int,  # id of the absorbing [MASK] token
        sigma_min: float = 1e-4,  # mask probability ~1e-4 at the clean end
        sigma_max: float = 6.907755,  # -log(1e-3): mask probability 0.999 (log-linear schedule, eps = 1e-3)
    ) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"MaskingProcess: need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.mask_id, self.sigma_min, self.sigma_max = int(mask_id), float(sigma_min), float(sigma_max)

    @staticmethod
    def mask_prob(sigma: Tensor) -> Tensor:
        """1 - e^(-σ), the probability that a token is masked at level σ."""
        return -torch.expm1(-sigma)

    def add_noise(self, x0: Tensor, sigma: Tensor, generator: Generator | None = None) -> Tensor:
        """Draw x ~ q(x | x0, σ) for ids x0 [B,L] and σ [B]: mask each token independently."""
        device = generator.device if generator is not None else x0.device
        u = torch.rand(x0.shape, generator=generator, device=device).to(x0.device)
        masked = u < append_dims(self.mask_prob(sigma.float()), x0.ndim)
        return torch.where(masked, torch.full_like(x0, self.mask_id), x0)

    def prior(
        self,
        shape: Sequence[int],
        *,
        device: torch.device | str = "cpu",
        generator: Generator | None = None,
        sigma: float | None = None,  # unused: the sampler starts from all-mask at any grid start
    ) -> Tensor:
        """All-mask ids [*shape] (the σ → ∞ limit); deterministic, so the generator is not consumed."""
        return torch.full(tuple(shape), self.mask_id, dtype=torch.long, device=device)
