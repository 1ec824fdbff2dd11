"""Callbacks: decoded samples to disk and the logger (through the modality), and periodic modality metrics.

References:
    lightning-hydra-template callbacks; k-diffusion train.py (demo grids and FID during training).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from diffkit.modalities.base import Evaluator
from diffkit.training.evaluation import evaluate
from diffkit.training.module import DiffusionModule


def _due(trainer: L.Trainer, every_n_epochs: int) -> bool:
    epoch = trainer.current_epoch + 1
    last = trainer.max_epochs is not None and epoch == trainer.max_epochs
    at_end = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
    return trainer.state.fn == "fit" and not trainer.sanity_checking and (epoch % every_n_epochs == 0 or last or at_end)


class SampleLogger(L.Callback):
    """Every n epochs, draw seeded EMA samples, decode them and hand them to modality.log_samples."""

    def __init__(
        self,
        n: int = 64,
        every_n_epochs: int = 10,
        steps: int | None = None,
        seed: int = 0,
        out_dir: str | None = None,
    ) -> None:
        self.n, self.every_n_epochs, self.steps, self.seed, self.out_dir = (
            n,
            every_n_epochs,
            steps,
            seed,
            out_dir,
        )

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: DiffusionModule) -> None:
        if not _due(trainer, self.every_n_epochs):
            return
        generator = torch.Generator().manual_seed(self.seed)  # the same noise every time: progress is visible
        request = pl_module.modality.request(self.n)  # the modality's showcase request
        samples = pl_module.sample(self.n, request.cond, known=request.known, mask=request.mask, steps=self.steps,
                                   generator=generator)  # fmt: skip
        decoded = pl_module.modality.decode(samples, request.cond)
        out_dir = self.out_dir or str(Path(trainer.default_root_dir) / "samples")
        pl_module.modality.log_samples(decoded, None, trainer.global_step, out_dir)  # files on disk
        for logger in trainer.loggers:  # and to every dashboard (wandb, tensorboard) that takes media
            pl_module.modality.log_samples(decoded, logger, trainer.global_step, None)


class EvaluationCallback(L.Callback):
    """Every n epochs, run the modality's Evaluator on the EMA model and log its numbers as val/<metric>."""

    def __init__(self, evaluator: Evaluator, every_n_epochs: int = 10, steps: int | None = None, seed: int = 0) -> None:
        self.evaluator, self.every_n_epochs, self.steps, self.seed = evaluator, every_n_epochs, steps, seed

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: DiffusionModule) -> None:
        if not _due(trainer, self.every_n_epochs) or not trainer.is_global_zero:
            return  # seeded sampling gives every rank the same numbers: compute them once
        start = time.perf_counter()
        metrics = evaluate(self.evaluator, pl_module, steps=self.steps, seed=self.seed)
        metrics["eval_seconds"] = time.perf_counter() - start
        for key, value in metrics.items():
            pl_module.log(f"val/{key}", float(value), rank_zero_only=True)


def batch_size(batch: Any) -> int:
    """Examples in a batch dict (the first tensor's leading size), for Lightning's ThroughputMonitor."""
    first = next(v for v in batch.values() if isinstance(v, torch.Tensor))
    return int(first.shape[0])
