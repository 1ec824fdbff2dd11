"""N-d UNet backbone net(x, c_noise, cond) -> Tensor: 2-d for images, 1-d for audio and trajectories.

It knows nothing about diffusion: c_noise is whatever scalar a preconditioner passes (e.g. ln(σ)/4). Nor does it
know condition entries: it reads them only through the conditioning encoders it is given (diffkit.nets.encoders).

References:
    Ronneberger et al. 2015 (U-Net); Ho et al. 2020 and Dhariwal & Nichol 2021 (diffusion UNet/ADM);
    Perez et al. 2018 (FiLM: condition embeddings modulate the residual blocks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffkit.nets.layers import (
    AttentionBlock,
    CrossAttentionBlock,
    FourierEmbedding,
    ResBlock,
    conv_nd,
    group_norm,
    noise_and_condition_embedding,
    zero_module,
)


class UNet(nn.Module):
    """UNet over [B,C,T] (dims=1) or [B,C,H,W] (dims=2) with a noise embedding and optional condition encoders."""

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
        dropout: float = 0.0,
        emb_dim: int | None = None,  # embedding width; default 4 × channels
        embeddings: Mapping[str, Callable[[int], nn.Module]] | None = None,  # emb_dim -> encoder(cond, B) -> [B,E]
        inputs: Callable[[int], nn.Module] | None = None,  # in_channels -> encoder(x, cond) feeding the stem
        context: nn.Module
        | None = None,  # encoder(cond, B, device) -> (tokens [B,L,D], mask [B,L]), e.g. ContextTokens
        context_levels: Sequence[int] = (),  # levels with cross-attention to the context (the middle always has it)
    ) -> None:
        super().__init__()
        self.in_channels, self.dims = in_channels, dims
        self.out_channels = out_channels or in_channels
        self.num_levels = len(channel_mult)
        emb_dim = emb_dim or 4 * channels
        self.noise_embed = nn.Sequential(
            FourierEmbedding(channels), nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.embeddings = nn.ModuleDict({name: make(emb_dim) for name, make in (embeddings or {}).items()})
        self.inputs = inputs(in_channels) if inputs is not None else None
        stem_channels = self.inputs.out_channels if self.inputs is not None else in_channels
        self.stem = conv_nd(dims, stem_channels, channels, 3, padding=1)
        # The condition entries this net reads (the model checks that every declared entry has a reader).
        self.context = context
        encoders = [*self.embeddings.values(), *(e for e in (self.inputs, context) if e is not None)]
        self.cond_keys = frozenset(key for encoder in encoders for key in encoder.keys)
        self.down, skips, ch = nn.ModuleList(), [channels], channels
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                blocks = [ResBlock(dims, ch, channels * mult, emb_dim, dropout)]
                ch = channels * mult
                if level in attn_levels:
                    blocks.append(AttentionBlock(ch, num_heads))
                if context is not None and level in context_levels:
                    blocks.append(CrossAttentionBlock(ch, context.dim, num_heads))
                self.down.append(nn.ModuleList(blocks))
                skips.append(ch)
            if level < self.num_levels - 1:
                self.down.append(nn.ModuleList([conv_nd(dims, ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
        cross = [CrossAttentionBlock(ch, context.dim, num_heads)] if context is not None else []
        self.mid = nn.ModuleList(
            [ResBlock(dims, ch, ch, emb_dim, dropout), AttentionBlock(ch, num_heads), *cross,
             ResBlock(dims, ch, ch, emb_dim)]
        )  # fmt: skip
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                blocks = [ResBlock(dims, ch + skips.pop(), channels * mult, emb_dim, dropout)]
                ch = channels * mult
                if level in attn_levels:
                    blocks.append(AttentionBlock(ch, num_heads))
                if context is not None and level in context_levels:
                    blocks.append(CrossAttentionBlock(ch, context.dim, num_heads))
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
        """Noise embedding plus every embedding encoder's output (its learned null where the entry is null)."""
        return noise_and_condition_embedding(self.noise_embed, self.embeddings, c_noise, cond, batch)

    def forward(self, x: Tensor, c_noise: Tensor, cond: Mapping[str, Tensor] | None = None) -> Tensor:
        self._check(x)
        emb = self.embed(c_noise, cond, x.shape[0])
        ctx = self.context(cond, x.shape[0], x.device) if self.context is not None else None

        def apply(block: nn.Module, h: Tensor) -> Tensor:
            if isinstance(block, ResBlock):
                return block(h, emb)
            return block(h, *ctx) if isinstance(block, CrossAttentionBlock) else block(h)

        h = self.stem(self.inputs(x, cond) if self.inputs is not None else x)
        hs = [h]
        for blocks in self.down:
            for block in blocks:
                h = apply(block, h)
            hs.append(h)
        for block in self.mid:
            h = apply(block, h)
        for blocks in self.up:
            h = torch.cat([h, hs.pop()], dim=1)
            for block in blocks:
                h = apply(block, h)
        return self.head(h)


class _Upsample(nn.Module):
    """Nearest-neighbour ×2 upsampling followed by a 3-wide convolution."""

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.conv = conv_nd(dims, channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
