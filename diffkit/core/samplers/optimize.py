"""Step-size optimisation for a given denoiser: pick the σ grid that makes a few-step sampler track the exact ODE.

    x = process.prior((1024, *shape), generator=g)                       # noise at σ_max, [B,*S]
    sigmas = optimize_sigmas(model, x, 10, sampler=sample_unipc, sigma_max=80.0)
    torch.save(sigmas, "sigmas_unipc_10.pt")    # then: interpolated_sigmas(n, knots=sigmas.tolist())

The objective is the mean per-example distance between the n-step solution and a fine-grid reference solution
started from the same noise (an upper bound on the W1 distance between their output distributions). The search
is gradient-free coordinate descent over log σ, so any sampler and any denoiser (even non-differentiable) work.
The grid is fitted to the denoiser it is run with; report results obtained with it as "optimized for this denoiser".

References:
    Sabour et al. 2024, "Align Your Steps" (per-model step schedules, iterative refinement of single points);
    Xue et al. 2024, "Accelerating Diffusion Sampling with Optimized Time Steps" (steps chosen to minimise the
    discrepancy to the exact solution).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from diffkit.core.types import Cond, Denoiser


def _grid(log_sigmas: list[float], like: Tensor) -> Tensor:
    return torch.tensor([math.exp(v) for v in log_sigmas] + [0.0], dtype=torch.float64, device=like.device)


def _default_init(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    if steps == 1:
        return [math.log(sigma_max)]
    ramp = [j / (steps - 1) for j in range(steps)]
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [math.log((hi + r * (lo - hi)) ** rho) for r in ramp]


@torch.no_grad()
def optimize_sigmas(
    denoiser: Denoiser,
    x: Tensor,
    steps: int,
    *,
    sampler: Callable[..., Tensor],
    sigma_max: float,  # the noise level of x (the prior's σ_max)
    sigma_min: float = 0.002,  # lower bound for the last non-zero level
    init: Tensor | None = None,  # starting grid (steps + 1 values ending in 0); default Karras ρ = 7
    reference: Tensor | None = None,  # the exact solution from x; default: reference_sampler on 512 Karras steps
    reference_sampler: Callable[..., Tensor] | None = None,  # default: `sampler` (pass a high-order one for Euler)
    sweeps: int = 5,  # coordinate-descent passes over all free levels (the trial move halves each pass)
    cond: Cond | None = None,
) -> Tensor:
    """σ grid [steps + 1] (σ_max first, 0 last) minimising E‖sampler(x) - x_ref‖ for this denoiser.

    Coordinate descent on log σ_1..σ_{n-1} (σ_0 = σ_max is fixed by the prior), in the spirit of AYS / Xue et al.
    """
    if reference is None:
        ref_grid = _grid(_default_init(512, sigma_min, sigma_max), x).to(x.dtype)
        generator = torch.Generator(device=x.device).manual_seed(0)
        reference = (reference_sampler or sampler)(denoiser, x, ref_grid, cond=cond, generator=generator)

    def solve(grid: Tensor) -> Tensor:
        return sampler(
            denoiser, x, grid.to(x.dtype), cond=cond, generator=torch.Generator(device=x.device).manual_seed(0)
        )

    return optimize_grid(solve, reference, steps, sigma_max=sigma_max, sigma_min=sigma_min, init=init, sweeps=sweeps)


@torch.no_grad()
def optimize_grid(
    solve: Callable[[Tensor], Tensor],  # σ grid [steps + 1] -> the solution from fixed noise (and fixed seeds)
    reference: Tensor,  # the exact solution from the same noise, [B,*S]
    steps: int,
    *,
    sigma_max: float,
    sigma_min: float = 0.002,
    init: Tensor | None = None,
    sweeps: int = 5,
) -> Tensor:
    """The search of optimize_sigmas over any solver of a grid (e.g. a model's whole sampling path with guidance)."""
    if steps < 1 or sweeps < 0:
        raise ValueError(f"optimize_sigmas: need steps >= 1 and sweeps >= 0, got steps={steps}, sweeps={sweeps}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"optimize_sigmas: need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    if init is None:
        logs = _default_init(steps, sigma_min, sigma_max)
    else:
        if init.shape != (steps + 1,) or float(init[-1]) != 0.0:
            raise ValueError(f"optimize_sigmas: init must have steps + 1 = {steps + 1} values ending in 0")
        logs = [math.log(v) for v in init[:-1].tolist()]
    logs[0] = math.log(sigma_max)
    ref = reference.reshape(reference.shape[0], -1).double()

    def loss(candidate: list[float]) -> float:
        out = solve(_grid(candidate, reference).float())
        return float((out.reshape(ref.shape[0], -1).double() - ref).norm(dim=1).mean())

    best = loss(logs)
    move = 0.25
    for _ in range(sweeps):
        for j in range(1, steps):
            lo = logs[j + 1] if j + 1 < steps else math.log(sigma_min)
            hi = logs[j - 1]
            span = hi - lo
            frac = (logs[j] - lo) / span
            for trial in (frac - move, frac + move):
                trial = min(max(trial, 0.01), 0.99)
                candidate = logs[:j] + [lo + trial * span] + logs[j + 1 :]
                value = loss(candidate)
                if value < best:
                    best, logs = value, candidate
        move /= 2
    return _grid(logs, reference).float()


def interpolated_sigmas(n: int, knots: list[float]) -> Tensor:
    """Resample a tabulated grid (knots: decreasing σ values, optionally ending in 0) to n steps, linear in log σ.

    With n equal to the number of non-zero knots the knots are returned unchanged (AYS, Sec. 3.3).
    """
    values = [float(v) for v in knots if float(v) > 0]
    if n < 1 or len(values) < 2 or any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError("interpolated_sigmas: need n >= 1 and at least 2 strictly decreasing positive knots")
    logs = torch.tensor([math.log(v) for v in values], dtype=torch.float64)
    pos = torch.linspace(0, len(values) - 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
    left = pos.floor().long().clamp(max=len(values) - 2)
    w = pos - left
    out = (logs[left] * (1 - w) + logs[left + 1] * w).exp()
    return torch.cat([out, out.new_zeros(1)]).float()


def fitted_sigmas(n: int, path: str) -> Tensor:
    """A grid written by `python -m diffkit.fit_grid` (JSON with "sigmas"): exact at its own step count, else
    resampled linearly in log σ (interpolated_sigmas)."""
    import json

    try:
        sigmas = [float(v) for v in json.loads(Path(path).read_text())["sigmas"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"fitted grid {path}: not a diffkit.fit_grid file with a 'sigmas' list ({err})") from None
    if len(sigmas) < 2 or sigmas[-1] != 0 or any(b >= a for a, b in zip(sigmas, sigmas[1:])):
        raise ValueError(f"fitted grid {path}: 'sigmas' must decrease strictly and end in 0, got {sigmas}")
    if n == len(sigmas) - 1:
        return torch.tensor(sigmas, dtype=torch.float32)
    return interpolated_sigmas(n, knots=sigmas)
