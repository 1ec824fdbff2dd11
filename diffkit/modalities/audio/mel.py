"""Spoken digits as log-mel images: stage 1 of two-stage audio generation (diffuse spectrograms, then render them).

Model space is the whole clip's log-mel as a one-channel image [B,1,n_mels,frames], standardised as
(log-mel - mel_mean) / mel_std, so the shared 2-d UNet and every sampler apply unchanged; a class label conditions
it (classifier-free guidance through the conditioning surface). decode() returns log-mels [B,n_mels,frames];
render() turns them into waveforms with Griffin-Lim (the baseline renderer) or a mel vocoder checkpoint of
recipe=audio/vocoder.

    modality = MelModality(num_classes=10)
    mels = modality.decode(module.sample(10, modality.request(10).cond))   # [10, 80, 64]
    waves = modality.render(mels)                                          # [10, 1, 16384]

References:
    Kong et al. 2021 (DiffWave: SC09 class-conditional digits); Popov et al. 2021 and Liu et al. 2023 (diffusion on
    mel spectrograms rendered by a vocoder); Griffin & Lim 1984.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffkit.core.types import Cond, CondSpec
from diffkit.modalities.audio.adapter import AudioModality
from diffkit.modalities.audio.io import write_wav
from diffkit.modalities.base import DataError, Request


class MelModality(AudioModality):
    """Whole clips as standardised log-mel images [1,n_mels,length/hop]; condition entry: the class label."""

    def __init__(
        self,
        *,
        mel_mean: float = -8.0,  # train log-mels are -8.2 ± 3.8 (floor ln 1e-5 = -11.5): model space ≈ unit scale
        mel_std: float = 4.0,
        griffin_lim_iters: int = 100,  # render() without a vocoder
        vocoder_ckpt: str | None = None,  # a recipe=audio/vocoder checkpoint: render() vocodes with it instead
        vocoder_steps: int = 12,  # the vocoder's sampling steps (its recipe's sampler: DPM++(2M), NFE = steps)
        **audio: Any,  # AudioModality's log-mel definition, length, num_classes, data_dir
    ) -> None:
        if audio.get("mel_cond"):
            raise ValueError("MelModality: mel_cond is for vocoders; the mel modality generates the mel itself")
        super().__init__(**audio)
        self.mel_mean, self.mel_std = float(mel_mean), float(mel_std)
        self.griffin_lim_iters, self.vocoder_ckpt = int(griffin_lim_iters), vocoder_ckpt
        self.vocoder_steps = int(vocoder_steps)
        self._vocoder: Any = None

    def example_shape(self) -> tuple[int, ...]:
        return (1, self.n_mels, self.length // self.hop)

    def cond_specs(self) -> tuple[CondSpec, ...]:
        return (CondSpec("label", (), torch.long, -1),) if self.num_classes else ()

    def to_model(self, log_mel: Tensor) -> Tensor:
        """log-mels [B,n_mels,F] -> model space [B,1,n_mels,F]."""
        return ((log_mel - self.mel_mean) / self.mel_std)[:, None]

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]:
        audio = batch.get("audio") if isinstance(batch, Mapping) else None
        if not isinstance(audio, Tensor) or audio.ndim != 3 or tuple(audio.shape[1:]) != (1, self.length):
            raise DataError(f"mel batch 'audio' has shape {tuple(getattr(audio, 'shape', ()))}; expected whole clips "
                            f"[B, 1, {self.length}] (data.length = modality.length)")  # fmt: skip
        cond = {"label": batch["label"].long()} if self.num_classes else {}
        return self.to_model(self.log_mel(audio[:, 0])), cond

    def decode(self, x0: Tensor, cond: Cond | None = None) -> Tensor:
        """Model space [B,1,n_mels,F] -> log-mels [B,n_mels,F] (float32, CPU), clamped to [log floor, ln 1]."""
        log_mel = x0.detach().float().cpu()[:, 0] * self.mel_std + self.mel_mean
        return log_mel.clamp(min=float(torch.log(torch.tensor(self.log_floor))), max=0.0)

    def render(self, log_mel: Tensor) -> Tensor:
        """log-mels [B,n_mels,F] -> waveforms [B,1,F·hop]: the vocoder checkpoint if one is set, else Griffin-Lim."""
        from diffkit.modalities.audio.metrics import griffin_lim

        if self.vocoder_ckpt is None:
            return griffin_lim(log_mel, self, self.griffin_lim_iters)
        vocoder = self._load_vocoder()  # trained on crops: sampled here at the whole clip's length
        sigmas = vocoder.schedule(self.vocoder_steps).to(vocoder.device)
        shape = (len(log_mel), 1, log_mel.shape[-1] * self.hop)
        generator = torch.Generator().manual_seed(0)
        x = vocoder.process.prior(shape, device=vocoder.device, generator=generator, sigma=float(sigmas[0]))
        cond = {"mel": log_mel.to(vocoder.device)}
        with torch.no_grad():
            x = vocoder.sampler(vocoder.ema.module, x, sigmas, cond=cond, generator=generator)
        return vocoder.modality.decode(x, cond)  # a PriorGrad vocoder's scale comes from the mel

    def _load_vocoder(self) -> Any:
        """The vocoder checkpoint's module, loaded once (its stored config is checked like every checkpoint's)."""
        if self._vocoder is None:
            import diffkit

            if not Path(str(self.vocoder_ckpt)).is_file():
                raise DataError(f"modality.vocoder_ckpt={self.vocoder_ckpt}: no such checkpoint (recipe=audio/vocoder)")
            vocoder = diffkit.load(str(self.vocoder_ckpt)).eval()
            if "mel" not in {spec.name for spec in vocoder.modality.cond_specs()}:
                raise DataError(f"modality.vocoder_ckpt={self.vocoder_ckpt}: not a mel vocoder (no 'mel' condition)")
            self._vocoder = vocoder
        return self._vocoder

    def held_out_labels(self, n: int, split: str = "test") -> Tensor:
        """The labels [n] of the first n clips of a split (manifest order, as held_out), read from the manifest."""
        from diffkit.modalities.audio.datasets import read_manifest

        rows = [r for r in read_manifest(self.data_dir) if r["split"] == split][:n]
        if len(rows) < n:
            raise DataError(f"{self.data_dir}: the {split} split has {len(rows)} clips, asked for {n}")
        return torch.tensor([int(r["label"]) for r in rows])

    def held_out_mels(self, n: int, split: str = "test") -> tuple[Tensor, Tensor]:
        """(log-mels [n,n_mels,F] of the first n whole clips of a split, their labels [n])."""
        return self.held_out_mel(n, split), self.held_out_labels(n, split)

    def request(self, n: int, label: int | None = None) -> Request:
        """Class-conditional: every digit in turn, or `+request.label=7`; unconditional models: no condition."""
        if not self.num_classes:
            if label is not None:
                raise ValueError("request: label= needs a class-conditional model (modality.num_classes)")
            return Request()
        if label is not None and not 0 <= int(label) < int(self.num_classes):
            raise ValueError(f"request: label={label} is outside 0..{int(self.num_classes) - 1}")
        labels = torch.full((n,), int(label)) if label is not None else torch.arange(n) % int(self.num_classes)
        return Request(cond={"label": labels})

    def log_samples(self, samples: Tensor, logger: Any, step: int, out_dir: str | None = None) -> None:
        """Spectrogram PNG grid and rendered WAVs on disk; wandb.Audio clips to a wandb logger."""
        from diffkit.modalities.audio.plots import spectrogram_grid

        mels = torch.as_tensor(samples)[:16]
        waves = self.render(mels)[:, 0] if out_dir is not None or hasattr(logger, "log_audio") else None
        if out_dir is not None:
            folder = Path(out_dir) / f"samples_step{step:06d}"
            for i, wave in enumerate(waves):
                write_wav(folder / f"{i:02d}.wav", wave, self.sample_rate)
            spectrogram_grid(mels.numpy(), os.path.join(out_dir, f"samples_step{step:06d}.png"))
        if logger is not None and hasattr(logger, "log_audio"):  # lightning's WandbLogger
            logger.log_audio(key="samples/audio", audios=[w.numpy() for w in waves[:8]],
                             sample_rate=[self.sample_rate] * min(8, len(waves)), step=step)  # fmt: skip
