"""Exponential moving average of model weights, with the warm-up of Karras et al. / Song & Ermon.

References:
    Polyak & Juditsky 1992; Song & Ermon 2020 (EMA for score models); Karras et al. 2022 (ema_rampup).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """A frozen copy of `model` updated as θ_ema ← d·θ_ema + (1 - d)·θ, d = min(decay, (1 + n) / (10 + n))."""

    def __init__(
        self,
        model: nn.Module,
        decay: float = 0.999,  # per-step decay after warm-up
        warmup: bool = True,  # ramp the decay up from 0.1 so early EMA weights are not stuck at init
    ) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = decay, warmup
        self.module = copy.deepcopy(model).requires_grad_(False).eval()
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        """The decay used by the next update."""
        n = int(self.num_updates)
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the EMA weights towards `model`'s; buffers (e.g. norm statistics) are copied."""
        decay = self.current_decay()
        ema_params = [p for p in self.module.parameters()]
        params = [p.detach().to(e.dtype) for p, e in zip(model.parameters(), ema_params, strict=True)]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for ema_buf, buf in zip(self.module.buffers(), model.buffers(), strict=True):
            ema_buf.copy_(buf)
        self.num_updates += 1

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def train(self, mode: bool = True) -> EMA:
        """The EMA copy always stays in eval mode (no dropout)."""
        super().train(mode)
        self.module.eval()
        return self
