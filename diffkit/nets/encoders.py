"""Conditioning encoders: the slot through which a backbone reads condition entries, each owning its learned null.

Two kinds, built by the backbone from factories so they get its widths:
  embedding encoders  factory(emb_dim) -> module(cond, batch) -> [B, emb_dim], added to the noise embedding;
  input encoders      factory(in_channels) -> module(x, cond) -> [B, out_channels, *S], fed to the stem.
Each lists the entries it reads in `keys`, so a model can check that every declared entry has a reader.

    UNet(1, embeddings={"label": partial(LabelEmbedding, num_classes=10)}, inputs=KnownChannels)

References:
    Ho & Salimans 2022 (a learned null label for classifier-free guidance); Saharia et al. 2022 (Palette: known
    pixels and their mask as extra input channels).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn


class LabelEmbedding(nn.Module):
    """cond[key] long [B] -> [B, dim]; rows equal to `null` (or an absent entry) get the learned null embedding."""

    def __init__(
        self,
        dim: int,
        *,
        num_classes: int,
        key: str = "label",  # the condition entry read
        null: int = -1,  # the declared null of that entry (classifier-free guidance)
    ) -> None:
        super().__init__()
        self.num_classes, self.key, self.null = int(num_classes), key, int(null)
        self.keys = frozenset({key})
        self.table = nn.Embedding(self.num_classes + 1, dim)  # row num_classes: the learned "no label"

    def forward(self, cond: Mapping[str, Tensor] | None, batch: int) -> Tensor:
        labels = cond.get(self.key) if cond else None
        null = torch.full((batch,), self.num_classes, dtype=torch.long, device=self.table.weight.device)
        labels = null if labels is None else torch.where(labels == self.null, null, labels.long())
        return self.table(labels)


class KnownChannels(nn.Module):
    """x [B,C,*S] -> [x, known·mask, mask] [B,3C,*S] (Palette); no mask entry (or an all-zero one) = nothing known."""

    def __init__(self, in_channels: int, *, known_key: str = "known", mask_key: str = "mask") -> None:
        super().__init__()
        self.known_key, self.mask_key = known_key, mask_key
        self.keys = frozenset({known_key, mask_key})
        self.out_channels = 3 * in_channels

    def forward(self, x: Tensor, cond: Mapping[str, Tensor] | None) -> Tensor:
        mask = cond.get(self.mask_key) if cond else None
        if mask is None:
            return torch.cat([x, torch.zeros_like(x), torch.zeros_like(x)], dim=1)
        known = cond.get(self.known_key)
        if known is None:
            raise ValueError(
                f"KnownChannels: cond has a {self.mask_key!r} entry but no {self.known_key!r} to go with it"
            )
        mask = mask.to(x.dtype).expand_as(x)
        return torch.cat([x, known.to(x.dtype) * mask, mask], dim=1)


class ContextTokens(nn.Module):
    """cond[key] float [B,L,D] and cond[mask_key] [B,L] (1 = token) -> (context, mask) for cross-attention; rows with
    an all-zero mask (the declared null of a dropped caption, or an absent entry) attend the learned null only."""

    def __init__(self, dim: int, *, key: str = "context", mask_key: str = "context_mask") -> None:
        super().__init__()
        self.dim, self.key, self.mask_key = int(dim), key, mask_key
        self.keys = frozenset({key, mask_key})

    def forward(self, cond: Mapping[str, Tensor] | None, batch: int, device: torch.device) -> tuple[Tensor, Tensor]:
        context = cond.get(self.key) if cond else None
        if context is None:  # no caption at all: one padded token, so only the null token is attended
            return torch.zeros(batch, 1, self.dim, device=device), torch.zeros(batch, 1, device=device)
        mask = cond.get(self.mask_key)
        if mask is None:
            raise ValueError(f"ContextTokens: cond has a {self.key!r} entry but no {self.mask_key!r} to go with it")
        mask = mask.to(context.dtype)
        return torch.where(mask[..., None].bool(), context, 0.0), mask
