"""Building blocks shared by the backbones: noise embeddings, normalisation, FiLM residual blocks, attention.

References:
    Tancik et al. 2020 (Fourier features); Dhariwal & Nichol 2021 (ADM residual blocks with adaptive GroupNorm);
    Vaswani et al. 2017 (attention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_nd(dims: int, *args, **kwargs) -> nn.Module:
    """Conv1d or Conv2d by spatial rank."""
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 (sequences) or 2 (images), got {dims}")
    return (nn.Conv1d if dims == 1 else nn.Conv2d)(*args, **kwargs)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count ≤ 32 that divides `channels`."""
    groups = next(g for g in range(min(32, channels), 0, -1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a module's parameters so a residual branch starts as the identity (Goyal et al. 2017)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class FourierEmbedding(nn.Module):
    """Random Fourier features of a scalar, cos/sin(2π f c) with fixed f ~ N(0, scale²) (Tancik et al. 2020)."""

    def __init__(self, dim: int, scale: float = 16.0) -> None:  # scale 16: EDM's NCSN++ setting for ln(σ)/4
        super().__init__()
        self.register_buffer("freqs", torch.randn(dim // 2) * scale)

    def forward(self, c: Tensor) -> Tensor:
        angles = 2 * math.pi * c.float()[:, None] * self.freqs[None, :]
        return torch.cat([angles.cos(), angles.sin()], dim=1)


def noise_and_condition_embedding(
    noise_embed: nn.Module,
    encoders: Mapping[str, nn.Module],
    c_noise: Tensor,
    cond: Mapping[str, Tensor] | None,
    batch: int,
) -> Tensor:
    """SiLU(noise embedding + every embedding encoder's output) [B,E]; an encoder gives its learned null where its
    entry is null or absent (ADM / DiT: class embeddings added to the timestep embedding)."""
    emb = noise_embed(c_noise.reshape(-1).expand(batch))
    for encoder in encoders.values():
        emb = emb + encoder(cond, batch)
    return F.silu(emb)


class ResBlock(nn.Module):
    """Residual block with adaptive GroupNorm scale-shift from the embedding (Dhariwal & Nichol 2021, ADM)."""

    def __init__(self, dims: int, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = conv_nd(dims, in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(conv_nd(dims, out_ch, out_ch, 3, padding=1))
        self.skip = conv_nd(dims, in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[(...,) + (None,) * (x.ndim - 2)].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all spatial positions, residual (Vaswani et al. 2017; ADM)."""

    def __init__(self, channels: int, num_heads: int = 4) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"attention: channels {channels} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm = group_norm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = zero_module(nn.Linear(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        tokens = self.norm(x).reshape(b, c, -1).transpose(1, 2)  # [B, N, C]
        q, k, v = self.qkv(tokens).reshape(b, -1, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, c)
        return x + self.out(h).transpose(1, 2).reshape(x.shape)


class CrossAttentionBlock(nn.Module):
    """Pre-norm multi-head cross-attention, spatial tokens [B,C,*S] -> context tokens [B,L,D], residual (Rombach et al.
    2022, LDM). A learned null token is always a key, so a fully padded (dropped) context is well defined."""

    def __init__(self, channels: int, context_dim: int, num_heads: int = 4) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"cross-attention: channels {channels} not divisible by num_heads {num_heads}")
        self.num_heads, self.context_dim = num_heads, context_dim
        self.norm = group_norm(channels)
        self.context_norm = nn.LayerNorm(context_dim)
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(context_dim, 2 * channels)
        self.null = nn.Parameter(torch.randn(1, 1, context_dim) * 0.02)  # the learned "no caption" key/value
        self.out = zero_module(nn.Linear(channels, channels))

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None = None) -> Tensor:
        """x [B,C,*S]; context [B,L,D]; mask [B,L] (1 = token, 0 = padding; None = all tokens)."""
        b, c = x.shape[:2]
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != self.context_dim:
            raise ValueError(
                f"cross-attention expects context [{b}, L, {self.context_dim}], got {tuple(context.shape)}"
            )
        keep = torch.ones(context.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask.bool()
        context = torch.where(keep[..., None], context, 0.0)  # padded rows may hold NaN (a declared null)
        context = torch.cat([self.null.expand(b, -1, -1).to(context.dtype), context], dim=1)
        keep = torch.cat([keep.new_ones(b, 1), keep], dim=1)  # the null token is always attended
        heads = (b, -1, self.num_heads, c // self.num_heads)
        q = self.q(self.norm(x).reshape(b, c, -1).transpose(1, 2)).reshape(heads).transpose(1, 2)
        k, v = self.kv(self.context_norm(context)).reshape(b, -1, 2, *heads[2:]).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        return x + self.out(h.transpose(1, 2).reshape(b, -1, c)).transpose(1, 2).reshape(x.shape)
