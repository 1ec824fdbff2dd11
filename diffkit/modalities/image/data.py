"""Lightning DataModules for images built locally on first use: the real 8x8 digits and Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffkit.io import exclusive
from diffkit.modalities.data import ResumableDataModule, ResumableSampler
from diffkit.modalities.image.datasets import (
    DIGITS_FILE,
    DIGITS_LEVELS,
    load_digits_split,
    prepare_digits,
    to_model_space,
)
from diffkit.modalities.image.fashion_mnist import (
    FASHION_FILE,
    FASHION_LEVELS,
    FASHION_SOURCE,
    load_fashion_split,
    prepare_fashion_mnist,
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


class NpzImageDataModule(ResumableDataModule):
    """Images from one prepared npz with train/val/test splits: batches {"image": [B,1,H,W] in [-1,1], "label"}."""

    file_name: str = ""  # the npz inside data_dir
    levels: int = 255  # grey levels - 1 of the stored uint8 images

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 128,  # global batch; divided by the number of devices in setup()
        num_workers: int = 0,
        seed: int = 0,  # seed of the train/val split
    ) -> None:
        super().__init__()
        self.data_dir, self.batch_size, self.num_workers, self.seed = Path(data_dir), batch_size, num_workers, seed
        self.per_device_batch = batch_size
        self.splits: dict[str, ImageLabelDataset] = {}

    @property
    def path(self) -> Path:
        return self.data_dir / self.file_name

    def build(self) -> None:
        """Write the npz at self.path from its source."""
        raise NotImplementedError

    def load_split(self, split: str) -> tuple[Any, Any]:
        """(uint8 images [N,H,W], labels [N]) of one split."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        with exclusive(self.data_dir):  # built once when several processes start together
            if not self.path.exists():
                self.build()

    def setup(self, stage: str | None = None) -> None:
        self.split_global_batch(self.batch_size)
        if not self.path.exists():  # setup() without prepare_data(), e.g. in a notebook
            self.prepare_data()
        for split in ("train", "val", "test"):
            images, labels = self.load_split(split)
            self.splits[split] = ImageLabelDataset(to_model_space(images, self.levels), torch.as_tensor(labels))

    def arrays(self, split: str) -> tuple[Tensor, Tensor]:
        """(images [N,1,H,W] in [-1,1], labels [N]) of a split, for evaluation."""
        if split not in self.splits:
            self.setup()
        return self.splits[split].images, self.splits[split].labels

    def _loader(self, split: str, shuffle: bool, sampler: ResumableSampler | None = None) -> DataLoader:
        kwargs: dict[str, Any] = {"persistent_workers": self.num_workers > 0}
        return DataLoader(
            self.splits[split],
            batch_size=self.per_device_batch,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled and sharded across ranks; resumes mid-epoch exactly (ResumableDataModule)."""
        return self._loader("train", shuffle=False, sampler=self.train_sampler(self.splits["train"], self.seed))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class DigitsDataModule(NpzImageDataModule):
    """scikit-learn's 8x8 digit scans (80/10/10 stratified splits): images [B,1,8,8] in [-1,1], labels [B]."""

    file_name, levels = DIGITS_FILE, DIGITS_LEVELS

    def __init__(self, data_dir: str = "data/digits/out", batch_size: int = 128, num_workers: int = 0, seed: int = 0):
        super().__init__(data_dir, batch_size, num_workers, seed)

    def build(self) -> None:
        prepare_digits(self.data_dir, seed=self.seed)

    def load_split(self, split: str) -> tuple[Any, Any]:
        return load_digits_split(self.path, split)


class FashionMNISTDataModule(NpzImageDataModule):
    """Fashion-MNIST 28x28 (55k train / 5k fixed val / 10k test): images [B,1,28,28] in [-1,1], labels [B]."""

    file_name, levels = FASHION_FILE, FASHION_LEVELS

    def __init__(
        self,
        data_dir: str = "data/fashion_mnist/out",
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        source: str = FASHION_SOURCE,  # folder with the IDX files (the Debian package's by default)
        val_per_class: int = 500,  # validation images carved from the training set per class
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed)
        self.source, self.val_per_class = source, val_per_class

    def build(self) -> None:
        prepare_fashion_mnist(self.data_dir, source=self.source, val_per_class=self.val_per_class, seed=self.seed)

    def load_split(self, split: str) -> tuple[Any, Any]:
        return load_fashion_split(self.path, split)
