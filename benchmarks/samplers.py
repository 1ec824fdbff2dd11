"""Sampler benchmark: quality per NFE on a 2-D Gaussian mixture with its exact denoiser, and per-step overhead.

    PYTHONPATH=. python benchmarks/samplers.py                 # full run, writes benchmarks/results/samplers.json
    PYTHONPATH=. python benchmarks/samplers.py --quick         # 1 seed, 4k samples, no grid optimisation

Every sampler (diffkit, k-diffusion, diffusers) integrates the same problem: data = the 3x3 grid mixture of
tests/core/gmm.py (9 components, std 0.15), denoised exactly in closed form, started from the same N(0, I) noise
per seed. Quality = sliced W1 (64 directions) between 20k samples and 20k fresh true samples; the noise floor is
the same distance between two independent true draws. NFE is counted by wrapping the denoiser; a sampler gets
the largest step count whose NFE fits the budget. Needs the `bench` extra (k-diffusion, diffusers).

References:
    Karras et al. 2022 (EDM); Lu et al. 2022 (DPM-Solver++); Zhao et al. 2023 (UniPC); Sabour et al. 2024 (AYS).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "core")]

from gmm import grid_mixture, sliced_w1  # noqa: E402  (the exact mixture denoiser shared with the tests)

from diffkit.core import samplers as dk  # noqa: E402
from diffkit.core.schedules import ddpm_sigmas, exponential_sigmas, karras_sigmas  # noqa: E402

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0
BUDGETS = (5, 10, 20, 50)


def _import_peers():
    """k_diffusion.sampling and diffusers (the `bench` extra)."""
    import diffusers
    import k_diffusion.sampling as kd

    return kd, diffusers


class Counter:
    """Wraps a denoiser and counts its calls."""

    def __init__(self, fn: Callable) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, x, sigma, cond=None):
        self.calls += 1
        return self.fn(x, sigma)


# ----------------------------------------------------------------------------------------------------------
# Runners: run(denoiser, z [N, D], steps) -> samples [N, D]; z ~ N(0, I) is the shared initial noise.


def diffkit_runner(sampler: Callable, grid: Callable[[int], torch.Tensor]) -> Callable:
    def run(denoiser, z, steps):
        sigmas = grid(steps).double()
        return sampler(denoiser, z * float(sigmas[0]), sigmas, generator=torch.Generator().manual_seed(0))

    return run


def kdiff_runner(kd_sampler: Callable, grid: Callable[[int], torch.Tensor], **kw) -> Callable:
    def run(denoiser, z, steps):
        sigmas = grid(steps).double()
        with torch.no_grad():
            return kd_sampler(denoiser, z * float(sigmas[0]), sigmas, disable=True, **kw)

    return run


class VPAdapter:
    """Exact denoiser -> diffusers ε-model on the 1000-step linear-β DDPM clock.

    σ(t) = sqrt((1 - ᾱ_t) / ᾱ_t), log σ interpolated linearly between integer t (the inverse of diffusers'
    _sigma_to_t); the model input is x_vp = x / sqrt(1 + σ²) and the output ε = (x - D(x, σ)) / σ.
    """

    def __init__(self, denoiser: Callable, alphas_cumprod: torch.Tensor) -> None:
        abar = alphas_cumprod.double().numpy()
        self.log_sigmas = np.log(np.sqrt((1 - abar) / abar))
        self.denoiser, self.calls = denoiser, 0

    def sigma(self, t: float) -> float:
        return float(np.exp(np.interp(float(t), np.arange(len(self.log_sigmas)), self.log_sigmas)))

    def __call__(self, x_vp: torch.Tensor, t, sigma: float | None = None) -> torch.Tensor:
        """ε at timestep t (at σ = sigma instead of σ(t) when given)."""
        self.calls += 1
        s = self.sigma(t) if sigma is None else sigma
        x = x_vp * math.sqrt(1 + s * s)
        sig = torch.full((x.shape[0],), s, dtype=x.dtype)
        return (x - self.denoiser(x, sig)) / s


def diffusers_runner(cls, **config) -> Callable:
    def run(denoiser, z, steps, adapter_out: list | None = None):
        sched = cls(**config)
        sched.set_timesteps(steps)
        model = VPAdapter(denoiser, sched.alphas_cumprod)
        sample = z * sched.init_noise_sigma
        for t in sched.timesteps:
            eps = model(sched.scale_model_input(sample, t), t)
            sample = sched.step(eps, t, sample).prev_sample
        if adapter_out is not None:
            adapter_out.append(model.calls)
        return sample

    return run


def nfe_of(run: Callable, steps: int) -> int:
    """Denoiser calls of one run (counted on a 1-example problem)."""
    counter = Counter(lambda x, s: 0.5 * x)
    z = torch.zeros(1, 2, dtype=torch.float64)
    if "adapter_out" in run.__code__.co_varnames:  # diffusers runs count inside their ε-adapter
        calls: list[int] = []
        run(counter, z, steps, adapter_out=calls)
        return calls[0]
    run(counter, z, steps)
    return counter.calls


def steps_for(run: Callable, budget: int) -> tuple[int, int]:
    """Largest step count whose NFE fits the budget, and its NFE."""
    best = (0, 0)
    for steps in range(1, budget + 1):
        try:
            nfe = nfe_of(run, steps)
        except UnboundLocalError:  # k-diffusion's dpmpp_3m_sde fails on a 1-step grid
            continue
        if nfe <= budget:
            best = (steps, nfe)
    return best


# ----------------------------------------------------------------------------------------------------------
# The line-up.


def lineup(kd, diffusers) -> dict[str, Callable]:
    karras = partial(karras_sigmas, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)
    expo = partial(exponential_sigmas, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)
    ddpm = partial(ddpm_sigmas, spacing="trailing")  # time-uniform on the 1000-step linear-β clock, σ_max ≈ 157
    ours = {
        "euler": dk.sample_euler,
        "heun": dk.sample_heun,
        "dpmpp_2m": dk.sample_dpmpp_2m,
        "dpmpp_2s": dk.sample_dpmpp_2s,
        "dpmpp_3m": dk.sample_dpmpp_3m,
        "unipc_3": partial(dk.sample_unipc, order=3),
        "unipc_2": partial(dk.sample_unipc, order=2),
        "lms": dk.sample_lms,
    }
    runs: dict[str, Callable] = {}
    for name, fn in ours.items():
        runs[f"diffkit/{name}/karras"] = diffkit_runner(fn, karras)
        runs[f"diffkit/{name}/exponential"] = diffkit_runner(fn, expo)
        runs[f"diffkit/{name}/ddpm_uniform_t"] = diffkit_runner(fn, ddpm)
    theirs = {
        "euler": (kd.sample_euler, {}),
        "heun": (kd.sample_heun, {}),
        "dpm_2": (kd.sample_dpm_2, {}),
        "dpmpp_2m": (kd.sample_dpmpp_2m, {}),
        "dpmpp_2s": (kd.sample_dpmpp_2s_ancestral, {"eta": 0.0}),
        "dpmpp_3m": (kd.sample_dpmpp_3m_sde, {"eta": 0.0}),
        "lms": (kd.sample_lms, {}),
    }
    kd_karras = lambda n: kd.get_sigmas_karras(n, SIGMA_MIN, SIGMA_MAX, rho=7.0)  # noqa: E731
    kd_expo = lambda n: kd.get_sigmas_exponential(n, SIGMA_MIN, SIGMA_MAX)  # noqa: E731
    for name, (fn, kw) in theirs.items():
        runs[f"k-diffusion/{name}/karras"] = kdiff_runner(fn, kd_karras, **kw)
        runs[f"k-diffusion/{name}/exponential"] = kdiff_runner(fn, kd_expo, **kw)
    d = diffusers
    schedulers = {
        "ddim": (partial(d.DDIMScheduler, clip_sample=False), False),  # data spans [-2.45, 2.45], not [-1, 1]
        "dpmpp_2m": (d.DPMSolverMultistepScheduler, True),
        "euler": (d.EulerDiscreteScheduler, True),
        "heun": (d.HeunDiscreteScheduler, True),
        "unipc": (d.UniPCMultistepScheduler, True),
    }
    for name, (cls, karras_ok) in schedulers.items():
        runs[f"diffusers/{name}/default"] = diffusers_runner(cls)
        if karras_ok:
            runs[f"diffusers/{name}/karras"] = diffusers_runner(cls, use_karras_sigmas=True)
    return runs


def optimized_runs(gmm, budgets, fit_noise: torch.Tensor) -> tuple[dict[str, dict[int, Callable]], dict]:
    """diffkit samplers on grids from optimize_sigmas, fitted on separate noise for THIS denoiser."""
    out: dict[str, dict[int, Callable]] = {}
    grids: dict[str, dict[int, list[float]]] = {}
    x_fit = fit_noise * SIGMA_MAX
    reference = dk.sample_dpmpp_3m(gmm, x_fit, karras_sigmas(512, SIGMA_MIN, SIGMA_MAX).double())
    for name, fn in {
        "dpmpp_2m": dk.sample_dpmpp_2m,
        "unipc_2": partial(dk.sample_unipc, order=2),
        "unipc_3": partial(dk.sample_unipc, order=3),
    }.items():
        key = f"diffkit/{name}/optimized"
        out[key], grids[key] = {}, {}
        for budget in budgets:
            t0 = time.perf_counter()
            sigmas = dk.optimize_sigmas(gmm, x_fit, budget, sampler=fn, sigma_max=SIGMA_MAX, sigma_min=SIGMA_MIN,
                                        reference=reference, sweeps=4)  # fmt: skip
            grids[key][budget] = [round(v, 6) for v in sigmas.tolist()]
            print(f"  optimized {key} NFE {budget}: {time.perf_counter() - t0:.1f}s", flush=True)
            out[key][budget] = diffkit_runner(fn, lambda n, s=sigmas: s)
    return out, grids


# ----------------------------------------------------------------------------------------------------------
# Overhead: µs per step with a near-free denoiser (0.9·x) at batch 64.


def overhead(runs: dict[str, Callable], steps: int = 50, repeats: int = 7) -> dict[str, float]:
    free = lambda x, s, c=None: 0.9 * x  # noqa: E731
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    out = {}
    for name, run in runs.items():
        if name.endswith(("/exponential", "/ddpm_uniform_t")) or "/optimized" in name:
            continue
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run(free, z, steps)
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times) / steps * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 4k samples, no grid optimisation")
    parser.add_argument("--overhead-only", action="store_true", help="re-measure overhead into an existing --out")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "samplers.json"))
    args = parser.parse_args()
    if args.overhead_only:
        torch.set_num_threads(1)
        payload = json.loads(Path(args.out).read_text())
        payload["overhead_us_per_step"] = over = overhead(lineup(*_import_peers()))
        Path(args.out).write_text(json.dumps(payload, indent=1))
        for name, us in sorted(over.items()):
            print(f"  {name:42s}{us:8.1f}")
        return
    n, seeds = (4_000, [0]) if args.quick else (20_000, [0, 1, 2])
    torch.set_num_threads(1)
    start = time.perf_counter()
    kd, diffusers = _import_peers()
    gmm = grid_mixture()
    runs = lineup(kd, diffusers)
    fitted: dict[str, dict[int, Callable]] = {}
    grids: dict = {}
    if not args.quick:
        print("optimising grids for this denoiser (fit noise: seed 12345) ...", flush=True)
        fit_noise = torch.randn(1024, 2, generator=torch.Generator().manual_seed(12345), dtype=torch.float64)
        fitted, grids = optimized_runs(gmm, BUDGETS, fit_noise)
    noise = {s: torch.randn(n, 2, generator=torch.Generator().manual_seed(s), dtype=torch.float64) for s in seeds}
    truth = {s: gmm.sample(n, torch.Generator().manual_seed(1000 + s)) for s in seeds}
    floor = [sliced_w1(gmm.sample(n, torch.Generator().manual_seed(2000 + s)), truth[s]) for s in seeds]
    results: dict[str, dict] = {}
    for name, run in [*runs.items(), *((k, None) for k in fitted)]:
        results[name] = {}
        for budget in BUDGETS:
            r = fitted[name][budget] if run is None else run
            steps, nfe = (budget, nfe_of(r, budget)) if run is None else steps_for(r, budget)
            if steps == 0:
                continue
            errs = [sliced_w1(r(gmm, noise[s], steps), truth[s]) for s in seeds]
            results[name][budget] = {"steps": steps, "nfe": nfe, "sw1": statistics.mean(errs), "sw1_seeds": errs}
        print(name, {b: round(v["sw1"], 4) for b, v in results[name].items()}, flush=True)
    print("overhead ...", flush=True)
    over = overhead(runs)
    report(results, over, floor, grids, time.perf_counter() - start, args, n, seeds)


def _best(results: dict, prefix: tuple[str, ...], budget: int, exclude: str = "") -> tuple[str, float]:
    cands = [(v[budget]["sw1"], k) for k, v in results.items()
             if k.startswith(prefix) and budget in v and not (exclude and exclude in k)]  # fmt: skip
    err, name = min(cands)
    return name, err


def report(results, over, floor, grids, wall, args, n, seeds) -> None:
    lines = [f"sliced W1 (mean over seeds {seeds}, {n} samples); noise floor {statistics.mean(floor):.4f}"]
    lines.append(f"{'method':42s}" + "".join(f"{'NFE ' + str(b):>16s}" for b in BUDGETS))
    for name, row in results.items():
        cells = "".join(f"{row[b]['sw1']:>10.4f} ({row[b]['nfe']:>2d})" if b in row else f"{'-':>16s}" for b in BUDGETS)
        lines.append(f"{name:42s}{cells}")
    summary = {}
    lines.append("")
    for b in BUDGETS:
        peer, peer_err = _best(results, ("k-diffusion", "diffusers"), b)
        std, std_err = _best(results, ("diffkit",), b, exclude="/optimized")
        row = {"best_peer": [peer, peer_err], "best_diffkit_standard_grid": [std, std_err]}
        line = f"NFE {b:>2d}: best peer {peer} {peer_err:.4f}; diffkit (standard grids) {std} {std_err:.4f} "
        line += f"(ratio {std_err / peer_err:.2f})"
        if any("/optimized" in k for k in results):
            opt, opt_err = _best(results, ("diffkit/",), b)
            row["best_diffkit_incl_optimized_for_this_denoiser"] = [opt, opt_err]
            line += f"; incl. grids optimized for this denoiser {opt} {opt_err:.4f} (ratio {opt_err / peer_err:.2f})"
        summary[b] = row
        lines.append(line)
    lines.append("")
    lines.append("per-step overhead, µs/step (50 steps, batch 64, denoiser 0.9·x, median of 7):")
    for name, us in sorted(over.items()):
        lines.append(f"  {name:42s}{us:8.1f}")
    lines.append(f"wall time {wall:.0f}s on {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"samples": n, "seeds": seeds, "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "noise_floor": floor,
               "results": results, "summary": summary, "overhead_us_per_step": over, "optimized_grids": grids,
               "wall_s": wall, "quick": args.quick}  # fmt: skip
    out.write_text(json.dumps(payload, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
