"""DiffWave-class waveform backbone net(x, c_noise, cond) -> Tensor over [B,1,T], the UNet's contract.

Residual stack of gated dilated 1-d convolutions (dilation 2^(i mod cycle)), a noise embedding (Fourier features of
the preconditioner's c_noise -> MLP) added per layer, optional log-mel conditioning (cond["mel"] [B,n_mels,T/hop],
upsampled ×hop by transposed 2-d convolutions) and optional embedding encoders (class labels), skip sum /√N, 1×1 ->
ReLU -> zero-initialised 1×1. It knows nothing about diffusion: any preconditioner, loss or sampler drives it.

References:
    Kong et al. 2021 (DiffWave: gated dilated residual stack, mel upsampler); van den Oord et al. 2016 (WaveNet);
    Karras et al. 2022 (EDM: c_noise = ln(σ)/4 and Fourier noise features).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffkit.nets.layers import FourierEmbedding


class MelUpsampler(nn.Module):
    """log-mel [B,M,F] -> [B,M,F·hop] by transposed 2-d convolutions over (mel, time) with leaky ReLU 0.4 (DiffWave)."""

    def __init__(self, strides: Sequence[int] = (16, 16)) -> None:
        super().__init__()
        self.hop = math.prod(strides)
        self.convs = nn.ModuleList(
            nn.ConvTranspose2d(1, 1, (3, 2 * s), stride=(1, s), padding=(1, s // 2)) for s in strides
        )

    def forward(self, mel: Tensor) -> Tensor:
        h = mel[:, None]
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.4)
        return h[:, 0]


class ResidualLayer(nn.Module):
    """One gated dilated layer: conv(x) + noise + cond -> tanh·sigmoid -> 1×1 -> (residual, skip) (DiffWave Fig. 2)."""

    def __init__(self, channels: int, dilation: int, emb_dim: int, n_mels: int | None) -> None:
        super().__init__()
        self.dilated = nn.Conv1d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
        self.noise = nn.Linear(emb_dim, channels)
        self.mel = nn.Conv1d(n_mels, 2 * channels, 1) if n_mels else None
        self.out = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: Tensor, emb: Tensor, mel: Tensor | None) -> tuple[Tensor, Tensor]:
        h = self.dilated(x + self.noise(emb)[:, :, None])
        if self.mel is not None and mel is not None:
            h = h + self.mel(mel)
        gate, filt = h.chunk(2, dim=1)
        residual, skip = self.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class DiffWave(nn.Module):
    """DiffWave-style net over [B,1,T]; mel conditioning needs T = frames × hop (hop = prod(upsample_strides))."""

    def __init__(
        self,
        in_channels: int = 1,
        *,
        channels: int = 64,  # residual channels C (DiffWave BASE: 64)
        layers: int = 30,  # residual layers (DiffWave: 30)
        dilation_cycle: int = 10,  # dilations 1, 2, ..., 2^(cycle-1), repeated (DiffWave: 10)
        emb_dim: int = 512,  # noise-embedding MLP width (DiffWave: 512)
        n_mels: int | None = None,  # log-mel bands read from cond["mel"]; None = no mel conditioning
        upsample_strides: Sequence[int] = (16, 16),  # mel frames -> samples; product = the mel hop
        embeddings: Mapping[str, Callable[[int], nn.Module]] | None = None,  # emb_dim -> encoder(cond, B) -> [B,E]
        mel_key: str = "mel",  # the condition entry holding the log-mel
        mel_mean: float = 0.0,  # the net reads (log-mel - mel_mean) / mel_std: raw log-mels (~ -8 ± 4) saturate gates
        mel_std: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_channels, self.n_mels, self.mel_key = in_channels, n_mels, mel_key
        self.mel_mean, self.mel_std = float(mel_mean), float(mel_std)
        self.stem = nn.Conv1d(in_channels, channels, 1)
        self.noise_embed = nn.Sequential(FourierEmbedding(128), nn.Linear(128, emb_dim), nn.SiLU(),
                                         nn.Linear(emb_dim, emb_dim), nn.SiLU())  # fmt: skip
        self.embeddings = nn.ModuleDict({name: make(emb_dim) for name, make in (embeddings or {}).items()})
        self.upsampler = MelUpsampler(upsample_strides) if n_mels else None
        self.hop = self.upsampler.hop if self.upsampler is not None else 1
        self.layers = nn.ModuleList(
            ResidualLayer(channels, 2 ** (i % dilation_cycle), emb_dim, n_mels) for i in range(layers)
        )
        self.skip = nn.Conv1d(channels, channels, 1)
        self.head = nn.Conv1d(channels, in_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        keys = {key for encoder in self.embeddings.values() for key in encoder.keys}
        self.cond_keys = frozenset(keys | ({mel_key} if n_mels else set()))

    def _mel(self, cond: Mapping[str, Tensor] | None, x: Tensor) -> Tensor | None:
        if self.upsampler is None:
            return None
        mel = cond.get(self.mel_key) if cond else None
        if mel is None:  # an absent entry is null for every row: the same input as a NaN (dropped) mel
            mel = torch.zeros(x.shape[0], self.n_mels, x.shape[-1] // self.hop, device=x.device, dtype=x.dtype)
        if mel.shape[1] != self.n_mels or mel.shape[-1] * self.hop != x.shape[-1]:
            expected = f"[B, {self.n_mels}, {x.shape[-1] // self.hop}]"
            raise ValueError(f"DiffWave: cond[{self.mel_key!r}] has shape {tuple(mel.shape)}; expected {expected} "
                             f"for x {tuple(x.shape)} (hop {self.hop})")  # fmt: skip
        null = torch.isnan(mel).flatten(1).any(1)  # a null (dropped) condition: no mel input for that row
        mel = torch.where(null[:, None, None], torch.zeros_like(mel), (mel.to(x.dtype) - self.mel_mean) / self.mel_std)
        return self.upsampler(mel)

    def forward(self, x: Tensor, c_noise: Tensor, cond: Mapping[str, Tensor] | None = None) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"DiffWave expects x of shape [B, {self.in_channels}, T], got {tuple(x.shape)}")
        batch = x.shape[0]
        emb = self.noise_embed[0](c_noise.reshape(-1).expand(batch))
        emb = self.noise_embed[1:](emb)
        for encoder in self.embeddings.values():
            emb = emb + encoder(cond, batch)
        mel = self._mel(cond, x)
        h, skips = F.relu(self.stem(x)), 0.0
        for layer in self.layers:
            h, skip = layer(h, emb, mel)
            skips = skips + skip
        h = F.relu(self.skip(skips / math.sqrt(len(self.layers))))
        return self.head(h)
