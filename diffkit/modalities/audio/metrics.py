"""Vocoder scores against the real waveform: multi-resolution STFT distance, log-mel L1, mel-cepstral distortion,
DNSMOS P.835 (an independent pretrained judge); the Griffin-Lim baseline from the same log-mel; VocoderEvaluator.

References:
    Yamamoto et al. 2020 (Parallel WaveGAN: multi-resolution STFT loss; auraloss implements it); Kubichek 1993
    (mel-cepstral distortion); Reddy et al. 2022 (DNSMOS P.835); Griffin & Lim 1984.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torchaudio
from torch import Tensor

from diffkit.modalities.base import Headline, SampleFn

if TYPE_CHECKING:
    from diffkit.modalities.audio.adapter import AudioModality

EXTRA = 'pip install -e ".[audio]"'  # auraloss, speechmos, onnxruntime, librosa, requests


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{module} is missing ({error}); the audio metrics need the audio extra: {EXTRA}") from None


def mr_stft(fake: Tensor, real: Tensor) -> float:
    """auraloss MultiResolutionSTFTLoss (spectral convergence + log-magnitude L1, FFT 1024/2048/512), [B,1,T]."""
    auraloss = _need("auraloss")
    return float(auraloss.freq.MultiResolutionSTFTLoss()(fake.float(), real.float()))


def log_mel_l1(fake_mel: Tensor, real_mel: Tensor) -> float:
    """Mean |log-mel(fake) - log-mel(real)| over bands and frames (the modality's one log-mel definition)."""
    return float((fake_mel - real_mel).abs().mean())


def mel_cepstra(log_mel: Tensor, n_ceps: int = 24) -> Tensor:
    """log-mel magnitudes [...,M,F] -> mel cepstra c_1..c_n [...,n,F]: orthonormal DCT-II of the log power (2·ln|X|)."""
    m = log_mel.shape[-2]
    k, n = torch.arange(m, dtype=torch.float64)[:, None], torch.arange(m, dtype=torch.float64)[None]
    dct = torch.cos(math.pi / m * (n + 0.5) * k) * math.sqrt(2.0 / m)
    dct[0] /= math.sqrt(2.0)
    return torch.einsum("km,...mf->...kf", dct, 2.0 * log_mel.double())[..., 1 : n_ceps + 1, :]


def mcd(fake_mel: Tensor, real_mel: Tensor, n_ceps: int = 24) -> float:
    """Mel-cepstral distortion in dB, (10/ln 10)·sqrt(2·Σ_d (c_d - c'_d)²) per frame, averaged (c0 excluded)."""
    diff = mel_cepstra(fake_mel, n_ceps) - mel_cepstra(real_mel, n_ceps)
    return float((10.0 / math.log(10.0) * torch.sqrt(2.0 * diff.pow(2).sum(-2))).mean())


def dnsmos(waves: Tensor, sample_rate: int = 16000) -> dict[str, float]:
    """speechmos DNSMOS P.835 means over clips [B,1,T] in [-1, 1]: ovrl, sig, bak (ONNX models inside the wheel)."""
    speechmos = _need("speechmos.dnsmos")
    scores = [speechmos.run(w.reshape(-1).double().clamp(-1, 1).numpy(), sr=sample_rate) for w in waves]
    return {k: float(np.mean([s[f"{k}_mos"] for s in scores])) for k in ("ovrl", "sig", "bak")}


def griffin_lim(log_mel: Tensor, modality: AudioModality, n_iter: int = 32) -> Tensor:
    """Griffin-Lim from the same log-mel [B,M,F]: least-squares inverse mel scale, n_iter iterations; [B,1,F·hop]."""
    n_stft, frames = modality.n_fft // 2 + 1, log_mel.shape[-1]
    inverse = torchaudio.transforms.InverseMelScale(n_stft, modality.n_mels, modality.sample_rate, modality.f_min,
                                                    modality.f_max, norm="slaney", mel_scale="slaney")  # fmt: skip
    mel = torch.exp(log_mel.float())
    mel = torch.cat([mel, mel[..., -1:]], dim=-1)  # the frame log_mel drops, so the frames cover F·hop samples
    spec = inverse(mel).clamp(min=0)
    gl = torchaudio.transforms.GriffinLim(modality.n_fft, n_iter=n_iter, hop_length=modality.hop, power=1.0,
                                          length=frames * modality.hop, rand_init=False)  # fmt: skip
    return gl(spec).clamp(-1, 1)[:, None]


def score(fake: Tensor, real: Tensor, modality: AudioModality, judge: bool = True) -> dict[str, float]:
    """Every vocoder score of fake vs real waveforms [B,1,T]."""
    fake_mel, real_mel = modality.log_mel(fake[:, 0]), modality.log_mel(real[:, 0])
    out = {"mr_stft": mr_stft(fake, real), "log_mel_l1": log_mel_l1(fake_mel, real_mel), "mcd": mcd(fake_mel, real_mel)}
    if judge:
        out.update({f"dnsmos_{k}": v for k, v in dnsmos(fake, modality.sample_rate).items()})
    return out


class VocoderEvaluator:
    """Vocodes the log-mels of held-out-speaker clips and scores them beside Griffin-Lim (32, 100 iterations)."""

    def __init__(self, modality: AudioModality, n_clips: int = 20, split: str = "test", judge: bool = True) -> None:
        self.modality, self.n_clips, self.split, self.judge = modality, int(n_clips), split, bool(judge)

    def run(self, sample_fn: SampleFn, inpaint_fn: object = None) -> dict[str, float]:
        real, mel = self.modality.held_out_with_mel(self.n_clips, self.split)  # mel of the whole clips, as in training
        cond = {"mel": mel}
        out = score(self.modality.decode(sample_fn(self.n_clips, cond), cond), real, self.modality, self.judge)
        for n_iter in (32, 100):
            gl = score(griffin_lim(mel, self.modality, n_iter), real, self.modality, self.judge)
            out.update({f"gl{n_iter}_{k}": v for k, v in gl.items()})
        if self.judge:
            out.update({f"real_{k}": v for k, v in dnsmos(real, self.modality.sample_rate).items()})
        return out

    def headlines(self) -> tuple[Headline, ...]:
        gl = lambda key: (("Griffin-Lim 100", f"gl100_{key}"),)  # noqa: E731
        return (
            Headline("MR-STFT", "mr_stft", gl("mr_stft"), note="held-out speakers"),
            Headline("log-mel L1", "log_mel_l1", gl("log_mel_l1")),
            Headline("MCD", "mcd", gl("mcd"), unit=" dB"),
        )
