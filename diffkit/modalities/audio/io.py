"""WAV reading and writing with soundfile: mono float32 in [-1, 1], checked, resampled only where allowed.

Every bad file (missing, empty, not a WAV, truncated, stereo, wrong rate, no samples) raises one DataError that
names the file. torchaudio.load/save need torchcodec, so soundfile does the I/O and torchaudio only resamples.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from diffkit.modalities.base import DataError


def _riff_data_size(path: Path) -> tuple[int, int] | None:
    """(declared, present) bytes of the RIFF 'data' chunk, or None if the file has no RIFF/WAVE header."""
    raw = path.read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(raw):
        tag, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        if tag == b"data":
            return size, len(raw) - pos - 8
        pos += 8 + size + (size & 1)
    return 0, 0


def read_wav(path: str | Path, sample_rate: int, *, resample: bool = False) -> np.ndarray:
    """One mono WAV file -> float32 [T] in [-1, 1] at sample_rate (resampled from another rate only if allowed)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes), not a WAV")
    sizes = _riff_data_size(path)
    if sizes is None:
        raise DataError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    declared, present = sizes
    if declared == 0 and present == 0:
        raise DataError(f"{path}: WAV file without a data chunk")
    if declared not in (0, 0xFFFFFFFF) and present < declared:
        raise DataError(f"{path}: truncated WAV ({present} of {declared} data bytes present)")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile's own message says what is wrong with the file
        raise DataError(f"{path}: unreadable WAV ({error})") from None
    if audio.shape[1] != 1:
        raise DataError(f"{path}: {audio.shape[1]} channels; audio files must be mono")
    if audio.shape[0] == 0:
        raise DataError(f"{path}: WAV file with no samples")
    if not np.isfinite(audio).all():
        raise DataError(f"{path}: WAV file holds NaN or infinite samples")
    audio = audio[:, 0]
    if rate != sample_rate:
        if not resample:
            raise DataError(f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz (set resample: true to "
                            f"resample on load)")  # fmt: skip
        audio = AF.resample(torch.from_numpy(audio), rate, sample_rate).numpy()
    return np.clip(audio, -1.0, 1.0)


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Pad with zeros (centred) or trim (centred) a clip to `length` samples (SC09 clips are 1 s)."""
    if len(audio) >= length:
        start = (len(audio) - length) // 2
        return audio[start : start + length]
    pad = length - len(audio)
    return np.pad(audio, (pad // 2, pad - pad // 2))


def write_wav(path: str | Path, audio: np.ndarray | torch.Tensor, sample_rate: int) -> Path:
    """float waveform [T] in [-1, 1] -> 16-bit PCM mono WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(torch.as_tensor(audio).detach().cpu().float()).reshape(-1), -1.0, 1.0)
    sf.write(str(path), data, sample_rate, subtype="PCM_16")
    return path
