"""A diffusion transformer over patches of a continuous input (images, latents) with optional cross-attention.

    net = PatchDiT(4, patch=1, dim=128, depth=4, heads=4, context=ContextTokens(384))
    out = net(x, c_noise, cond)                 # x [B,C,H,W] -> [B,C,H,W]

p×p patches embedded linearly, fixed 2-d sin-cos positions, adaLN-Zero blocks driven by the noise embedding plus
the embedding encoders (labels), cross-attention to context tokens (captions) after the self-attention of every
block, and an adaLN final layer that unpatchifies. Every residual branch and the head start at zero. Like the UNet
it reads condition entries only through the encoders it is given (diffkit.nets.encoders).

References:
    Peebles & Xie 2023 (DiT: patchify, adaLN-Zero, sin-cos positions, final layer); He et al. 2022 (MAE's 2-d
    sin-cos table); Chen et al. 2024 (PixArt-α: cross-attention in every DiT block); Rombach et al. 2022 (LDM).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from diffkit.nets.dit import Block
from diffkit.nets.layers import FourierEmbedding, noise_and_condition_embedding, zero_module


def sincos_positions_2d(height: int, width: int, dim: int) -> Tensor:
    """[height·width, dim] fixed positions: sin/cos of the row in the first half of the channels, of the column in
    the second (MAE / DiT, frequencies 10000^(-i/(dim/4)))."""
    if dim % 4:
        raise ValueError(f"PatchDiT: dim must be a multiple of 4 for 2-d sin-cos positions, got {dim}")
    omega = 1.0 / 10_000 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))

    def table(position: Tensor) -> Tensor:
        angles = position.float()[:, None] * omega[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.cat([table(rows.reshape(-1)), table(cols.reshape(-1))], dim=1)


class PatchDiT(nn.Module):
    """DiT over [B,C,H,W] (H, W multiples of `patch`) with a noise embedding and optional condition encoders."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        patch: int = 2,  # p×p pixels (or latent cells) per token; DiT-*/2
        dim: int = 256,  # token width
        depth: int = 6,  # transformer blocks
        heads: int = 4,
        dropout: float = 0.0,
        embeddings: Mapping[str, Callable[[int], nn.Module]] | None = None,  # dim -> encoder(cond, B) -> [B,dim]
        inputs: Callable[[int], nn.Module] | None = None,  # in_channels -> encoder(x, cond) feeding the patchify
        context: nn.Module | None = None,  # encoder(cond, B, device) -> (tokens [B,L,D], mask [B,L]): ContextTokens
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels or in_channels
        self.patch, self.dim = int(patch), int(dim)
        sincos_positions_2d(1, 1, self.dim)  # checks dim
        self.noise_embed = nn.Sequential(FourierEmbedding(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.embeddings = nn.ModuleDict({name: make(dim) for name, make in (embeddings or {}).items()})
        self.inputs = inputs(in_channels) if inputs is not None else None
        stem_channels = self.inputs.out_channels if self.inputs is not None else in_channels
        self.patchify = nn.Conv2d(stem_channels, dim, self.patch, stride=self.patch)
        self.context = context
        encoders = [*self.embeddings.values(), *(e for e in (self.inputs, context) if e is not None)]
        self.cond_keys = frozenset(key for encoder in encoders for key in encoder.keys)
        context_dim = context.dim if context is not None else None
        self.blocks = nn.ModuleList(Block(dim, heads, dim, dropout, False, context_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.final_ada = zero_module(nn.Linear(dim, 2 * dim))  # final layer's shift and scale (adaLN)
        self.head = zero_module(nn.Linear(dim, self.patch * self.patch * self.out_channels))

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PatchDiT expects x of shape [B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        if x.shape[2] % self.patch or x.shape[3] % self.patch:
            raise ValueError(f"PatchDiT with patch {self.patch} needs H and W divisible by it, got {tuple(x.shape)}")

    def forward(self, x: Tensor, c_noise: Tensor, cond: Mapping[str, Tensor] | None = None) -> Tensor:
        self._check(x)
        b, p = x.shape[0], self.patch
        h = self.patchify(self.inputs(x, cond) if self.inputs is not None else x)  # [B,D,H/p,W/p]
        rows, cols = h.shape[2:]
        h = h.flatten(2).transpose(1, 2) + sincos_positions_2d(rows, cols, self.dim).to(h)
        emb = noise_and_condition_embedding(self.noise_embed, self.embeddings, c_noise, cond, b)
        context = self.context(cond, b, x.device) if self.context is not None else None
        for block in self.blocks:
            h = block(h, emb, None, context)
        shift, scale = self.final_ada(emb)[:, None, :].chunk(2, dim=-1)
        h = self.head(self.norm(h) * (1 + scale) + shift)  # [B, N, p·p·C]
        h = h.reshape(b, rows, cols, p, p, self.out_channels).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(b, self.out_channels, rows * p, cols * p)
