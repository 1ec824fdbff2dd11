"""Fashion-MNIST from the Debian package `dataset-fashion-mnist` (IDX files), saved as one npz with fixed splits.

The 10,000 test images stay the test split; a fixed validation split (5,000 images, 500 per class, seed 0) is
carved from the 60,000 training images, so evaluation never touches data the model was tuned on.

References:
    Xiao, Rasul & Vollgraf 2017, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms".
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from diffkit.modalities.image.datasets import load_npz_split, save_npz
from diffkit.modalities.image.idx import read_idx

FASHION_FILE = "fashion_mnist.npz"
FASHION_LEVELS = 255  # 8-bit grey
FASHION_SOURCE = "/usr/share/datasets/fashion-mnist"  # where `apt-get install dataset-fashion-mnist` puts the files
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
PREPARE = "data/fashion_mnist/prepare.py"


def _find(source: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (source / name).is_file():
            return source / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}(.gz) not found in {source}; install the Debian package with "
        "`sudo apt-get install -y dataset-fashion-mnist` or pass --source DIR holding the IDX files"
    )


def read_fashion_idx(source: str | os.PathLike = FASHION_SOURCE) -> dict[str, np.ndarray]:
    """The four IDX arrays of Fashion-MNIST (or MNIST/KMNIST: same names) from `source`, shape-checked."""
    source = Path(source)
    arrays = {key: read_idx(_find(source, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{source}: {split} images {images.shape} do not match labels {labels.shape}")
    return arrays


def prepare_fashion_mnist(
    out_dir: str | os.PathLike, *, source: str | os.PathLike = FASHION_SOURCE, val_per_class: int = 500, seed: int = 0
) -> Path:
    """Write out_dir/fashion_mnist.npz: uint8 images [N,28,28] and int64 labels for train / val / test."""
    arrays = read_fashion_idx(source)
    labels = arrays["train_labels"].astype(np.int64)
    smallest = int(np.bincount(labels).min())
    if not 0 < val_per_class < smallest:
        raise ValueError(f"val_per_class={val_per_class} must be in [1, {smallest}) for {source}")
    rng = np.random.default_rng(seed)
    val_idx = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:val_per_class] for c in np.unique(labels)])
    )
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    out = {
        "train_images": arrays["train_images"][train_idx].astype(np.uint8),
        "train_labels": labels[train_idx],
        "val_images": arrays["train_images"][val_idx].astype(np.uint8),
        "val_labels": labels[val_idx],
        "test_images": arrays["test_images"].astype(np.uint8),
        "test_labels": arrays["test_labels"].astype(np.int64),
    }
    return save_npz(Path(out_dir) / FASHION_FILE, out)


def load_fashion_split(path: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N,28,28], labels int64 [N]) of one split of fashion_mnist.npz."""
    return load_npz_split(path, split, name="Fashion-MNIST", prepare=PREPARE)
