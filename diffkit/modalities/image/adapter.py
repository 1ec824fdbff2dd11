"""The image modality adapter: batches <-> model-space tensors, decoding to pixels, sample grids.

References:
    torchvision.utils.make_grid (the grid layout); Ho & Salimans 2022 (null label for classifier-free guidance).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from diffkit.core.guidance import NULL_LABEL
from diffkit.core.types import Cond
from diffkit.io import atomic_write
from diffkit.modalities.base import DataError
from diffkit.modalities.image.datasets import to_pixels


def make_grid(images: Tensor, nrow: int | None = None, pad: int = 1, scale: int | None = None) -> np.ndarray:
    """uint8 images [N,C,H,W] -> one HxWx3 uint8 grid, nearest-upscaled (default: cells of >= 56 pixels)."""
    if images.ndim != 4 or images.dtype != torch.uint8:
        raise ValueError(f"make_grid expects uint8 images [N,C,H,W], got {images.dtype} {tuple(images.shape)}")
    n, c, h, w = images.shape
    scale = scale or max(1, -(-56 // max(h, w)))  # 8x8 digits x7, 28x28 x2
    rgb = images.expand(n, 3, h, w) if c == 1 else images[:, :3]
    rgb = rgb.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    hs, ws = h * scale + pad, w * scale + pad
    grid = torch.full((3, ncol * hs + pad, nrow * ws + pad), 255, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        grid[:, pad + r * hs : pad + r * hs + h * scale, pad + col * ws : pad + col * ws + w * scale] = rgb[i]
    return grid.permute(1, 2, 0).contiguous().numpy()


def save_grid(images: Tensor, path: str | os.PathLike, nrow: int | None = None) -> None:
    """Write a PNG grid of uint8 images [N,C,H,W] atomically."""
    from PIL import Image  # lazy: only writing PNGs needs Pillow

    grid = Image.fromarray(make_grid(images, nrow))
    atomic_write(path, lambda tmp: grid.save(tmp, format="PNG"))


class ImageModality:
    """Images [B,C,H,W] in [-1, 1]; optional class labels as cond {"label": long [B]} (label -1 = none)."""

    kind: Literal["gaussian", "discrete"] = "gaussian"

    def __init__(
        self,
        channels: int = 1,
        size: int = 8,
        num_classes: int | None = None,  # None: unconditional
        grey_levels: int = 16,  # 16 for the 8x8 digits, 255 for 8-bit images
    ) -> None:
        self.channels, self.size, self.num_classes, self.grey_levels = channels, size, num_classes, grey_levels

    def example_shape(self) -> tuple[int, ...]:
        return (self.channels, self.size, self.size)

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]:
        if "image" not in batch:
            raise DataError(f"image batch has no 'image' entry (keys: {sorted(batch)})")
        x0 = batch["image"]
        if not isinstance(x0, Tensor) or tuple(x0.shape[1:]) != self.example_shape():
            expected = ", ".join(map(str, self.example_shape()))
            raise DataError(f"image batch has shape {tuple(getattr(x0, 'shape', ()))}; expected [B, {expected}]")
        return x0, ({"label": batch["label"]} if self.num_classes else {})

    def decode(self, x0: Tensor) -> Tensor:
        """Model space -> uint8 pixels [B,C,H,W], quantised to the data's grey levels."""
        levels = torch.round((x0.detach().float().clamp(-1, 1) + 1) / 2 * self.grey_levels)
        return to_pixels(levels / self.grey_levels * 2 - 1)

    def null_cond(self, batch_size: int, device: Any) -> Cond | None:
        if not self.num_classes:
            return None
        return {"label": torch.full((batch_size,), NULL_LABEL, dtype=torch.long, device=device)}

    def example_cond(self, n: int, device: Any) -> Cond | None:
        """Labels 0, 1, ..., 9, 0, 1, ... so each grid row shows every class (conditional models only)."""
        if not self.num_classes:
            return None
        return {"label": torch.arange(n, device=device) % self.num_classes}

    def log_samples(self, samples: Tensor, logger: Any, step: int, out_dir: str | None = None) -> None:
        """Save a grid PNG to out_dir and send it to the logger (wandb image) when it can take images."""
        nrow = self.num_classes or None
        if out_dir is not None:
            save_grid(samples, os.path.join(out_dir, f"samples_step{step:06d}.png"), nrow=nrow)
        if logger is not None and hasattr(logger, "log_image"):  # wandb
            logger.log_image(key="samples/image", images=[make_grid(samples, nrow)], step=step)
        elif logger is not None and hasattr(getattr(logger, "experiment", None), "add_image"):  # tensorboard
            logger.experiment.add_image("samples/image", make_grid(samples, nrow), step, dataformats="HWC")
