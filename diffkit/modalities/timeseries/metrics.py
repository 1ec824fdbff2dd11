"""Probabilistic scores of many samples per window (CRPS, median MSE/MAE, 50%/90% interval coverage) and the
time-series Evaluator that scores the model beside its baselines on held-out windows.

References:
    Gneiting & Raftery 2007 (CRPS, a strictly proper score); Tashiro et al. 2021 (CSDI: CRPS and MAE of the
    median for imputation); Rasul et al. 2021 (TimeGrad: CRPS of forecast samples).
"""

from __future__ import annotations

import numpy as np
import torch

from diffkit.modalities.base import Headline, InpaintFn, SampleFn
from diffkit.modalities.timeseries.adapter import TimeSeriesModality
from diffkit.modalities.timeseries.baselines import AutoRegressive, interpolate, seasonal_naive


def crps_ensemble(y: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """CRPS of an ensemble [...,S] at observations [...]: E|X - y| - E|X - X'|/2 (Gneiting & Raftery 2007, eq. 21),
    the pairwise term from sorted samples in O(S log S); equals properscoring.crps_ensemble."""
    s = samples.shape[-1]
    spread = np.sort(samples, axis=-1) @ (2 * np.arange(s) - s + 1) / s**2  # E|X - X'| = sum_ij |x_i - x_j| / S^2
    return np.abs(samples - y[..., None]).mean(-1) - spread


def probabilistic_scores(samples: np.ndarray, truth: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Scores over the target entries: samples [W,S,C,T], truth and target mask [W,C,T] (NaN truth is skipped)."""
    keep = (target > 0) & ~np.isnan(truth)
    if not keep.any():
        raise ValueError("probabilistic_scores: no observed target entry to score")
    ens = np.moveaxis(samples, 1, -1)[keep]  # [n,S]
    y = truth[keep]
    lo90, lo50, median, hi50, hi90 = np.quantile(ens, [0.05, 0.25, 0.5, 0.75, 0.95], axis=1)
    return {
        "crps": float(crps_ensemble(y, ens).mean()),
        "mae": float(np.abs(median - y).mean()),
        "mse": float(((median - y) ** 2).mean()),
        "coverage50": float(((y >= lo50) & (y <= hi50)).mean()),
        "coverage90": float(((y >= lo90) & (y <= hi90)).mean()),
        "n_points": float(keep.sum()),
    }


class TimeSeriesEvaluator:
    """Forecast (or impute) every evaluation window of a split with n_samples samples each and score them in data
    units beside seasonal-naive and AR(p) (forecast) or linear interpolation (impute) on the same entries."""

    def __init__(
        self,
        modality: TimeSeriesModality,
        n_samples: int = 100,  # samples per window (quantiles, CRPS)
        split: str = "test",
        period: int = 12,  # season length of the seasonal-naive baseline (12 for monthly data)
        ar_lags: int | None = None,  # AR order; None = chosen by AIC on the train segment, up to the context
        n_masks: int = 4,  # imputation: random masks per window
        seed: int = 0,
    ) -> None:
        self.modality, self.n_samples, self.split, self.period = modality, int(n_samples), split, int(period)
        self.ar_lags, self.n_masks, self.seed = ar_lags, int(n_masks), int(seed)

    def _windows(self) -> tuple[np.ndarray, torch.Tensor]:
        """Truth [W,C,T] in data units and given masks [W,C,T] (1 = given) of the split's evaluation windows."""
        m, generator = self.modality, torch.Generator().manual_seed(self.seed)
        values, length = m.series.values, m.length
        truths = [values[s : s + length].T for s in m.window_starts(self.split)]
        if m.task == "impute":
            truths = [t for t in truths for _ in range(self.n_masks)]
        masks = torch.stack([m.given_mask(t, m.task, generator) for t in truths])
        return np.stack(truths), masks

    def run(self, sample_fn: SampleFn, inpaint_fn: InpaintFn | None = None) -> dict[str, float]:
        if inpaint_fn is None:
            return {}
        m, s = self.modality, self.n_samples
        truth, mask = self._windows()
        known = torch.nan_to_num(m.scale(truth)) * mask
        samples = m.decode(inpaint_fn(known.repeat_interleave(s, 0), mask.repeat_interleave(s, 0), None))
        samples = samples.reshape(len(truth), s, *truth.shape[1:]).numpy().astype(float)
        target = 1.0 - mask.numpy()
        if m.task == "forecast":
            target[..., : m.context] = 0  # the horizon only (a missing past point is not a forecast)
        metrics = probabilistic_scores(samples, truth, target)
        metrics["n_windows"] = float(len(truth))
        for name, baseline in self._baselines(truth, mask.numpy()).items():
            metrics.update({f"{name}_{k}": v for k, v in probabilistic_scores(baseline, truth, target).items()})
        return metrics

    def _baselines(self, truth: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """Baseline samples [W,S',C,T] in data units (a point forecast is one sample: its CRPS is its MAE)."""
        m = self.modality
        if m.task == "impute":
            return {"interp": np.stack([interpolate(t, g) for t, g in zip(truth, mask)])[:, None]}
        context, horizon = truth[..., : m.context], m.length - m.context
        naive = np.stack([seasonal_naive(c, horizon, self.period) for c in context])
        mean, std = m.series.mean[:, None], m.series.std[:, None]
        train = m.series.scaled()[: m.series.n_train]
        ar = AutoRegressive(train, lags=self.ar_lags, max_lags=m.context)
        rng = np.random.default_rng(self.seed)
        paths = np.stack([ar.sample((c - mean) / std, horizon, self.n_samples, rng) * std + mean for c in context])
        return {"snaive": np.concatenate([context, naive], -1)[:, None],
                "ar": np.concatenate([np.repeat(context[:, None], self.n_samples, 1), paths], -1)}  # fmt: skip

    def headlines(self) -> tuple[Headline, ...]:
        """CRPS and the median's MAE beside the baselines (coverage is in the metrics: nearest 0.5/0.9 is best)."""
        n = f"{self.split} windows, {self.n_samples} samples each, data units"
        if self.modality.task == "impute":
            base = (("linear interp.", "interp_crps"),)
            return (Headline("CRPS", "crps", base, note=n), Headline("MAE of median", "mae", (("linear interp.",
                    "interp_mae"),), note=n))  # fmt: skip
        base = (("seasonal naive", "snaive_crps"), ("AR", "ar_crps"))
        mae = (("seasonal naive", "snaive_mae"), ("AR", "ar_mae"))
        return Headline("CRPS", "crps", base, note=n), Headline("MAE of median", "mae", mae, note=n)
