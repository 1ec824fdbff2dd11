"""Run a modality's Evaluator on a DiffusionModule through seeded, batched sampling functions."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from diffkit.core.types import Cond
from diffkit.modalities.base import Evaluator
from diffkit.training.module import DiffusionModule


def _slices(n: int, batch_size: int) -> list[slice]:
    return [slice(start, min(n, start + batch_size)) for start in range(0, n, batch_size)]


def _part(cond: Cond | None, sl: slice, device: torch.device) -> Cond | None:
    return None if cond is None else {k: v[sl].to(device) for k, v in cond.items()}


def evaluate(
    evaluator: Evaluator,
    module: DiffusionModule,
    *,
    steps: int | None = None,
    sampler: Callable[..., Tensor] | None = None,
    seed: int = 0,
    batch_size: int = 500,  # examples per sampler call, bounds memory
) -> dict[str, float]:
    """Score `module` with EMA weights; sampling is seeded, so two calls give the same numbers."""
    generator = torch.Generator().manual_seed(seed)
    device = module.device

    def sample_fn(n: int, cond: Cond | None) -> Tensor:
        return torch.cat(
            [
                module.sample(
                    sl.stop - sl.start,
                    _part(cond, sl, device),
                    steps=steps,
                    sampler=sampler,
                    generator=generator,
                ).cpu()
                for sl in _slices(n, batch_size)
            ]
        )

    def inpaint_fn(known: Tensor, mask: Tensor, cond: Cond | None) -> Tensor:
        return torch.cat(
            [
                module.sample(
                    sl.stop - sl.start,
                    _part(cond, sl, device),
                    steps=steps,
                    sampler=sampler,
                    generator=generator,
                    known=known[sl].to(device),
                    mask=mask[sl].to(device),
                ).cpu()
                for sl in _slices(known.shape[0], batch_size)
            ]
        )

    was_training = module.training
    module.eval()
    try:
        return evaluator.run(sample_fn, inpaint_fn)
    finally:
        module.train(was_training)


def showcase(
    module: DiffusionModule, out_dir: str, *, n: int = 100, steps: int | None = None, seed: int = 0, name: str = "final"
) -> None:
    """Decode n seeded EMA samples and save them through the modality (grid PNG / WAV / table) under out_dir."""
    generator = torch.Generator().manual_seed(seed)
    cond = module.modality.example_cond(n, device=module.device)
    samples = module.sample(n, cond, steps=steps, generator=generator)
    module.modality.log_samples(module.modality.decode(samples), None, step=0, out_dir=f"{out_dir}/{name}")
