"""Protocols shared by every piece of the diffusion core: denoisers, processes, samplers.

References:
    Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models" (the σ-frame).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import torch
from torch import Generator, Tensor

Cond = Mapping[str, Tensor]
Callback = Callable[[dict], None]


class Denoiser(Protocol):
    """x [B,*S] in the EDM frame (x = x0 + σ·ε), sigma [B] -> x0 estimate [B,*S]."""

    def __call__(self, x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor: ...


class Process(Protocol):
    """Forward corruption q(x | x0, σ) and the prior at σ_max."""

    sigma_min: float
    sigma_max: float

    def add_noise(self, x0: Tensor, sigma: Tensor, generator: Generator | None = None) -> Tensor: ...

    def prior(
        self,
        shape: Sequence[int],
        *,
        device: torch.device,
        generator: Generator | None = None,
        sigma: float | None = None,
    ) -> Tensor: ...


class Sampler(Protocol):
    """Walks a decreasing sigma grid that ends in 0 and returns the final x [B,*S]."""

    def __call__(
        self,
        denoiser: Denoiser,
        x: Tensor,
        sigmas: Tensor,
        *,
        cond: Cond | None = None,
        generator: Generator | None = None,
        callback: Callback | None = None,
    ) -> Tensor: ...


class SigmaDensity(Protocol):
    """Draws n training noise levels [n]."""

    def __call__(self, n: int, *, device: torch.device, generator: Generator | None = None) -> Tensor: ...
