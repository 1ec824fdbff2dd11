"""Inpainting masks: fixed regions (half_mask) and random masks for training a net that reads known pixels.

Each example, with probability `p`, hides either a half of the image (top, bottom, left or right, drawn evenly) or
a random box whose sides are 1/4 to 3/4 of the image's; the other examples get an all-zero mask (nothing known), so
the same net still generates from scratch.

References:
    Saharia et al. 2022 (Palette: box and half-image masks for training inpainting/outpainting).
"""

from __future__ import annotations

import torch
from torch import Generator, Tensor


class RandomImageMasks:
    """(x0 [B,C,H,W], generator) -> mask [B,1,H,W] float, 1 = known, all zeros = unmasked example."""

    def __init__(self, p: float = 0.5, p_half: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0 or not 0.0 <= p_half <= 1.0:
            raise ValueError(f"RandomImageMasks: p and p_half must be in [0, 1], got p={p}, p_half={p_half}")
        self.p, self.p_half = float(p), float(p_half)

    def __call__(self, x0: Tensor, generator: Generator | None = None) -> Tensor:
        if x0.ndim != 4:
            raise ValueError(f"RandomImageMasks expects images [B, C, H, W], got shape {tuple(x0.shape)}")
        batch, h, w = x0.shape[0], x0.shape[-2], x0.shape[-1]
        u = torch.rand(batch, 7, generator=generator, device=generator.device if generator else "cpu").to(x0.device)
        rows = torch.arange(h, device=x0.device).view(1, h, 1)
        cols = torch.arange(w, device=x0.device).view(1, 1, w)
        # Boxes: sides in [1/4, 3/4] of the image, top-left corner uniform where the box fits.
        bh = (h * (0.25 + 0.5 * u[:, 0])).long().clamp(min=1)
        bw = (w * (0.25 + 0.5 * u[:, 1])).long().clamp(min=1)
        top = ((h - bh + 1) * u[:, 2]).long().clamp(max=h - 1)
        left = ((w - bw + 1) * u[:, 3]).long().clamp(max=w - 1)
        in_rows = (rows >= top.view(-1, 1, 1)) & (rows < (top + bh).view(-1, 1, 1))
        in_box = in_rows & (cols >= left.view(-1, 1, 1)) & (cols < (left + bw).view(-1, 1, 1))
        # Halves: 0 top, 1 bottom, 2 left, 3 right hidden.
        side = (4 * u[:, 4]).long().clamp(max=3).view(-1, 1, 1)
        in_half = torch.where(side == 0, rows < h // 2, rows >= h // 2).expand(batch, h, w)
        in_half = torch.where(side >= 2, torch.where(side == 2, cols < w // 2, cols >= w // 2), in_half)
        hidden = torch.where((u[:, 5] < self.p_half).view(-1, 1, 1), in_half, in_box)
        masked = (u[:, 6] < self.p).view(-1, 1, 1)
        mask = torch.where(masked, ~hidden, torch.zeros_like(hidden))
        return mask.unsqueeze(1).to(x0.dtype)


def half_mask(shape: tuple[int, ...], side: str = "bottom") -> Tensor:
    """Float mask [*shape] with 1 = known: hides the bottom or right half, or the centre square of half the side."""
    mask = torch.ones(shape)
    h, w = shape[-2], shape[-1]
    if side == "bottom":
        mask[..., h // 2 :, :] = 0
    elif side == "right":
        mask[..., :, w // 2 :] = 0
    elif side == "center":
        mask[..., h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = 0
    else:
        raise ValueError(f"half_mask: side must be 'bottom', 'right' or 'center', got {side!r}")
    return mask
