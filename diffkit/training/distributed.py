"""Collectives that work with and without an initialised torch.distributed process group (DDP on any backend).

References:
    torch.distributed.all_gather_object (variable-size shards without padding).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_cat(t: Tensor) -> Tensor:
    """Concatenate each rank's tensor [n_r, ...] along dim 0 in rank order (n_r may differ); every rank gets all.

    Every rank must call it exactly once per result (one collective), even with an empty shard, so nothing hangs.
    """
    rank, world = rank_and_world()
    if world == 1:
        return t
    parts: list[Tensor | None] = [None] * world
    dist.all_gather_object(parts, t.detach().cpu())
    return torch.cat([p for p in parts if p is not None]).to(t.device)
