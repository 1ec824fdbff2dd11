"""TimeSeriesDataModule: windows [B,C,T] of a prepared series (statsmodels data set or CSV), built on first use.

Training windows slide by one step over the train segment and hold no missing value; validation and test windows
lie inside their own later segments and do not overlap, so no step is in two splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffkit.io import exclusive
from diffkit.modalities.data import ResumableDataModule
from diffkit.modalities.timeseries.datasets import SERIES_FILE, Series, load_series, prepare_series


class WindowDataset(Dataset):
    """Windows of a model-space series [N,C] at the given starts; items are {"series": [C,T]} (NaN kept)."""

    def __init__(self, scaled: Tensor, starts: Tensor, length: int) -> None:
        self.scaled, self.starts, self.length = scaled, starts, length

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        start = int(self.starts[i])
        return {"series": self.scaled[start : start + self.length].T.contiguous()}


class TimeSeriesDataModule(ResumableDataModule):
    """Windows of `length` steps of a series split in time (train | val | test), scaled per series on train."""

    def __init__(
        self,
        data_dir: str = "data/elnino/out",
        source: str = "elnino",  # a statsmodels data set (elnino, co2, macrodata, ...) or a path to a .csv file
        time_column: str = "time",  # the CSV's time column
        length: int = 48,  # steps per window
        fractions: tuple[float, float] = (0.1, 0.2),  # val and test shares of the steps, the latest in time
        batch_size: int = 64,  # global batch; divided by the number of devices in setup()
        num_workers: int = 0,
        seed: int = 0,  # seed of the training shuffle
    ) -> None:
        super().__init__()
        self.data_dir, self.source, self.time_column = Path(data_dir), str(source), time_column
        self.length, self.fractions, self.batch_size = int(length), tuple(fractions), int(batch_size)
        self.num_workers, self.seed, self.per_device_batch = num_workers, seed, int(batch_size)
        self.splits: dict[str, WindowDataset] = {}
        self.series: Series | None = None

    def prepare_data(self) -> None:
        with exclusive(self.data_dir):  # built once when several processes start together
            if not (self.data_dir / SERIES_FILE).exists():
                prepare_series(self.data_dir, self.source, time_column=self.time_column, fractions=self.fractions)

    def setup(self, stage: str | None = None) -> None:
        self.split_global_batch(self.batch_size)
        self.prepare_data()
        self.series = load_series(self.data_dir)
        scaled = torch.as_tensor(self.series.scaled(), dtype=torch.float32)
        for split in ("train", "val", "test"):
            stride = 1 if split == "train" else self.length
            starts = self.series.windows(split, self.length, stride, complete=True)  # the loss needs every value
            self.splits[split] = WindowDataset(scaled, torch.as_tensor(starts), self.length)

    def _loader(self, split: str, **kwargs: Any) -> DataLoader:
        return DataLoader(self.splits[split], batch_size=self.per_device_batch, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, **kwargs)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        """Shuffled and sharded across ranks; resumes mid-epoch exactly (ResumableDataModule)."""
        return self._loader("train", sampler=self.train_sampler(self.splits["train"], self.seed))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
