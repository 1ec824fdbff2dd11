"""The adapter contract every modality implements: raw batch <-> tensors, decoding, logging, metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from torch import Tensor

from diffkit.core.types import Cond


class DataError(ValueError):
    """Input data that cannot be used (damaged file, wrong shape, missing field); the message names the input."""


SampleFn = Callable[[int, Cond | None], Tensor]  # (n, cond) -> n samples in model space
InpaintFn = Callable[[Tensor, Tensor, Cond | None], Tensor]  # (known, mask with 1 = known, cond) -> completions


class Modality(Protocol):
    """What the generic DiffusionModule needs from a data type (image, audio, text, trajectory)."""

    kind: Literal["gaussian", "discrete"]

    def example_shape(self) -> tuple[int, ...]: ...  # x0 shape without batch

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]: ...  # raw batch -> (x0, cond)

    def decode(self, x0: Tensor) -> Any: ...  # model space -> images / waveforms / strings

    def log_samples(self, samples: Any, logger: Any, step: int, out_dir: str | None = None) -> None: ...

    def example_cond(self, n: int, device: Any) -> Cond | None: ...  # conditions for n showcase samples


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
