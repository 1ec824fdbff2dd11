"""A small pre-norm transformer over token ids, bidirectional (masked diffusion) or causal (autoregressive baseline).

    net = DiT(vocab_size=128, seq_len=128, dim=256, depth=4, heads=4)
    logits = net(ids, c_noise, cond)          # ids [B,L] -> logits [B,L,V]

Time conditioning is optional: with `time_conditioning=True` c_noise drives adaLN scale/shift/gate per block
(Peebles & Xie 2023); without it the net ignores c_noise, as MDLM's default, which keeps the masked-diffusion
cached sampler exact.

Positions are rotary by default (Su et al. 2021, as in MDLM's DiT): a bidirectional net then knows left from
right from the first step, where learned absolute positions must first be learned.

References:
    Vaswani et al. 2017 (attention); Peebles & Xie 2023 (DiT, adaLN-Zero); Sahoo et al. 2024 (MDLM's DiT);
    Radford et al. 2019 (GPT-2 pre-norm blocks); Su et al. 2021 (RoFormer, rotary position embedding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffkit.nets.layers import CrossAttentionBlock, FourierEmbedding


def rotary_tables(seq_len: int, head_dim: int, base: float = 10_000.0) -> tuple[Tensor, Tensor]:
    """cos, sin [L, head_dim / 2] of the rotary angles l · base^(-2i / head_dim) (Su et al. 2021, eq. 34)."""
    freqs = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.arange(seq_len, dtype=torch.float32)[:, None] * freqs[None, :]
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the two halves of q or k [B,H,L,D] pairwise by the position angles."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    """Pre-norm self-attention (+ cross-attention to context tokens, PixArt-α) + MLP, optional adaLN modulation."""

    def __init__(
        self, dim: int, heads: int, emb_dim: int | None, dropout: float, causal: bool, context_dim: int | None = None
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"DiT: dim {dim} not divisible by heads {heads}")
        self.heads, self.causal, self.dropout = heads, causal, dropout
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=emb_dim is None)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=emb_dim is None)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)
        self.cross = CrossAttentionBlock(dim, context_dim, heads) if context_dim is not None else None
        self.ada = None
        if emb_dim is not None:  # adaLN-Zero: starts as the identity block
            self.ada = nn.Linear(emb_dim, 6 * dim)
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)

    def forward(
        self,
        h: Tensor,
        emb: Tensor | None,
        rotary: tuple[Tensor, Tensor] | None = None,
        context: tuple[Tensor, Tensor] | None = None,  # (tokens [B,L,D], mask [B,L]) for the cross-attention
    ) -> Tensor:
        b, n, d = h.shape
        if self.ada is not None and emb is not None:
            s1, b1, g1, s2, b2, g2 = self.ada(emb)[:, None, :].chunk(6, dim=-1)
        else:
            s1 = b1 = s2 = b2 = torch.zeros((), device=h.device)
            g1 = g2 = torch.ones((), device=h.device)
        x = self.norm1(h) * (1 + s1) + b1
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        drop = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, dropout_p=drop)
        h = h + g1 * self.drop(self.proj(a.transpose(1, 2).reshape(b, n, d)))
        if self.cross is not None:  # residual, zero-initialised: [B,N,D] as [B,D,N] channels-first tokens
            if context is None:
                raise ValueError("DiT block: built with cross-attention but given no context tokens")
            h = self.cross(h.transpose(1, 2), *context).transpose(1, 2)
        return h + g2 * self.drop(self.mlp(self.norm2(h) * (1 + s2) + b2))


class DiT(nn.Module):
    """Token transformer: ids [B,L] (+ c_noise [B]) -> logits [B,L,V]; rotary or learned positions."""

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,  # maximum sequence length (learned positions)
        dim: int = 256,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
        causal: bool = False,  # True: next-token autoregressive baseline
        time_conditioning: bool = False,  # MDLM default: the masked-diffusion net ignores σ
        positions: str = "rotary",  # "rotary" (MDLM) or "learned" (absolute, GPT-2)
    ) -> None:
        super().__init__()
        if positions not in ("rotary", "learned"):
            raise ValueError(f"DiT: positions must be 'rotary' or 'learned', got {positions!r}")
        if positions == "rotary" and (dim // heads) % 2:
            raise ValueError(f"DiT: rotary positions need an even head dim, got {dim // heads}")
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.cond_keys: frozenset[str] = frozenset()  # reads no condition entries (no encoder slot yet)
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = None
        if positions == "learned":
            self.pos = nn.Parameter(torch.zeros(seq_len, dim))
            nn.init.normal_(self.pos, std=0.02)
        else:
            cos, sin = rotary_tables(seq_len, dim // heads)
            self.register_buffer("rot_cos", cos, persistent=False)
            self.register_buffer("rot_sin", sin, persistent=False)
        nn.init.normal_(self.tok.weight, std=0.02)
        emb_dim = dim if time_conditioning else None
        self.time = nn.Sequential(FourierEmbedding(dim), nn.Linear(dim, dim), nn.SiLU()) if time_conditioning else None
        self.blocks = nn.ModuleList(Block(dim, heads, emb_dim, dropout, causal) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, x: Tensor, c_noise: Tensor | None = None, cond: dict | None = None) -> Tensor:
        if x.shape[1] > self.seq_len:
            raise ValueError(f"DiT: sequence length {x.shape[1]} exceeds seq_len={self.seq_len}")
        n = x.shape[1]
        h = self.tok(x) if self.pos is None else self.tok(x) + self.pos[:n]
        rotary = None if self.pos is not None else (self.rot_cos[:n], self.rot_sin[:n])
        emb = self.time(c_noise) if self.time is not None and c_noise is not None else None
        for block in self.blocks:
            h = block(h, emb, rotary)
        return self.head(self.norm(h))
