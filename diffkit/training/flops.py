"""FLOPs of a training step for Lightning's ThroughputMonitor (flops_per_sec in the dashboards)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
from torch.utils.flop_counter import FlopCounterMode


@contextmanager
def count_flops_once(module: L.LightningModule) -> Iterator[None]:
    """On the first call, count the forward pass's matmul/conv FLOPs inside the block and set
    module.flops_per_batch = 3 × that (backward ≈ 2 × forward, Kaplan et al. 2020); later calls cost nothing."""
    if getattr(module, "flops_per_batch", None) is not None:
        yield
        return
    with FlopCounterMode(display=False) as counter:
        yield
    module.flops_per_batch = 3 * counter.get_total_flops()
