"""The audio modality adapter: waveforms [B,1,T] in [-1, 1], one log-mel definition, WAV/PNG/wandb.Audio logging.

The log-mel (torchaudio MelSpectrogram of magnitudes, natural log with a floor) is computed here and only here: the
vocoder's condition, the metrics and the Griffin-Lim baseline all call `log_mel`. encode() derives the mel
condition from the audio itself: from the crop's clip context when the batch has one (batch["context"], so training
frames equal the frames of the whole-clip mel a vocoder is given at sampling time), else from x0 alone.
With `envelope` (PriorGrad) the model space is y = x / s(mel), s from the mel alone (envelope.py); decode(y, cond)
returns s(cond["mel"])·y, so it needs the sampling condition.

References:
    Kong et al. 2021 (DiffWave: mel-conditioned waveform diffusion); Shen et al. 2018 (Tacotron 2 log-mel);
    Lee et al. 2022 (PriorGrad: a data-dependent prior from the mel).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torchaudio
from torch import Tensor

from diffkit.core.types import Cond, CondSpec
from diffkit.modalities.audio.envelope import mel_envelope
from diffkit.modalities.audio.io import fit_length, read_wav, write_wav
from diffkit.modalities.base import DataError, Request


class LogMel(torch.nn.Module):
    """waveform [...,T] -> log-mel [...,n_mels,T/hop]: ln(max(mel magnitude, floor)), centred frames, last dropped."""

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int, f_min: float, f_max: float,
                 log_floor: float) -> None:  # fmt: skip
        super().__init__()
        self.hop, self.n_fft, self.log_floor = int(hop), int(n_fft), float(log_floor)
        kwargs = dict(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, f_min=f_min, f_max=f_max,
                      power=1.0, norm="slaney", mel_scale="slaney")  # fmt: skip
        self.mel = torchaudio.transforms.MelSpectrogram(**kwargs)
        self.uncentred = torchaudio.transforms.MelSpectrogram(center=False, **kwargs)  # frames inside the input only

    def _check(self, length: int) -> None:
        if length % self.hop:
            raise ValueError(f"log_mel: length {length} is not a multiple of the hop {self.hop}")

    def forward(self, wave: Tensor) -> Tensor:
        self._check(wave.shape[-1])
        mel = self.mel.to(wave.device)(wave.float())[..., : wave.shape[-1] // self.hop]
        return torch.log(torch.clamp(mel, min=self.log_floor))

    def around(self, wave: Tensor, length: int) -> Tensor:
        """log-mel [...,n_mels,length/hop] of the middle `length` samples of wave [...,length+2c], c ≥ n_fft/2 samples
        of clip context each side: the frames the whole clip's log-mel has there (no padding at the crop's edges)."""
        self._check(length)
        c, half = (wave.shape[-1] - length) // 2, self.n_fft // 2
        if c < half or wave.shape[-1] != length + 2 * c:
            raise ValueError(f"log_mel: a context window of {wave.shape[-1]} samples around {length} needs at least "
                             f"n_fft/2 = {half} samples each side")  # fmt: skip
        window = wave[..., c - half : c + length + half].float()
        mel = self.uncentred.to(wave.device)(window)[..., : length // self.hop]
        return torch.log(torch.clamp(mel, min=self.log_floor))


class AudioModality:
    """Mono waveforms of `length` samples; condition entries: the log-mel (vocoder) and/or a class label."""

    bin_width = None  # 16-bit audio is treated as continuous

    def __init__(
        self,
        sample_rate: int = 16000,
        length: int = 16384,  # samples per training example (a multiple of hop)
        n_fft: int = 1024,
        hop: int = 256,  # mel frame hop; the vocoder net upsamples by exactly this factor
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float = 8000.0,
        log_floor: float = 1e-5,  # ln(1e-5) = -11.5: the log-mel of silence
        mel_cond: bool = False,  # True: cond["mel"] = log_mel(x0) (vocoder)
        num_classes: int | None = None,  # set for class-conditional models (cond["label"])
        data_dir: str = "data/spoken_digits/out",  # requests take held-out clips from here
        sigma_data: float = 0.5,  # std of the waveform in model space (EDM's σ_data)
        envelope: bool = False,  # True: model space y = x / s(mel) (PriorGrad); False: y = x (isotropic noise)
        envelope_scale: float = 0.6,  # s = scale · frame rms of the mel magnitudes (fitted to the frames' rms)
        envelope_floor: float = 1e-6,  # s_min: the scale of frames at the log floor (digital silence)
    ) -> None:
        if int(length) % int(hop):
            raise ValueError(f"AudioModality: length {length} must be a multiple of hop {hop}")
        if envelope and not mel_cond:
            raise ValueError("AudioModality: envelope: true takes the prior's scale from the mel; set mel_cond: true")
        self.envelope, self.envelope_scale = bool(envelope), float(envelope_scale)
        self.envelope_floor = float(envelope_floor)
        self.sample_rate, self.length, self.hop, self.n_mels = int(sample_rate), int(length), int(hop), int(n_mels)
        self.mel_cond, self.num_classes, self.data_dir = bool(mel_cond), num_classes, data_dir
        self.sigma_data = float(sigma_data)
        self.log_mel = LogMel(sample_rate, n_fft, hop, n_mels, f_min, f_max, log_floor)
        self.n_fft, self.f_min, self.f_max, self.log_floor = int(n_fft), float(f_min), float(f_max), float(log_floor)

    def example_shape(self) -> tuple[int, ...]:
        return (1, self.length)

    def cond_specs(self) -> tuple[CondSpec, ...]:
        specs = []
        if self.mel_cond:
            specs.append(CondSpec("mel", (self.n_mels, self.length // self.hop), torch.float32, float("nan")))
        if self.num_classes:
            specs.append(CondSpec("label", (), torch.long, -1))
        return tuple(specs)

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]:
        x0 = batch.get("audio") if isinstance(batch, Mapping) else None
        if not isinstance(x0, Tensor) or x0.ndim != 3 or tuple(x0.shape[1:]) != self.example_shape():
            raise DataError(f"audio batch 'audio' has shape {tuple(getattr(x0, 'shape', ()))}; expected "
                            f"[B, 1, {self.length}]")  # fmt: skip
        cond: dict[str, Tensor] = {}
        if self.mel_cond:
            context = batch.get("context")  # the crop with clip context: its frames equal the whole clip's mel
            cond["mel"] = self.log_mel(x0[:, 0]) if context is None else self.log_mel.around(context[:, 0], self.length)
        if self.num_classes:
            cond["label"] = batch["label"].long()
        return (x0 / self.scale_of(cond) if self.envelope else x0), cond

    def scale_of(self, cond: Cond | None) -> Tensor:
        """The prior's waveform scale s(cond["mel"]) [B,1,T] ≥ envelope_floor (PriorGrad, Lee et al. 2022)."""
        if cond is None or "mel" not in cond:
            raise DataError('AudioModality: this model diffuses x / s(mel) (envelope: true), so decode needs the '
                            'sampling condition\'s "mel" entry: decode(samples, cond) with cond["mel"] [B, n_mels, '
                            f"frames]; got {'no cond' if cond is None else sorted(cond)}")  # fmt: skip
        return mel_envelope(cond["mel"], hop=self.hop, scale=self.envelope_scale, floor=self.envelope_floor,
                            log_floor=self.log_floor)  # fmt: skip

    def decode(self, x0: Tensor, cond: Cond | None = None) -> Tensor:
        """Model space [B,1,T] -> waveforms [B,1,T] in [-1, 1] (float32, CPU); x = s(mel)·y with the envelope."""
        x = x0.detach().float()
        if self.envelope:
            x = x * self.scale_of(cond).to(x.device)
        return x.cpu().clamp(-1.0, 1.0)

    def _held_out_clips(self, n: int, split: str) -> list[Tensor]:
        """The first n clips of a split (manifest order), each trimmed (centred) to whole frames, at least `length`."""
        from diffkit.modalities.audio.datasets import read_manifest

        rows = [r for r in read_manifest(self.data_dir) if r["split"] == split][:n]
        if len(rows) < n:
            raise DataError(f"{self.data_dir}: the {split} split has {len(rows)} clips, asked for {n}")
        clips = [read_wav(Path(self.data_dir) / r["file"], self.sample_rate) for r in rows]
        return [torch.as_tensor(fit_length(c, max(len(c) // self.hop * self.hop, self.length))) for c in clips]

    def _centre(self, clip: Tensor) -> int:
        """First sample of the centred crop of `length` samples that starts on a whole frame (as in training data)."""
        return (clip.shape[-1] - self.length) // self.hop // 2 * self.hop

    def _crops(self, clips: list[Tensor]) -> Tensor:
        return torch.stack([c[self._centre(c) : self._centre(c) + self.length] for c in clips])[:, None]

    def _mels(self, clips: list[Tensor]) -> Tensor:
        frames = self.length // self.hop
        return torch.stack([self.log_mel(c[None])[0, :, self._centre(c) // self.hop :][:, :frames] for c in clips])

    def held_out(self, n: int, split: str = "test") -> Tensor:
        """The first n clips of a split, centred frame-aligned crops of `length` samples, [n,1,length]."""
        return self._crops(self._held_out_clips(n, split))  # centred crops: the speech, not the leading silence

    def held_out_mel(self, n: int, split: str = "test") -> Tensor:
        """The log-mels [n,n_mels,length/hop] of held_out(n, split), computed on the whole clips (as in training)."""
        return self._mels(self._held_out_clips(n, split))

    def held_out_with_mel(self, n: int, split: str = "test") -> tuple[Tensor, Tensor]:
        """(held_out(n, split), held_out_mel(n, split)), reading each WAV file once."""
        clips = self._held_out_clips(n, split)
        return self._crops(clips), self._mels(clips)

    def request(self, n: int, split: str = "test") -> Request:
        """Vocoder: the log-mels of n held-out clips (`+request.split=val`); labels: every digit in turn."""
        cond: dict[str, Tensor] = {}
        if self.mel_cond:
            cond["mel"] = self.held_out_mel(n, split)
        if self.num_classes:
            cond["label"] = torch.arange(n) % int(self.num_classes)
        return Request(cond=cond or None)

    def log_samples(self, samples: Tensor, logger: Any, step: int, out_dir: str | None = None) -> None:
        """WAV files and a spectrogram PNG grid on disk; wandb.Audio clips to a wandb logger."""
        from diffkit.modalities.audio.plots import spectrogram_grid

        waves = torch.as_tensor(samples).detach().float().cpu().clamp(-1.0, 1.0)[:, 0]  # decoded waveforms
        mels = self.log_mel(waves).numpy()
        if out_dir is not None:
            folder = Path(out_dir) / f"samples_step{step:06d}"
            for i, wave in enumerate(waves[:16]):
                write_wav(folder / f"{i:02d}.wav", wave, self.sample_rate)
            spectrogram_grid(mels[:16], os.path.join(out_dir, f"samples_step{step:06d}.png"))
        if logger is not None and hasattr(logger, "log_audio"):  # lightning's WandbLogger
            logger.log_audio(key="samples/audio", audios=[w.numpy() for w in waves[:8]],
                             sample_rate=[self.sample_rate] * min(8, len(waves)), step=step)  # fmt: skip
