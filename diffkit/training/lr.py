"""Learning-rate schedules as `LambdaLR` factories, so Hydra can build them with `_partial_: true`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler


def warmup_cosine(optimizer: Optimizer, warmup_steps: int, total_steps: int, final_factor: float = 0.1) -> LambdaLR:
    """Linear warm-up from 1% of the base rate, then a half-cosine to final_factor × base (SGDR, Loshchilov-Hutter)."""
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_cosine: need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
    if not 0.0 <= final_factor <= 1.0:
        raise ValueError(f"warmup_cosine: final_factor must be in [0, 1], got {final_factor}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return 0.01 + 0.99 * step / warmup_steps
        progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
        return final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def optimizer_config(
    params: Iterable[Tensor],
    optimizer_factory: Callable[..., Optimizer],
    lr_scheduler_factory: Callable[..., LRScheduler] | None = None,
) -> Any:
    """Lightning's `configure_optimizers` answer: the optimizer, plus its scheduler stepped every step if one is set."""
    optimizer = optimizer_factory(params=params)
    if lr_scheduler_factory is None:
        return optimizer
    scheduler = lr_scheduler_factory(optimizer=optimizer)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
