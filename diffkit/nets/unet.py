"""N-d UNet backbone net(x, c_noise, cond) -> Tensor: 2-d for images, 1-d for audio and trajectories.

It knows nothing about diffusion: c_noise is whatever scalar a preconditioner passes (e.g. ln(σ)/4).

References:
    Ronneberger et al. 2015 (U-Net); Ho et al. 2020 and Dhariwal & Nichol 2021 (diffusion UNet/ADM);
    Ho & Salimans 2022 (a learned null label for classifier-free guidance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffkit.nets.layers import AttentionBlock, FourierEmbedding, ResBlock, conv_nd, group_norm, zero_module


class UNet(nn.Module):
    """UNet over [B,C,T] (dims=1) or [B,C,H,W] (dims=2) with noise and optional class-label embeddings."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        dims: int = 2,  # spatial rank: 1 = sequences, 2 = images
        channels: int = 64,  # width of the first level
        channel_mult: Sequence[int] = (1, 2, 2),  # width multiplier per resolution level
        num_res_blocks: int = 2,  # residual blocks per level on the way down
        attn_levels: Sequence[int] = (),  # levels (0 = full resolution) with self-attention
        num_heads: int = 4,
        num_classes: int | None = None,  # class-label conditioning; label < 0 = no label (CFG null)
        dropout: float = 0.0,
        emb_dim: int | None = None,  # embedding width; default 4 × channels
        known_channels: bool = False,  # also read cond["known"], cond["mask"] as input channels (learned inpainting)
    ) -> None:
        super().__init__()
        self.in_channels, self.dims, self.num_classes = in_channels, dims, num_classes
        self.known_channels = known_channels
        self.out_channels = out_channels or in_channels
        self.num_levels = len(channel_mult)
        emb_dim = emb_dim or 4 * channels
        self.noise_embed = nn.Sequential(
            FourierEmbedding(channels), nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        # Index num_classes is the learned "no label" embedding.
        self.label_embed = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None

        # Learned inpainting (Saharia et al. 2022, Palette): [x, known·mask, mask] stacked on the channel axis.
        self.stem = conv_nd(dims, in_channels * (3 if known_channels else 1), channels, 3, padding=1)
        self.down, skips, ch = nn.ModuleList(), [channels], channels
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                blocks = [ResBlock(dims, ch, channels * mult, emb_dim, dropout)]
                ch = channels * mult
                if level in attn_levels:
                    blocks.append(AttentionBlock(ch, num_heads))
                self.down.append(nn.ModuleList(blocks))
                skips.append(ch)
            if level < self.num_levels - 1:
                self.down.append(nn.ModuleList([conv_nd(dims, ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
        self.mid = nn.ModuleList(
            [ResBlock(dims, ch, ch, emb_dim, dropout), AttentionBlock(ch, num_heads), ResBlock(dims, ch, ch, emb_dim)]
        )
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                blocks = [ResBlock(dims, ch + skips.pop(), channels * mult, emb_dim, dropout)]
                ch = channels * mult
                if level in attn_levels:
                    blocks.append(AttentionBlock(ch, num_heads))
                if level > 0 and i == num_res_blocks:
                    blocks.append(_Upsample(dims, ch))
                self.up.append(nn.ModuleList(blocks))
        self.head = nn.Sequential(
            group_norm(ch), nn.SiLU(), zero_module(conv_nd(dims, ch, self.out_channels, 3, padding=1))
        )

    def _check(self, x: Tensor) -> None:
        if x.ndim != self.dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects x of shape [B, {self.in_channels}, {', '.join(['*'] * self.dims)}], got {tuple(x.shape)}"
            )
        factor = 2 ** (self.num_levels - 1)
        if any(size % factor for size in x.shape[2:]):
            raise ValueError(
                f"UNet with {self.num_levels} levels needs spatial sizes divisible by {factor}, got {tuple(x.shape)}"
            )

    def embed(self, c_noise: Tensor, cond: Mapping[str, Tensor] | None, batch: int) -> Tensor:
        """Noise embedding plus the label (or null-label) embedding: [B, emb_dim]."""
        emb = self.noise_embed(c_noise.reshape(-1).expand(batch))
        if self.label_embed is not None:
            labels = cond.get("label") if cond else None
            null = torch.full((batch,), self.num_classes, dtype=torch.long, device=emb.device)
            labels = null if labels is None else torch.where(labels < 0, null, labels.long())
            emb = emb + self.label_embed(labels)
        return F.silu(emb)

    def known_inputs(self, x: Tensor, cond: Mapping[str, Tensor] | None) -> Tensor:
        """x with the known entries and their mask (1 = known) appended; no mask given = nothing known."""
        mask = cond.get("mask") if cond else None
        if mask is None:
            return torch.cat([x, torch.zeros_like(x), torch.zeros_like(x)], dim=1)
        known = cond.get("known")
        if known is None:
            raise ValueError("UNet: cond has a 'mask' but no 'known' entries to go with it")
        mask = mask.to(x.dtype).expand_as(x)
        return torch.cat([x, known.to(x.dtype) * mask, mask], dim=1)

    def forward(self, x: Tensor, c_noise: Tensor, cond: Mapping[str, Tensor] | None = None) -> Tensor:
        self._check(x)
        emb = self.embed(c_noise, cond, x.shape[0])
        h = self.stem(self.known_inputs(x, cond) if self.known_channels else x)
        hs = [h]
        for blocks in self.down:
            for block in blocks:
                h = block(h, emb) if isinstance(block, ResBlock) else block(h)
            hs.append(h)
        for block in self.mid:
            h = block(h, emb) if isinstance(block, ResBlock) else block(h)
        for blocks in self.up:
            h = torch.cat([h, hs.pop()], dim=1)
            for block in blocks:
                h = block(h, emb) if isinstance(block, ResBlock) else block(h)
        return self.head(h)


class _Upsample(nn.Module):
    """Nearest-neighbour ×2 upsampling followed by a 3-wide convolution."""

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.conv = conv_nd(dims, channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
