"""Time series built offline: statsmodels' bundled data sets or a user's CSV, split in time, scaled per series.

One prepared file (`series.npz`) holds the raw values [N,C] (NaN = missing), the channel names, the split points
(train | val | test in time) and the per-series mean/std fitted on the train segment only.

References:
    Hyndman & Athanasopoulos, "Forecasting: Principles and Practice" (3rd ed.), 5.8 (time-ordered splits);
    Salinas et al. 2020 (DeepAR) and Rasul et al. 2021 (TimeGrad): scaling fitted per series.
"""

from __future__ import annotations

import csv
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffkit.io import atomic_write
from diffkit.modalities.base import DataError

SERIES_FILE = "series.npz"
MISSING = {"", "na", "nan", "null", "none", "?"}  # cells read as a missing value (case-insensitive)


@dataclass(frozen=True)
class Series:
    """A prepared multivariate series: values [N,C] (NaN = missing), split points, train-fitted scaling."""

    values: np.ndarray  # [N,C] float64 in data units
    names: tuple[str, ...]  # [C]
    n_train: int  # values[:n_train] is the train segment
    n_val: int  # then val, then the rest is test
    mean: np.ndarray  # [C], fitted on the train segment
    std: np.ndarray  # [C]

    def bounds(self, split: str) -> tuple[int, int]:
        """[start, end) of a split's segment in time."""
        edges = {"train": (0, self.n_train), "val": (self.n_train, self.n_train + self.n_val)}
        edges["test"] = (self.n_train + self.n_val, len(self.values))
        if split not in edges:
            raise ValueError(f"unknown split {split!r}; choose train, val or test")
        return edges[split]

    def scaled(self) -> np.ndarray:
        """(values - mean) / std, [N,C]; NaN stays NaN."""
        return (self.values - self.mean) / self.std

    def windows(self, split: str, length: int, stride: int, *, complete: bool = False) -> np.ndarray:
        """Start indices of windows of `length` steps inside a split's segment (complete: no missing value)."""
        start, end = self.bounds(split)
        starts = np.arange(start, end - length + 1, stride)
        if complete:
            observed = ~np.isnan(self.values).any(axis=1)
            starts = np.array([s for s in starts if observed[s : s + length].all()], dtype=np.int64)
        if len(starts) == 0:
            raise DataError(f"the {split} segment ({end - start} steps) holds no window of {length} steps")
        return starts


def load_statsmodels(name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """(values [N,C], names) of a statsmodels data set: co2 (weekly), elnino (monthly), sunspots, nile, macrodata."""
    from statsmodels import datasets  # lazy: only data preparation needs statsmodels

    if name == "elnino":  # one row per year, one column per month -> one monthly series
        frame = datasets.elnino.load_pandas().data
        return frame.drop(columns="YEAR").to_numpy(float).reshape(-1, 1), ("sst",)
    if name == "macrodata":  # quarterly; the real (inflation-adjusted) aggregates
        frame = datasets.macrodata.load_pandas().data[["realgdp", "realcons", "realinv"]]
        return frame.to_numpy(float), tuple(frame.columns)
    frames = {"co2": ("co2", ["co2"]), "sunspots": ("sunspots", ["SUNACTIVITY"]), "nile": ("nile", ["volume"])}
    if name not in frames:
        raise DataError(f"unknown statsmodels data set {name!r}; choose elnino, co2, macrodata, sunspots or nile")
    module, columns = frames[name]
    frame = getattr(datasets, module).load_pandas().data[columns]
    return frame.to_numpy(float), tuple(columns)


def load_csv(path: str | os.PathLike, time_column: str = "time") -> tuple[np.ndarray, tuple[str, ...]]:
    """(values [N,C], names) of a CSV with a header: a time column and numeric value columns (empty/NA = missing).

    Bad input raises one DataError naming the file, the row (1 = header) and the column.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if not rows:
        raise DataError(f"{path}, row 1: the file is empty; expected a header with column {time_column!r}")
    header = [name.strip() for name in rows[0]]
    if time_column not in header:
        raise DataError(f"{path}, row 1: no time column {time_column!r} in the header {header}")
    names = tuple(name for name in header if name != time_column)
    if not names:
        raise DataError(f"{path}, row 1: no value columns besides the time column {time_column!r}")
    values, seen = np.full((len(rows) - 1, len(names)), math.nan), set()
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path}, row {r}: {len(row)} fields, the header has {len(header)}")
        cells = dict(zip(header, row))
        stamp = cells[time_column].strip()
        if not stamp or stamp in seen:
            raise DataError(f"{path}, row {r}, column {time_column!r}: {'empty' if not stamp else 'repeated'} time")
        seen.add(stamp)
        for c, name in enumerate(names):
            cell = cells[name].strip()
            if cell.lower() in MISSING:
                continue
            try:
                values[r - 2, c] = float(cell)
            except ValueError:
                raise DataError(f"{path}, row {r}, column {name!r}: {cell!r} is not a number") from None
            if not math.isfinite(values[r - 2, c]):
                raise DataError(f"{path}, row {r}, column {name!r}: {cell!r} is not a finite number")
    return values, names


def load_source(source: str, time_column: str = "time") -> tuple[np.ndarray, tuple[str, ...]]:
    """A statsmodels data set by name, or a CSV file by path (ends in .csv)."""
    return load_csv(source, time_column) if source.endswith(".csv") else load_statsmodels(source)


def split_and_scale(values: np.ndarray, names: tuple[str, ...], fractions: tuple[float, float]) -> Series:
    """Split in time (train | val | test by the val and test `fractions`); mean/std per series on train only."""
    n = len(values)
    n_val, n_test = round(n * fractions[0]), round(n * fractions[1])
    n_train = n - n_val - n_test
    train = values[:n_train]
    if n_train < 2 or np.isnan(train).all(axis=0).any():
        raise DataError(f"the train segment ({n_train} steps) has a series with no observed value")
    mean, std = np.nanmean(train, axis=0), np.nanstd(train, axis=0)
    return Series(values, names, n_train, n_val, mean, np.where(std > 0, std, 1.0))


def prepare_series(out_dir: str | os.PathLike, source: str, *, time_column: str = "time",
                   fractions: tuple[float, float] = (0.1, 0.2)) -> Path:  # fmt: skip
    """Write out_dir/series.npz from a source (statsmodels name or CSV path)."""
    series = split_and_scale(*load_source(source, time_column), tuple(fractions))
    arrays = {"values": series.values, "names": np.array(series.names), "mean": series.mean, "std": series.std,
              "splits": np.array([series.n_train, series.n_val])}  # fmt: skip

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    return atomic_write(Path(out_dir) / SERIES_FILE, write)


def load_series(data_dir: str | os.PathLike, prepare: str = "data/elnino/prepare.py") -> Series:
    """The prepared series in data_dir; one clear error naming the file when it is missing or damaged."""
    path = Path(data_dir) / SERIES_FILE
    if not path.is_file():
        raise DataError(f"time-series data not found: {path} (build it with `python {prepare}`)")
    try:
        with np.load(path) as data:
            values, names, mean, std = data["values"], tuple(data["names"].tolist()), data["mean"], data["std"]
            n_train, n_val = (int(v) for v in data["splits"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{path} is damaged ({type(err).__name__}: {err}); delete it and run `python {prepare}`"
        ) from None
    return Series(values, names, n_train, n_val, mean, std)
