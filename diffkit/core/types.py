"""Protocols shared by every piece of the diffusion core: denoisers, processes, samplers, losses, condition entries.

References:
    Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models" (the σ-frame).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Generator, Tensor

Cond = Mapping[str, Tensor]
Callback = Callable[[dict], None]


@dataclass(frozen=True)
class CondSpec:
    """One declared condition entry: name, per-example shape, dtype and the value that means "no condition".

    Guidance and condition dropout replace an entry by `null`, never by a value guessed from its dtype; a
    conditioning encoder maps null rows to its own learned null. Continuous entries without a natural null (a
    log-mel, a goal state) declare NaN, which no real value equals. An absent entry means null for every row.
    """

    name: str
    shape: tuple[int, ...]  # without the batch; an entry may be broadcastable to it (e.g. a mask [1,H,W])
    dtype: torch.dtype
    null: float  # e.g. -1 for class labels, 0 for "nothing known" masks, NaN for continuous conditions

    def null_like(self, value: Tensor) -> Tensor:
        """A tensor like `value` [B,...] holding the null in every row."""
        return torch.full_like(value, self.null)

    def is_null(self, value: Tensor) -> Tensor:
        """bool [B]: rows of `value` [B,...] that are entirely null."""
        hit = value.isnan() if math.isnan(self.null) else value == self.null
        return hit.reshape(value.shape[0], -1).all(dim=1)


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


class Loss(Protocol):
    """Per-example training loss [B] of a denoiser on clean x0, optionally weighted per element.

    weight [B,*S] (or broadcastable) multiplies each element's error, e.g. 0 on entries a conditioning replaced
    (Janner et al. 2022 weight actions and discount the horizon the same way); None = 1 everywhere.
    """

    def __call__(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        cond: Cond | None = None,
        generator: Generator | None = None,
        *,
        weight: Tensor | None = None,
        **draws: Tensor,
    ) -> Tensor: ...


@runtime_checkable
class PredrawnLoss(Loss, Protocol):
    """A loss whose random draws can be made up front for a whole global batch, then split by rank (exact DDP).

    draw(n, shape) returns named tensors [n,...] that __call__ accepts as keyword arguments (DenoisingLoss: σ, ε).
    A loss without draw() takes a generator and draws for its own rows.
    """

    def draw(self, n: int, shape: tuple[int, ...], *, generator: Generator | None = None) -> dict[str, Tensor]: ...
