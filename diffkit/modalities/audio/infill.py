"""Audio infilling (issue #27, item 4c): a hidden span of each clip, its simple fills, and the score on the span.

The diffusion side restores the hidden log-mel frames from the rest of the clip with the core's replacement
(RePaint) through the mel modality; the two fills a user would try first work on the waveform: silence (zeros) and
a crossfade of the audio just before the gap into the audio just after it (the packet-loss concealment classic).
All are scored by the mean absolute log-mel difference over the hidden frames against the real clip.

References:
    Lugmayr et al. 2022 (RePaint); Perkins et al. 1998 (packet loss concealment: silence, repetition, crossfade);
    Marafioti et al. 2019 (audio inpainting scored on the spectrogram of the gap).
"""

from __future__ import annotations

import torch
from torch import Tensor


def middle_frames(frames: int, fraction: float) -> tuple[int, int]:
    """[start, stop) of the middle `fraction` of `frames` frames (at least one frame, never all of them)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"infill fraction {fraction} must be in (0, 1)")
    width = min(max(1, round(frames * fraction)), frames - 1)
    start = (frames - width) // 2
    return start, start + width


def silence_fill(wave: Tensor, start: int, stop: int) -> Tensor:
    """wave [..., T] with samples [start, stop) set to zero."""
    out = wave.clone()
    out[..., start:stop] = 0.0
    return out


def crossfade_fill(wave: Tensor, start: int, stop: int) -> Tensor:
    """wave [..., T] with samples [start, stop) replaced by the gap-long audio before the gap faded linearly into the
    gap-long audio after it; needs one gap of audio on each side."""
    width = stop - start
    if start - width < 0 or stop + width > wave.shape[-1]:
        raise ValueError(f"crossfade_fill: a gap of {width} samples at {start} needs {width} samples on each side "
                         f"of it in a clip of {wave.shape[-1]}")  # fmt: skip
    fade = torch.linspace(0.0, 1.0, width, dtype=wave.dtype, device=wave.device)
    out = wave.clone()
    out[..., start:stop] = wave[..., start - width : start] * (1 - fade) + wave[..., stop : stop + width] * fade
    return out


def span_l1(log_mel: Tensor, reference: Tensor, start: int, stop: int) -> float:
    """Mean |log_mel - reference| over frames [start, stop) of log-mels [..., n_mels, frames]."""
    if log_mel.shape != reference.shape:
        raise ValueError(f"span_l1: shapes {tuple(log_mel.shape)} and {tuple(reference.shape)} differ")
    return float((log_mel[..., start:stop] - reference[..., start:stop]).abs().mean())
