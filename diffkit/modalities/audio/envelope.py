"""PriorGrad's data-dependent prior as a change of variables: a waveform scale s(mel) [B,1,T] from the log-mel alone.

The vocoder diffuses y = x / s instead of x, so the core's y = y0 + σ·ε is x = x0 + σ·s·ε, the N(0, Σ_c) prior of
PriorGrad with Σ_c = diag(s²): frames the mel says are silent get (almost) no noise, speech gets noise at its level.
s is the rms of the frame's mel magnitudes above the log floor times a scale fitted on training clips
(conf/modality/audio.yaml), linearly interpolated between frame centres (frame f is centred on sample f·hop) and
floored at s_min. The mel alone decides s, so encode and decode compute the same s from the same condition.

References:
    Lee et al. 2022 (PriorGrad: improving conditional denoising diffusion models with data-dependent adaptive prior,
    ICLR; the vocoder's frame-energy prior).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def mel_energy(log_mel: Tensor, log_floor: float) -> Tensor:
    """log-mel [B,M,F] -> per-frame rms of the mel magnitudes above the floor [B,F] (0 for digital silence)."""
    magnitude = (log_mel.float().exp() - log_floor).clamp(min=0.0)
    return magnitude.pow(2).mean(dim=-2).sqrt()


def frames_to_samples(frames: Tensor, hop: int) -> Tensor:
    """[B,F] frame values -> [B,1,F·hop] samples: linear between frame centres f·hop, held after the last centre."""
    n = frames.shape[-1]
    pos = torch.arange(n * hop, device=frames.device, dtype=torch.float32) / hop
    left = pos.floor().long().clamp(max=n - 1)
    right = (left + 1).clamp(max=n - 1)
    w = (pos - left).clamp(max=1.0)
    return (frames[..., left] * (1 - w) + frames[..., right] * w)[:, None]


def mel_envelope(log_mel: Tensor, *, hop: int, scale: float, floor: float, log_floor: float) -> Tensor:
    """PriorGrad scale s(mel) [B,1,F·hop] ≥ floor: scale · frame energy (Lee et al. 2022, Sec. 3.2), upsampled."""
    if not (floor > 0 and math.isfinite(floor)):
        raise ValueError(f"mel_envelope: the floor s_min must be a positive number, got {floor}")
    energy = mel_energy(log_mel, log_floor)
    return frames_to_samples(scale * energy, hop).clamp(min=floor)
