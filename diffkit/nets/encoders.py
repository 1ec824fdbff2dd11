"""Conditioning encoders: the slot through which a backbone reads condition entries, each owning its learned null.

Two kinds, built by the backbone from factories so they get its widths:
  embedding encoders  factory(emb_dim) -> module(cond, batch) -> [B, emb_dim], added to the noise embedding;
  input encoders      factory(in_channels) -> module(x, cond) -> [B, out_channels, *S], fed to the stem.
Each lists the entries it reads in `keys`, so a model can check that every declared entry has a reader.

    UNet(1, embeddings={"label": partial(LabelEmbedding, num_classes=10)}, inputs=KnownChannels)
    UNet(1, inputs=LowResChannels)   # super-resolution: [x, upsampled low_res] into the stem

References:
    Ho & Salimans 2022 (a learned null label for classifier-free guidance); Saharia et al. 2022 (Palette: known
    pixels and their mask as extra input channels); Saharia et al. 2021 (SR3: the upsampled low-resolution image
    concatenated to the input).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
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


class LowResChannels(nn.Module):
    """x [B,C,*S], cond[key] [B,C_low,*s] -> [x, cond[key] interpolated to *S] [B,C+C_low,*S] (SR3); null (NaN) rows
    and an absent entry read a learned per-channel null. Works for pixels (s = S/f) and smaller latents (s ≥ S)."""

    def __init__(
        self,
        in_channels: int,
        *,
        key: str = "low_res",  # the condition entry read
        channels: int | None = None,  # channels of the entry; default in_channels (pixel-space super-resolution)
        mode: str = "bicubic",  # F.interpolate mode (SR3 upsamples bicubically)
    ) -> None:
        super().__init__()
        self.key, self.mode = key, mode
        self.channels = int(channels or in_channels)
        self.keys = frozenset({key})
        self.out_channels = in_channels + self.channels
        self.null = nn.Parameter(torch.zeros(self.channels))  # the learned "no low-resolution image"

    def forward(self, x: Tensor, cond: Mapping[str, Tensor] | None) -> Tensor:
        low = cond.get(self.key) if cond else None
        nulls = self.null.to(x.dtype).view(1, -1, *([1] * (x.ndim - 2))).expand(x.shape[0], -1, *x.shape[2:])
        if low is None:
            return torch.cat([x, nulls], dim=1)
        if low.ndim != x.ndim or low.shape[0] != x.shape[0] or low.shape[1] != self.channels:
            raise ValueError(
                f"LowResChannels: cond[{self.key!r}] has shape {tuple(low.shape)}; expected "
                f"[{x.shape[0]}, {self.channels}, {', '.join(['*'] * (x.ndim - 2))}] for x of shape {tuple(x.shape)}"
            )
        null_rows = low.isnan().reshape(low.shape[0], -1).all(dim=1)
        corners = {} if self.mode in ("nearest", "area") else {"align_corners": False}
        up = F.interpolate(torch.nan_to_num(low.to(x.dtype)), size=tuple(x.shape[2:]), mode=self.mode, **corners)
        up = torch.where(null_rows.view(-1, *([1] * (x.ndim - 1))), nulls, up)
        return torch.cat([x, up], dim=1)


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
