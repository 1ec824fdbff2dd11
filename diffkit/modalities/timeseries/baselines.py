"""Baselines a diffusion forecaster has to beat: seasonal-naive, a linear autoregressive model, linear interpolation.

References:
    Hyndman & Athanasopoulos, "Forecasting: Principles and Practice" (3rd ed.), 5.2 (seasonal naive) and 9.3
    (AR(p)); statsmodels AutoReg / ar_select_order (least squares fit, lag order by AIC).
"""

from __future__ import annotations

import numpy as np


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """Missing values (NaN) of each row [C,T] filled by linear interpolation (constant beyond the ends)."""
    out = np.array(values, dtype=float)
    t = np.arange(out.shape[-1])
    for row in out.reshape(-1, out.shape[-1]):
        seen = ~np.isnan(row)
        row[:] = np.interp(t, t[seen], row[seen]) if seen.any() else 0.0
    return out


def interpolate(values: np.ndarray, given: np.ndarray) -> np.ndarray:
    """Each series [C,T] linearly interpolated between its given points (mask 1); the imputation baseline."""
    return fill_gaps(np.where(given > 0, values, np.nan))


def seasonal_naive(context: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """y[L+h] = y[L+h-k·period] with the last observed season repeated: context [C,L] -> forecast [C,horizon]."""
    length = context.shape[-1]
    if not 0 < period <= length:
        raise ValueError(f"seasonal_naive: period {period} must be in [1, context length {length}]")
    return fill_gaps(context)[:, length - period + np.arange(horizon) % period]


class AutoRegressive:
    """A linear AR(p) model with intercept per series, fitted by least squares on the train segment (statsmodels
    AutoReg; p by AIC up to max_lags when lags is None); forecasts are sample paths with Gaussian innovations."""

    def __init__(self, train: np.ndarray, *, lags: int | None = None, max_lags: int = 24) -> None:
        from statsmodels.tsa.ar_model import AutoReg, ar_select_order  # lazy: only the baseline needs statsmodels

        self.params: list[tuple[float, np.ndarray, float]] = []  # (intercept, phi [p], innovation std) per series
        for series in fill_gaps(train.T):  # [C,N]
            p = lags if lags is not None else max(1, max(ar_select_order(series, max_lags, trend="c").ar_lags or [1]))
            fit = AutoReg(series, lags=p, trend="c").fit()
            self.params.append((float(fit.params[0]), np.asarray(fit.params[1:]), float(np.sqrt(fit.sigma2))))

    def sample(self, context: np.ndarray, horizon: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """n sample paths [n,C,horizon] continuing context [C,L] (which must hold at least p steps)."""
        context = fill_gaps(context)
        out = np.empty((n, len(self.params), horizon))
        for c, (intercept, phi, std) in enumerate(self.params):
            p = len(phi)
            if p > context.shape[-1]:
                raise ValueError(f"AR({p}) needs {p} steps of context, got {context.shape[-1]}")
            path = np.tile(context[c, -p:], (n, 1))  # [n,p], oldest first
            for h in range(horizon):
                nxt = intercept + path[:, ::-1][:, :p] @ phi + std * rng.standard_normal(n)  # phi[0] is lag 1
                out[:, c, h] = nxt
                path = np.concatenate([path[:, 1:], nxt[:, None]], axis=1)
        return out
