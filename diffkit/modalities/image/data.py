"""Lightning DataModules for images: the real 8x8 digits, built locally on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffkit.modalities.image.datasets import (
    DIGITS_FILE,
    DIGITS_LEVELS,
    load_digits_split,
    prepare_digits,
    to_model_space,
)


class ImageLabelDataset(Dataset):
    """Model-space images [N,C,H,W] with integer labels [N]; items are {"image", "label"} dicts."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"image": self.images[i], "label": self.labels[i]}


class DigitsDataModule(L.LightningDataModule):
    """scikit-learn's 8x8 digit scans: batches {"image": float [B,1,8,8] in [-1,1], "label": long [B]}."""

    def __init__(
        self,
        data_dir: str = "data/digits/out",
        batch_size: int = 128,  # global batch; divided by the number of devices in setup()
        num_workers: int = 0,
        seed: int = 0,  # seed of the train/val/test split
    ) -> None:
        super().__init__()
        self.data_dir, self.batch_size, self.num_workers, self.seed = Path(data_dir), batch_size, num_workers, seed
        self.per_device_batch = batch_size
        self.splits: dict[str, ImageLabelDataset] = {}

    @property
    def path(self) -> Path:
        return self.data_dir / DIGITS_FILE

    def prepare_data(self) -> None:
        if not self.path.exists():
            prepare_digits(self.data_dir, seed=self.seed)

    def setup(self, stage: str | None = None) -> None:
        world = self.trainer.world_size if self.trainer is not None else 1
        if self.batch_size % world:
            raise ValueError(f"data.batch_size={self.batch_size} is not divisible by the {world} devices")
        self.per_device_batch = self.batch_size // world
        if not self.path.exists():  # setup() without prepare_data(), e.g. in a notebook
            self.prepare_data()
        for split in ("train", "val", "test"):
            images, labels = load_digits_split(self.path, split)
            self.splits[split] = ImageLabelDataset(to_model_space(images, DIGITS_LEVELS), torch.as_tensor(labels))

    def arrays(self, split: str) -> tuple[Tensor, Tensor]:
        """(images [N,1,8,8] in [-1,1], labels [N]) of a split, for evaluation."""
        if split not in self.splits:
            self.setup()
        return self.splits[split].images, self.splits[split].labels

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        kwargs: dict[str, Any] = {"persistent_workers": self.num_workers > 0}
        return DataLoader(
            self.splits[split],
            batch_size=self.per_device_batch,
            shuffle=shuffle,
            num_workers=self.num_workers,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
