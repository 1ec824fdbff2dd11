"""Forward corruption processes and their priors in the shared σ-frame.

References:
    Karras et al. 2022 (EDM): x = x0 + σ·ε; VP, VE and flow processes are rescalings of it.
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
