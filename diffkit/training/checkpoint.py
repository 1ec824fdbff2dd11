"""Safe checkpoints: atomic writes, no non-finite weights over a good file, loads without code execution.

    Trainer(plugins=[AtomicCheckpointIO()])   # conf/trainer/default.yaml sets it for every run

References:
    Lightning TorchCheckpointIO (the interface); EDM (no pickled code in checkpoints).
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from diffkit.io import atomic_write


def non_finite_tensors(state_dict: dict[str, Any]) -> list[str]:
    """Names of floating-point tensors in a state dict that hold NaN or Inf."""
    return [
        name
        for name, value in state_dict.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temp file in the same folder, fsync, rename: a crash mid-write leaves the old file intact.

    A checkpoint whose weights are not finite is refused (FloatingPointError naming the step and tensors), so a
    diverged model never replaces the last good `last.ckpt`. Loading uses torch.load(weights_only=True).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        bad = non_finite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            raise FloatingPointError(
                f"refusing to write {path}: non-finite weights at global step {checkpoint.get('global_step')} "
                f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); the previous checkpoint is kept"
            )

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())

        atomic_write(path, write)

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None) -> Any:
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


class LastCheckpoint(ModelCheckpoint):
    """`last.ckpt` every n training steps and when training ends: what `ckpt_path=last` resumes from.

    It holds the weights, EMA, optimizer, lr scheduler, loop counters, the data position (DataModule.state_dict)
    and the global RNG state, so a resumed run continues exactly where the file was written. It also holds the other
    checkpoint callbacks' records as of the end of that step's validation, so list it after them (train.run does).
    """

    def __init__(self, dirpath: str, every_n_train_steps: int = 100) -> None:
        super().__init__(
            dirpath=dirpath,
            every_n_train_steps=every_n_train_steps,
            save_top_k=0,  # only last.ckpt; the best-by-metric file is ModelCheckpoint's job
            save_last=True,
            enable_version_counter=False,  # always overwrite last.ckpt, never last-v1.ckpt
        )
        self._others_when_saved: list[tuple] | None = None  # the other callbacks' records as last.ckpt holds them

    def _others(self, trainer: L.Trainer) -> list[ModelCheckpoint]:
        return [cb for cb in trainer.checkpoint_callbacks if cb is not self and isinstance(cb, ModelCheckpoint)]

    @staticmethod
    def _record(callbacks: list[ModelCheckpoint]) -> list[tuple]:
        return [(cb.best_model_path, cb.last_model_path, tuple(cb.best_k_models)) for cb in callbacks]

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._others_when_saved = self._record(self._others(trainer))

    def _update_others_in_last(self, trainer: L.Trainer) -> None:
        # last.ckpt written at this step, before validation, does not know the best file that another checkpoint
        # callback has just written, and a run resumed from it would leave that file behind, untracked. Put their
        # new state into last.ckpt and keep the rest as written: the resume stays exact (it does not rerun this
        # validation). train.run orders this callback after the others.
        others = self._others(trainer)
        fitting = trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
        saved_here = self._last_global_step_saved == trainer.global_step and bool(self.last_model_path)
        if not (fitting and saved_here and self._record(others) != self._others_when_saved):
            return
        if trainer.is_global_zero:
            io = trainer.strategy.checkpoint_io
            checkpoint = io.load_checkpoint(self.last_model_path, map_location="cpu")
            checkpoint["callbacks"].update({cb.state_key: cb.state_dict() for cb in others})
            io.save_checkpoint(checkpoint, self.last_model_path)
        self._others_when_saved = self._record(others)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._update_others_in_last(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._update_others_in_last(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
