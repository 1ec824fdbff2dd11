"""The image modality adapter: batches <-> model-space tensors, decoding to pixels, sample grids.

References:
    torchvision.utils.make_grid (the grid layout); Ho & Salimans 2022 (null label for classifier-free guidance).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffkit.core.types import Cond, CondSpec
from diffkit.io import atomic_write
from diffkit.modalities.base import DataError, Request
from diffkit.modalities.image.datasets import to_pixels
from diffkit.modalities.image.masks import half_mask
from diffkit.modalities.image.resize import downsample

NULL_LABEL = -1  # the declared null of the "label" entry: no class given (classifier-free guidance)


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


def load_png(path: str | os.PathLike, channels: int, size: int, what: str = "this model makes") -> Tensor:
    """A PNG as a model-space image [1,C,size,size] in [-1, 1]; a clear error for another size or a bad file."""
    from PIL import Image, UnidentifiedImageError  # lazy: only image requests read PNGs

    try:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("L" if channels == 1 else "RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"cannot read image {path}: {err}") from None
    if pixels.shape[:2] != (size, size):
        raise DataError(f"image {path} is {pixels.shape[1]}x{pixels.shape[0]}; {what} {size}x{size}")
    image = torch.from_numpy(pixels.copy()).reshape(size, size, channels).permute(2, 0, 1)
    return (image.float() / 127.5 - 1)[None]


class ImageModality:
    """Images [B,C,H,W] in [-1, 1]; optional class labels as cond {"label": long [B]} (label -1 = none) and, for
    super-resolution, the image average-pooled by low_res_factor as cond {"low_res": [B,C,H/f,W/f]} (SR3)."""

    def __init__(
        self,
        channels: int = 1,
        size: int = 8,
        num_classes: int | None = None,  # None: unconditional
        grey_levels: int = 16,  # 16 for the 8x8 digits, 255 for 8-bit images
        sigma_data: float = 0.5,  # std of the pixels in model space (EDM's σ_data; precond and loss interpolate it)
        low_res_factor: int | None = None,  # super-resolution: cond["low_res"] = x0 average-pooled by this factor
        held_out: Any = None,  # a data module with arrays(split); its test images' low-res are the showcase request
    ) -> None:
        self.channels, self.size, self.num_classes, self.grey_levels = channels, size, num_classes, grey_levels
        self.sigma_data = float(sigma_data)
        self.low_res_factor = None if low_res_factor is None else int(low_res_factor)
        if self.low_res_factor is not None and (self.low_res_factor < 1 or size % self.low_res_factor):
            raise DataError(f"modality.low_res_factor={low_res_factor} must be >= 1 and divide the size {size}")
        self.held_out = held_out
        self.bin_width = 2.0 / grey_levels  # grey_levels + 1 levels mapped to [-1, 1]

    def example_shape(self) -> tuple[int, ...]:
        return (self.channels, self.size, self.size)

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]:
        if "image" not in batch:
            raise DataError(f"image batch has no 'image' entry (keys: {sorted(batch)})")
        x0 = batch["image"]
        if not isinstance(x0, Tensor) or tuple(x0.shape[1:]) != self.example_shape():
            expected = ", ".join(map(str, self.example_shape()))
            raise DataError(f"image batch has shape {tuple(getattr(x0, 'shape', ()))}; expected [B, {expected}]")
        cond = {"label": batch["label"]} if self.num_classes else {}
        if self.low_res_factor is not None:
            cond["low_res"] = downsample(x0, self.low_res_factor)
        return x0, cond

    def decode(self, x0: Tensor, cond: Cond | None = None) -> Tensor:
        """Model space -> uint8 pixels [B,C,H,W], quantised to the data's grey levels."""
        levels = torch.round((x0.detach().float().clamp(-1, 1) + 1) / 2 * self.grey_levels)
        return to_pixels(levels / self.grey_levels * 2 - 1)

    def low_res_shape(self) -> tuple[int, int, int]:
        """Per-example shape of the "low_res" entry: [C, size/f, size/f]."""
        if self.low_res_factor is None:
            raise DataError("this image model has no low-resolution condition (modality.low_res_factor)")
        side = self.size // self.low_res_factor
        return (self.channels, side, side)

    def cond_specs(self) -> tuple[CondSpec, ...]:
        """{"label": long [B]} with null -1 for class-conditional models; {"low_res": float [C,h,w]} with null NaN."""
        specs = [CondSpec("label", (), torch.long, NULL_LABEL)] if self.num_classes else []
        if self.low_res_factor is not None:
            specs.append(CondSpec("low_res", self.low_res_shape(), torch.float32, float("nan")))
        return tuple(specs)

    def low_res_request(self, n: int, low_res: str | None) -> Tensor:
        """[n,C,h,w]: a PNG of the low-res size repeated n times, or the first n held-out test images pooled."""
        _, side, _ = self.low_res_shape()
        if low_res is not None:
            return load_png(low_res, self.channels, side, what="this model upscales").expand(n, -1, -1, -1)
        if self.held_out is None:
            raise DataError("super-resolution needs +request.low_res=<PNG> (or modality.held_out for the showcase)")
        images = self.held_out.arrays("test")[0]
        if len(images) < n:
            raise DataError(f"modality.held_out has {len(images)} test images, asked for {n}")
        return downsample(images[:n], self.low_res_factor)

    def request(
        self,
        n: int,
        label: int | None = None,
        known: str | None = None,
        hide: str = "bottom",
        low_res: str | None = None,
    ) -> Request:
        """What to sample, from `+request.<arg>=...`: `label=3` n samples of class 3 (by default every class in
        turn, so each grid row shows them all); `known=img.png hide=bottom` n completions of that image's other
        part (a C x size x size PNG; hide: bottom, right or center); `low_res=small.png` n upscalings of a
        C x size/f x size/f PNG (super-resolution models; by default the held-out test images' low-res)."""
        cond: dict[str, Tensor] | None = None
        if low_res is not None and self.low_res_factor is None:
            raise DataError("request.low_res needs a super-resolution model (modality.low_res_factor)")
        if label is not None and not self.num_classes:
            raise DataError("request.label needs a class-conditional model (modality.num_classes)")
        if self.num_classes:
            if label is not None and not 0 <= int(label) < self.num_classes:
                raise DataError(f"request.label must be in [0, {self.num_classes}), got {label}")
            cond = {"label": torch.full((n,), int(label)) if label is not None else torch.arange(n) % self.num_classes}
        if self.low_res_factor is not None:
            cond = {**(cond or {}), "low_res": self.low_res_request(n, low_res)}
        if known is None:
            return Request(cond=cond)
        image = load_png(known, self.channels, self.size)
        mask = half_mask(tuple(image.shape), side=hide)
        return Request(cond=cond, known=(image * mask).expand(n, -1, -1, -1), mask=mask.expand(n, -1, -1, -1))

    def log_samples(self, samples: Tensor, logger: Any, step: int, out_dir: str | None = None) -> None:
        """Save a grid PNG to out_dir and send it to the logger (wandb image) when it can take images."""
        nrow = self.num_classes or None
        if out_dir is not None:
            save_grid(samples, os.path.join(out_dir, f"samples_step{step:06d}.png"), nrow=nrow)
        if logger is not None and hasattr(logger, "log_image"):  # wandb
            logger.log_image(key="samples/image", images=[make_grid(samples, nrow)], step=step)
        elif logger is not None and hasattr(getattr(logger, "experiment", None), "add_image"):  # tensorboard
            logger.experiment.add_image("samples/image", make_grid(samples, nrow), step, dataformats="HWC")
