"""Progress of long work: a rich bar on a terminal and one INFO line per batch for log files; a training bar that
counts steps, the budget diffkit's recipes set (trainer.max_steps), with the time left for the whole run."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

log = logging.getLogger(__name__)


def track_slices(slices: Sequence[slice], what: str) -> Iterator[slice]:
    """Yield `slices` (consecutive batches of one job) while showing items done, elapsed and remaining time."""
    total = slices[-1].stop if slices else 0
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    start = time.monotonic()
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(what, total=total)
        for sl in slices:
            yield sl
            bar.advance(task, sl.stop - sl.start)
            elapsed = time.monotonic() - start
            left = elapsed * (total - sl.stop) / max(sl.stop, 1)
            log.info("%s: %d/%d done in %.0f s, about %.0f s left", what, sl.stop, total, elapsed, left)


class StepProgressBar(RichProgressBar):
    """Lightning's rich bar with `step s/max_steps` and the run's time left (mean pace since this fit started)
    beside the metrics, and "Epoch n" instead of "Epoch n/-2" when there is no epoch budget (max_epochs=-1)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._start: tuple[float, int] | None = None  # (time, global step) when this fit started training

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._start = (time.monotonic(), trainer.global_step)  # a resumed run starts at its checkpoint's step

    def _get_train_description(self, current_epoch: int) -> str:
        if self.trainer.max_epochs is not None and self.trainer.max_epochs >= 0:
            return super()._get_train_description(current_epoch)
        return f"{f'Epoch {current_epoch}':{len(self.validation_description)}}"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float | dict]:
        metrics = super().get_metrics(trainer, pl_module)
        step, max_steps = trainer.global_step, trainer.max_steps
        if max_steps is None or max_steps < 0:
            return metrics
        metrics["step"] = f"{step}/{max_steps}"
        start_time, start_step = self._start or (time.monotonic(), step)
        if step > start_step:
            left = (time.monotonic() - start_time) / (step - start_step) * (max_steps - step)
            metrics["left"] = str(datetime.timedelta(seconds=round(left)))  # h:mm:ss
        return metrics
