"""Captioned image data: batches {"image", "label", "caption"} with captions built from the data itself.

    data = CaptionedFashionMNISTDataModule(data_dir="data/fashion_mnist/out")   # terciles fitted on the train split

Train and validation captions use the training phrasings (held-out (class, attribute) pairs by class only); the
test split uses the held-out phrasings and every pair (diffkit.modalities.latent.captions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from diffkit.modalities.image.data import DigitsDataModule, FashionMNISTDataModule
from diffkit.modalities.latent.captions import CLASS_NAMES, DIGIT_NAMES, Captioner, attribute_of, fit_terciles


class CaptionedDataset(Dataset):
    """An {"image", "label"} data set plus a caption drawn afresh at every visit (the torch default RNG, which
    Lightning seeds), so each image is seen under many phrasings."""

    def __init__(self, base: Any, captioner: Captioner, terciles: Tensor) -> None:
        self.base, self.captioner = base, captioner
        self.images, self.labels = base.images, base.labels
        self.attributes = attribute_of(base.images, base.labels, terciles)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, Any]:
        caption = self.captioner.caption(int(self.labels[i]), int(self.attributes[i]))
        return {"image": self.images[i], "label": self.labels[i], "caption": caption}


def caption_splits(splits: dict[str, Any], class_names: Sequence[str]) -> Tensor:
    """Wrap the train/val/test data sets of a data module in place; returns the terciles fitted on train."""
    terciles = fit_terciles(splits["train"].images, splits["train"].labels, len(class_names))
    for split in ("train", "val", "test"):
        captioner = Captioner(terciles, split="test" if split == "test" else "train", class_names=class_names)
        splits[split] = CaptionedDataset(splits[split], captioner, terciles)
    return terciles


class CaptionedFashionMNISTDataModule(FashionMNISTDataModule):
    """Fashion-MNIST with captions (class phrasings + per-class brightness terciles fitted on the train split)."""

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        self.terciles = caption_splits(self.splits, CLASS_NAMES)


class CaptionedDigitsDataModule(DigitsDataModule):
    """The 8x8 digits with captions ("a dark seven"); the seconds-long smoke data of recipe=smoke/text_latent."""

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        self.terciles = caption_splits(self.splits, DIGIT_NAMES)
