"""The contracts between a data type and the generic training module: Modality, conditioning components, requests.

A modality turns raw batches into (x0, cond), declares the condition entries it produces (CondSpec), decodes
samples (given the condition they were sampled with) and logs them, and builds a sampling request from the arguments
it declares. Conditioning components own what happens to conditions at training time (masks, dropout, the net's
extra inputs, loss weights) and at sampling time (wrapping the denoiser, the initial state, holding given entries);
the module only calls them in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from torch import Generator, Tensor

from diffkit.core.types import Cond, CondSpec, Denoiser, Sampler


class DataError(ValueError):
    """Input data that cannot be used (damaged file, wrong shape, missing field); the message names the input."""


SampleFn = Callable[[int, Cond | None], Tensor]  # (n, cond) -> n samples in model space
InpaintFn = Callable[[Tensor, Tensor, Cond | None], Tensor]  # (known, mask with 1 = known, cond) -> completions
Hold = Callable[[Denoiser, Tensor, Tensor], Denoiser]  # (denoiser, known, mask) -> denoiser holding given entries


@dataclass(frozen=True)
class Request:
    """What to sample: condition entries for the net and entries given exactly (known where mask = 1)."""

    cond: Cond | None = None  # [n,...] per declared entry
    known: Tensor | None = None  # [n,*S] in model space
    mask: Tensor | None = None  # [n,*S] (or broadcastable), 1 = given
    guide: Callable[[Denoiser], Denoiser] | None = None  # e.g. cost guidance away from a region (module.sample)


class Modality(Protocol):
    """What the generic DiffusionModule needs from a data type (image, audio, text, trajectory)."""

    bin_width: float | None  # spacing of the data's values in model space (dequantised likelihood); None = continuous

    def example_shape(self) -> tuple[int, ...]: ...  # x0 shape without batch

    def cond_specs(self) -> tuple[CondSpec, ...]: ...  # the condition entries encode() produces

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]: ...  # raw batch -> (x0, cond)

    def decode(self, x0: Tensor, cond: Cond | None = None) -> Any: ...  # model space -> images / waveforms / strings

    # cond: the condition x0 was sampled with (a PriorGrad vocoder's scale comes from its mel); others ignore it

    def log_samples(self, samples: Any, logger: Any, step: int, out_dir: str | None = None) -> None: ...

    def request(self, n: int, **args: Any) -> Request: ...  # CLI `+request.<arg>=...` -> what to sample; no args:

    # the showcase request (e.g. every class in turn)


@dataclass(frozen=True)
class TrainingExample:
    """One batch on its way to the loss: clean x0, the net's condition, a per-element loss weight (None = 1)."""

    x0: Tensor
    cond: Cond
    weight: Tensor | None
    specs: Mapping[str, CondSpec]  # every declared entry (modality and components), for nulls
    training: bool  # True in training steps; False when scoring a loss (validation, test): nothing is dropped


@dataclass(frozen=True)
class SamplingState:
    """A sampling request on its way to the sampler; conditioning components return modified copies."""

    denoiser: Denoiser
    x: Tensor  # the initial state, drawn from the prior
    cond: Cond | None
    known: Tensor | None
    mask: Tensor | None
    specs: Mapping[str, CondSpec] = field(default_factory=dict)
    sampler: Sampler | None = None  # set explicitly by the caller or by a component; None = the module's
    hold: Hold | None = None  # the caller's choice of how given entries are held; None = the component's
    guidance_scale: float | None = None  # the caller's guidance scale; None = the component's
    guidance_interval: tuple[float, float] | None = None  # the caller's σ interval of guidance; None = the component's

    @property
    def given(self) -> bool:
        return self.known is not None and self.mask is not None


class Conditioning(Protocol):
    """One conditioning component. The defaults do nothing, so a component implements only its own stages.

    Components run in the order given: at training each sees the previous one's condition; at sampling the first
    wraps the denoiser innermost (e.g. known-entry inputs, then classifier-free guidance, then replacement).
    """

    def cond_specs(self, example_shape: tuple[int, ...]) -> tuple[CondSpec, ...]:
        """Condition entries this component adds to the net's input (e.g. known entries and their mask)."""
        return ()

    def train(self, example: TrainingExample, generator: Generator) -> TrainingExample:
        """Training and loss scoring: draw masks, drop conditions, add net inputs, set loss weights."""
        return example

    def prepare(self, state: SamplingState) -> SamplingState:
        """Sampling: wrap the denoiser, set the initial state, choose a sampler."""
        return state

    def finish(self, x: Tensor, state: SamplingState) -> Tensor:
        """After the sampler: e.g. hold given entries exactly."""
        return x


@runtime_checkable
class Guided(Protocol):
    """A conditioning component with a guidance scale that a sampling request may override."""

    scale: float


@dataclass(frozen=True)
class Headline:
    """One number of an evaluator's output to read first, beside the baselines it has to beat (end-of-run summary)."""

    label: str  # what the number is, e.g. "digits-FD"
    key: str  # the model's value in Evaluator.run's output, e.g. "fd_test_size"
    baselines: tuple[tuple[str, str], ...] = ()  # (label, key in the same output), e.g. ("mean fill", "meanfill_psnr")
    lower_is_better: bool = True
    unit: str = ""  # printed after each value, e.g. " dB"
    note: str = ""  # how the number was measured, e.g. "bottom half, mean of 8 completions"


class Evaluator(Protocol):
    """Scores a model through sampling functions only (diffusion_policy's env_runner.run(policy) -> dict).

    An evaluator may also define `headlines() -> Sequence[Headline]`, the numbers the end-of-run summary shows.
    """

    def run(self, sample_fn: SampleFn, inpaint_fn: InpaintFn | None = None) -> dict[str, float]: ...


def declared_specs(modality: Modality, conditioning: Sequence[Conditioning]) -> dict[str, CondSpec]:
    """Every condition entry by name: the modality's, then each component's; a name declared twice is an error."""
    specs: dict[str, CondSpec] = {}
    shape = tuple(modality.example_shape())
    for spec in [*modality.cond_specs(), *(s for c in conditioning for s in c.cond_specs(shape))]:
        if spec.name in specs:
            raise ValueError(f"condition entry {spec.name!r} is declared twice")
        specs[spec.name] = spec
    return specs
