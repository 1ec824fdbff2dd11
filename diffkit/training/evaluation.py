"""Run a modality's Evaluator on a DiffusionModule through seeded, batched sampling functions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from diffkit.core.samplers.likelihood import bits_per_dim, dequantize, pf_ode_log_likelihood
from diffkit.core.types import Cond
from diffkit.modalities.base import Evaluator, Hold
from diffkit.training.distributed import gather_cat, rank_and_world
from diffkit.training.module import DiffusionModule
from diffkit.training.progress import track_slices


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
    schedule: Callable[[int], Tensor] | None = None,  # σ grid; None = the module's
    seed: int = 0,
    batch_size: int = 500,  # examples per sampler call, bounds memory
    inpaint: bool = True,  # also score sampling with given entries (the evaluator's inpaint_fn)
    hold: Hold | None = None,  # how given entries are held; None = the model's conditioning
    guidance_scale: float | None = None,  # None = the model's
    guidance_interval: tuple[float, float] | None = None,  # σ in (lo, hi] where guidance acts; None = the model's
) -> dict[str, float]:
    """Score `module` with EMA weights; sampling is seeded, so two calls give the same numbers."""
    generator = torch.Generator().manual_seed(seed)
    device = module.device
    options = {"steps": steps, "sampler": sampler, "schedule": schedule, "generator": generator,
               "guidance_scale": guidance_scale, "guidance_interval": guidance_interval}  # fmt: skip

    def sample_fn(n: int, cond: Cond | None) -> Tensor:
        return torch.cat(
            [
                module.sample(sl.stop - sl.start, _part(cond, sl, device), **options).cpu()
                for sl in track_slices(_slices(n, batch_size), "evaluation: sampling")
            ]
        )

    def inpaint_fn(known: Tensor, mask: Tensor, cond: Cond | None) -> Tensor:
        return torch.cat(
            [
                module.sample(
                    sl.stop - sl.start,
                    _part(cond, sl, device),
                    known=known[sl].to(device),
                    mask=mask[sl].to(device),
                    hold=hold,
                    **options,
                ).cpu()  # fmt: skip
                for sl in track_slices(_slices(known.shape[0], batch_size), "evaluation: completion")
            ]
        )

    was_training = module.training
    module.eval()
    try:
        return evaluator.run(sample_fn, inpaint_fn if inpaint else None)
    finally:
        module.train(was_training)


def showcase(
    module: DiffusionModule, out_dir: str, *, n: int = 100, steps: int | None = None, seed: int = 0, name: str = "final"
) -> None:
    """Decode n seeded EMA samples of the modality's showcase request and save them through it under out_dir."""
    generator = torch.Generator().manual_seed(seed)
    request = module.modality.request(n)
    samples = module.sample(n, request.cond, known=request.known, mask=request.mask, steps=steps, generator=generator)
    module.modality.log_samples(
        module.modality.decode(samples, request.cond), None, step=module.global_step, out_dir=f"{out_dir}/{name}"
    )


def evaluate_likelihood(
    module: DiffusionModule,
    batches: Iterable[Mapping[str, Any]],
    *,
    bin_width: float | None,  # grid spacing of discrete data (uniform dequantisation); None for continuous data
    steps: int = 32,  # RK4 steps of the probability-flow ODE
    seed: int = 0,
    max_examples: int | None = None,  # cap on examples over all ranks (None = every batch)
) -> dict[str, float]:
    """Bits/dim (and NLL in nats) of the EMA model on `batches` (the full, unsharded iterable; every rank
    iterates it and takes every world-th batch under DDP).

    With bin_width the result bounds -log2 P(x) / d of the discrete data: E_u[log p(x + u)] + d·log(bin_width),
    u ~ U(-w/2, w/2) per entry. Per-example values are gathered over ranks (one collective), so no rank waits.
    """
    rank, world = rank_and_world()
    generator = torch.Generator().manual_seed(seed + rank)
    was_training = module.training
    module.eval()
    nats: list[Tensor] = []
    seen, dim = 0, None
    try:
        for k, batch in enumerate(batches):
            if max_examples is not None and seen >= max_examples:
                break
            x0, cond = module.modality.encode(batch)
            take = x0.shape[0] if max_examples is None else min(x0.shape[0], max_examples - seen)
            seen += take
            if k % world != rank:
                continue
            x0, cond = x0[:take], {key: v[:take] for key, v in cond.items()}
            x0 = x0.to(module.device)
            dim = x0[0].numel()
            cond = {key: v.to(module.device) for key, v in cond.items()} or None
            x = dequantize(x0, bin_width, generator) if bin_width else x0
            nats.append(pf_ode_log_likelihood(module.ema.module, x, sigma_min=module.process.sigma_min,
                                              sigma_max=module.process.sigma_max, steps=steps, cond=cond,
                                              generator=generator).cpu())  # fmt: skip
    finally:
        module.train(was_training)
    local = torch.cat(nats) if nats else torch.zeros(0, dtype=torch.float64)
    all_nats = gather_cat(local)
    dim = dim or int(torch.tensor(module.modality.example_shape()).prod())
    bpd = bits_per_dim(all_nats, dim, bin_width)
    return {"bpd": float(bpd.mean()), "nll_nats": float(-all_nats.mean()), "n_examples": int(all_nats.numel()),
            "bin_width": bin_width or 0.0, "ode_steps": steps}  # fmt: skip
