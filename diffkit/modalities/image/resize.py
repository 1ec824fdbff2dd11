"""Resolution changes for super-resolution: the low-resolution condition (average pooling) and the upsampling baselines.

The image modality derives its "low_res" condition entry with `downsample`, and the super-resolution evaluator
builds its inputs with the same function, so the scored input is exactly the model's condition.

References:
    Saharia et al. 2021 (SR3: the low-resolution image, upsampled, as extra input channels); Keys 1981 (bicubic).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def downsample(x: Tensor, factor: int) -> Tensor:
    """Average pooling by `factor`: x [B,C,H,W] -> [B,C,H/factor,W/factor] (H, W divisible by factor)."""
    if x.ndim != 4 or x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"downsample: images [B,C,H,W] with H, W divisible by {factor}, got {tuple(x.shape)}")
    return F.avg_pool2d(x, int(factor))


def upsample(x: Tensor, size: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Interpolate x [B,C,h,w] to [B,C,*size] ("bicubic", "bilinear" or "nearest"), clamped to [-1, 1]."""
    corners = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(x, size=tuple(size), mode=mode, **corners).clamp(-1, 1)
