"""Conditioning components shared by the modalities (see base.Conditioning): the module calls them in order.

    conditioning = [KnownInputs(RandomImageMasks(0.5)), ClassifierFree(p=0.1, scale=2.0), GivenEntries(replace)]

GivenEntries holds entries given in a request (known pixels, a text prefix, a start/goal state); how it holds them
(replacement, token replacement, reconstruction guidance) is the `hold` function the modality's config chooses.
KnownInputs hands known entries to a net trained to read them; ClassifierFree drops conditions to their declared
nulls in training and guides towards them at sampling.

References:
    Ho & Salimans 2022 (classifier-free guidance); Lugmayr et al. 2022 (RePaint) and Song et al. 2021, App. I
    (replacement); Sahoo et al. 2024 (MDLM infilling); Saharia et al. 2022 (Palette: known inputs, random masks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace as copy_with
from functools import partial

import torch
from torch import Generator, Tensor

from diffkit.core.guidance import cfg, drop_cond, null_cond, replace, with_known
from diffkit.core.types import CondSpec, Sampler
from diffkit.modalities.base import Conditioning, Hold, SamplingState, TrainingExample


class ClassifierFree(Conditioning):
    """Drop the whole condition to its declared nulls with probability p in training; guide at `scale` when sampling.

    D_uncond + scale·(D_cond - D_uncond) with the null condition built from the declared nulls (Ho & Salimans 2022),
    only for σ in (lo, hi] when an interval is given (Kynkäänniemi et al. 2024).
    """

    def __init__(
        self,
        p: float = 0.1,  # condition dropout in training (Ho & Salimans 2022 use 0.1-0.2)
        scale: float = 2.0,  # 1 = conditional, 0 = unconditional, > 1 = guided
        interval: Sequence[float] | None = None,  # (lo, hi]: guide only at these σ, one network call elsewhere
    ) -> None:
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"ClassifierFree: p must be in [0, 1), got {p!r}")
        self.p, self.scale = float(p), float(scale)
        self.interval = None if interval is None else (float(interval[0]), float(interval[1]))

    def train(self, example: TrainingExample, generator: Generator) -> TrainingExample:
        if not example.training:
            return example
        return copy_with(example, cond=drop_cond(example.cond, self.p, generator, specs=example.specs))

    def prepare(self, state: SamplingState) -> SamplingState:
        scale = self.scale if state.guidance_scale is None else float(state.guidance_scale)
        interval = self.interval if state.guidance_interval is None else tuple(map(float, state.guidance_interval))
        guided = cfg(state.denoiser, scale, partial(null_cond, specs=state.specs), interval=interval)
        return copy_with(state, denoiser=guided)


class GivenEntries(Conditioning):
    """Entries given in a request (mask = 1) stay exactly as given: `hold` wraps the denoiser, and the final
    sample is overwritten there. start_given also shows them in the initial state (token replacement)."""

    def __init__(
        self,
        hold: Hold = replace,  # (denoiser, known, mask) -> denoiser: replace, replace_tokens, reconstruction_guidance
        sampler: Sampler
        | None = None,  # sampler used when entries are given (e.g. RePaint resampling); None = module's
        start_given: bool = False,  # True: the given entries are in x from the first step (discrete tokens)
    ) -> None:
        self.hold, self.sampler, self.start_given = hold, sampler, start_given

    def prepare(self, state: SamplingState) -> SamplingState:
        if not state.given:
            return state
        hold = state.hold or self.hold
        x = (
            torch.where(state.mask.to(torch.bool), state.known.to(state.x.dtype), state.x)
            if self.start_given
            else state.x
        )
        return copy_with(state, denoiser=hold(state.denoiser, state.known, state.mask), x=x,
                         sampler=state.sampler or self.sampler)  # fmt: skip

    def finish(self, x: Tensor, state: SamplingState) -> Tensor:
        if not state.given:
            return x
        return torch.where(state.mask.to(torch.bool), state.known.to(x.dtype), x)  # exact on given entries


class KnownInputs(Conditioning):
    """The net also reads known entries and their mask (entries "known" and "mask", 1 = known; null 0 = nothing
    known); in training each example gets a mask from `masks(x0, generator)` (Palette-style learned inpainting)."""

    def __init__(
        self, masks: Callable[[Tensor, Generator | None], Tensor], known_key: str = "known", mask_key: str = "mask"
    ) -> None:
        self.masks, self.known_key, self.mask_key = masks, known_key, mask_key

    def cond_specs(self, example_shape: tuple[int, ...]) -> tuple[CondSpec, ...]:
        shape = tuple(example_shape)
        return (CondSpec(self.known_key, shape, torch.float32, 0.0), CondSpec(self.mask_key, shape, torch.float32, 0.0))

    def train(self, example: TrainingExample, generator: Generator) -> TrainingExample:
        mask = self.masks(example.x0, generator).to(example.x0.dtype)
        cond = {**example.cond, self.known_key: example.x0 * mask, self.mask_key: mask}
        return copy_with(example, cond=cond)

    def prepare(self, state: SamplingState) -> SamplingState:
        if not state.given:
            return state
        return copy_with(state, denoiser=with_known(state.denoiser, state.known, state.mask, self.known_key,
                                                    self.mask_key))  # fmt: skip
