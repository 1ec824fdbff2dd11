"""The time-series modality adapter: windows [B,C,T] of per-series standardised values, forecasting and imputation
requests (given entries held by the conditioning components), fan charts of many samples per window.

References:
    Rasul et al. 2021 (TimeGrad: diffusion forecasting, per-series scaling); Tashiro et al. 2021 (CSDI: diffusion
    imputation, given entries and their mask); Lugmayr et al. 2022 (conditioning by replacement).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffkit.core.types import Cond, CondSpec
from diffkit.modalities.base import DataError, Request
from diffkit.modalities.timeseries.datasets import Series, load_series
from diffkit.modalities.timeseries.masks import forecast_mask, point_mask
from diffkit.modalities.timeseries.plots import fan_chart, save_png

TASKS = ("forecast", "impute")


class TimeSeriesModality:
    """Windows of `length` steps of C series, scaled by the train segment's mean/std per series (model space);
    decode() returns data units. No condition entries of its own: the past or the observed points are given
    entries (Request.known/mask), held by replacement or read by a net trained on masks (KnownInputs)."""

    bin_width = None  # continuous values

    def __init__(
        self,
        channels: int = 1,
        length: int = 48,  # steps per window
        context: int = 36,  # forecasting: steps given before the horizon (length - context steps)
        task: str = "forecast",  # what requests and evaluation mean by default: forecast or impute
        missing: float = 0.5,  # imputation: share of the window's points hidden
        data_dir: str = "data/elnino/out",  # the prepared series.npz (scaling fitted on train, evaluation windows)
        prepare: str = "data/elnino/prepare.py",  # how to build it, named in errors
        sigma_data: float = 1.0,  # std of standardised values (EDM's σ_data; precond and loss interpolate it)
    ) -> None:
        if not 0 < context < length:
            raise ValueError(f"TimeSeriesModality: context must be in (0, length={length}), got {context}")
        if task not in TASKS:
            raise ValueError(f"TimeSeriesModality: task must be one of {TASKS}, got {task!r}")
        if not 0.0 < float(missing) < 1.0:
            raise ValueError(f"TimeSeriesModality: missing must be in (0, 1), got {missing}")
        self.channels, self.length, self.context, self.task = int(channels), int(length), int(context), task
        self.missing, self.data_dir, self.prepare, self.sigma_data = (
            float(missing),
            data_dir,
            prepare,
            float(sigma_data),
        )
        self._series: Series | None = None
        self.showcase: tuple[np.ndarray, np.ndarray] | None = None  # (truth, given) [C,T] of the last request

    def example_shape(self) -> tuple[int, ...]:
        return (self.channels, self.length)

    def cond_specs(self) -> tuple[CondSpec, ...]:
        return ()

    @property
    def series(self) -> Series:
        """The prepared series (loaded on first use; the data module builds it)."""
        if self._series is None:
            self._series = load_series(self.data_dir, self.prepare)
            if len(self._series.names) != self.channels:
                raise DataError(f"{self.data_dir} has {len(self._series.names)} series; modality.channels is "
                                f"{self.channels}")  # fmt: skip
        return self._series

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]:
        x0 = batch.get("series") if isinstance(batch, Mapping) else None
        if not isinstance(x0, Tensor) or tuple(x0.shape[1:]) != self.example_shape():
            shape = tuple(getattr(x0, "shape", ()))
            raise DataError(f"time-series batch 'series' has shape {shape}; expected [B, {self.channels}, "
                            f"{self.length}]")  # fmt: skip
        return x0, {}

    def scale(self, values: np.ndarray | Tensor) -> Tensor:
        """Data units [...,C,T] -> model space (train mean/std per series); NaN stays NaN."""
        mean, std = (torch.as_tensor(a, dtype=torch.float32)[:, None] for a in (self.series.mean, self.series.std))
        return (torch.as_tensor(values, dtype=torch.float32) - mean) / std

    def decode(self, x0: Tensor, cond: Cond | None = None) -> Tensor:
        """Model space [B,C,T] -> data units [B,C,T] (float32, CPU)."""
        mean, std = (torch.as_tensor(a, dtype=torch.float32)[:, None] for a in (self.series.mean, self.series.std))
        return x0.detach().float().cpu() * std + mean

    def window_starts(self, split: str) -> np.ndarray:
        """Evaluation windows of a split: forecast origins every horizon (each future step scored once), or
        non-overlapping windows for imputation."""
        stride = self.length - self.context if self.task == "forecast" else self.length
        return self.series.windows(split, self.length, stride)

    def given_mask(self, truth: np.ndarray, task: str, generator: torch.Generator | None = None) -> Tensor:
        """1 = given: the observed past (forecast) or observed points kept at random (impute); [C,T] float."""
        observed = torch.as_tensor(~np.isnan(truth), dtype=torch.float32)
        if task == "forecast":
            return forecast_mask(tuple(truth.shape), self.context) * observed
        return point_mask(tuple(truth.shape), self.missing, generator) * observed

    def request(self, n: int, window: int = 0, split: str = "test", task: str | None = None, seed: int = 0) -> Request:
        """`+request.window=3 +request.split=test +request.task=impute`: n samples of one evaluation window with its
        past (forecast) or a seeded random part of its points (impute) given; by default test window 0."""
        task = task or self.task
        if task not in TASKS:
            raise DataError(f"request.task must be one of {TASKS}, got {task!r}")
        starts = self.window_starts(split)
        if not 0 <= int(window) < len(starts):
            raise DataError(f"request.window must be in [0, {len(starts)}) for the {split} split, got {window}")
        start = int(starts[int(window)])
        truth = self.series.values[start : start + self.length].T  # [C,T]
        mask = self.given_mask(truth, task, torch.Generator().manual_seed(int(seed)))
        known = torch.nan_to_num(self.scale(truth)) * mask
        self.showcase = (truth, mask.numpy())
        return Request(known=known.expand(n, -1, -1), mask=mask.expand(n, -1, -1))

    def log_samples(self, samples: Tensor, logger: Any, step: int, out_dir: str | None = None) -> None:
        """A fan chart of all samples (one window: the last request's, with its truth) as PNG and wandb image."""
        truth, given = self.showcase if self.showcase is not None else (None, None)
        if truth is not None and truth.shape != tuple(samples.shape[1:]):
            truth = given = None
        image = fan_chart(np.asarray(samples), truth=truth, given=given, names=self.series.names,
                          title=f"{len(samples)} samples, step {step}")  # fmt: skip
        if out_dir is not None:
            save_png(image, os.path.join(out_dir, f"samples_step{step:06d}.png"))
        if logger is not None and hasattr(logger, "log_image"):  # wandb
            logger.log_image(key="samples/fan_chart", images=[image], step=step)
        elif logger is not None and hasattr(getattr(logger, "experiment", None), "add_image"):  # tensorboard
            logger.experiment.add_image("samples/fan_chart", image, step, dataformats="HWC")
