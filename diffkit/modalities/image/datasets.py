"""Image data sets built offline: scikit-learn's real 8x8 digit scans, saved as one npz with fixed splits.

References:
    Alpaydin & Kaynak 1998, UCI "Optical Recognition of Handwritten Digits" (the scans scikit-learn ships).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from diffkit.io import atomic_write
from diffkit.modalities.base import DataError

SPLITS = ("train", "val", "test")
DIGITS_FILE = "digits.npz"
DIGITS_LEVELS = 16  # the scans have 17 grey levels, 0..16


def _stratified_split(labels: np.ndarray, fractions: tuple[float, float], seed: int) -> dict[str, np.ndarray]:
    """Indices per split, stratified by label: `fractions` of each class go to val and test."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_val, n_test = round(len(idx) * fractions[0]), round(len(idx) * fractions[1])
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    return {split: np.sort(np.concatenate(p)) for split, p in parts.items()}


def prepare_digits(out_dir: str | os.PathLike, *, seed: int = 0) -> Path:
    """Write out_dir/digits.npz: uint8 images [N,8,8] (0..16) and int64 labels per split (80/10/10, stratified)."""
    from sklearn.datasets import load_digits  # lazy: only data preparation needs scikit-learn

    digits = load_digits()
    images = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.int64)
    arrays = {}
    for split, idx in _stratified_split(labels, (0.1, 0.1), seed).items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images[idx], labels[idx]
    return save_npz(Path(out_dir) / DIGITS_FILE, arrays)


def load_npz_split(
    path: str | os.PathLike, split: str, *, name: str = "digits", prepare: str = "data/digits/prepare.py"
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N,H,W], labels int64 [N]) of one split of a prepared npz; one clear error naming the file."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} data not found: {path} (build it with `python {prepare}`)")
    try:
        with np.load(path) as data:
            images, labels = data[f"{split}_images"], data[f"{split}_labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(
            f"{path} is damaged or not a {name} npz ({type(err).__name__}: {err}); delete it and run `python {prepare}`"
        ) from None
    if images.ndim != 3 or len(images) != len(labels):
        raise DataError(f"{path}: split {split!r} has images {images.shape} and labels {labels.shape}")
    return images, labels


def load_digits_split(path: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N,8,8], labels int64 [N]) of one split of digits.npz."""
    return load_npz_split(path, split, name="digits", prepare="data/digits/prepare.py")


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays into a compressed npz atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    return atomic_write(path, write)


def to_model_space(images: np.ndarray | Tensor, levels: int = DIGITS_LEVELS) -> Tensor:
    """Integer grey levels 0..levels [N,H,W] or [N,C,H,W] -> float32 in [-1, 1], [N,C,H,W]."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if x.ndim == 3:
        x = x[:, None]
    return x / levels * 2 - 1


def to_pixels(x: Tensor) -> Tensor:
    """Model space [-1, 1] -> uint8 0..255 (clamped), same shape."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
