"""Few-step samplers on a trained checkpoint: distance to the exact PF-ODE solution, FD, and parity with the peers.

    PYTHONPATH=. python benchmarks/sampler_convergence.py CKPT [CKPT ...] [--fd 1439] [--out results/x.json]

For each checkpoint, every deterministic sampler (as conf/sampler/ configures it) runs at NFE 5 to 50 on the
checkpoint's own σ grid (or --schedule) from the same initial noises; its distance (RMSE per element) to a 512-step
Heun solution (1,023 NFE; --reference-steps) of the same probability-flow ODE is noise-free and cheap (a 128-step
reference is itself ~1e-3 off, 5-10% of the NFE-50 distances). `--fd N` also scores each point with the
checkpoint's evaluator (N samples). The parity block drives diffkit's UniPC / DPM++ 2M and
diffusers' UniPCMultistepScheduler / DPMSolverMultistepScheduler (through the VP ε-adapter of benchmarks/samplers.py),
k-diffusion's DPM++ 2M / LMS, all on diffusers' Karras grid over its linear-β clock; prints ours over theirs.
Needs the `bench` extra.

References:
    Zhao et al. 2023 (UniPC); Lu et al. 2022 (DPM-Solver++); Karras et al. 2022 (Heun reference, Karras grid).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from functools import partial
from pathlib import Path

import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from samplers import VPAdapter  # noqa: E402  (the diffusers ε-adapter of the GMM benchmark)

import diffkit  # noqa: E402
from diffkit.config import instantiate_option, load_config  # noqa: E402
from diffkit.core import samplers as dk  # noqa: E402
from diffkit.training.evaluation import evaluate  # noqa: E402

SAMPLERS = ["euler", "heun", "dpmpp_2m", "dpmpp_2s", "dpmpp_3m", "unipc", "unipc_3", "lms", "ddim"]
BUDGETS = (5, 6, 8, 10, 12, 20, 50)


def rmse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).pow(2).mean().sqrt())


def median_rmse(a: torch.Tensor, b: torch.Tensor) -> float:
    """Median over examples of each one's RMSE: one trajectory that flips to another mode cannot dominate it."""
    return float((a.double() - b.double()).pow(2).flatten(1).mean(1).sqrt().median())


def steps_for(sampler, schedule, budget: int) -> tuple[int, int]:
    """Largest grid size whose network evaluations fit the budget, and that count."""
    best = (0, 0)
    for steps in range(1, budget + 1):
        nfe = dk.count_nfe(sampler, schedule(steps))
        if nfe <= budget:
            best = (steps, nfe)
    return best


def convergence(module, train_cfg, names: list[str], noise: torch.Tensor, fd: int | None, ref_steps: int) -> dict:
    """{sampler: {budget: {steps, nfe, rmse[, fd]}}} on the checkpoint's own grid, plus the reference's σ range."""
    den, schedule = module.ema.module, module.schedule
    sigma_max = float(schedule(2)[0])
    x = noise * sigma_max
    t0 = time.perf_counter()
    reference = dk.sample_heun(den, x, schedule(ref_steps))
    out: dict = {"reference": {"sampler": "heun", "steps": ref_steps, "seconds": time.perf_counter() - t0}}
    out["reference"]["rmse_of_128_steps"] = rmse(dk.sample_heun(den, x, schedule(128)), reference)  # its own error
    evaluator = instantiate_option(train_cfg, "evaluator", train_cfg.evaluator) if fd else None
    if evaluator is not None:
        evaluator.n_samples = fd
    for name in names:
        sampler = instantiate_option(train_cfg, "sampler", OmegaConf.load(ROOT / "conf" / "sampler" / f"{name}.yaml"))
        row = {}
        for budget in BUDGETS:
            steps, nfe = steps_for(sampler, schedule, budget)
            if steps == 0:
                continue
            result = sampler(den, x.clone(), schedule(steps), generator=torch.Generator().manual_seed(0))
            row[budget] = {"steps": steps, "nfe": nfe, "rmse": rmse(result, reference),
                           "median_rmse": median_rmse(result, reference)}  # fmt: skip
            if evaluator is not None:
                scores = evaluate(evaluator, module, steps=steps, sampler=sampler, inpaint=False)
                row[budget]["fd"] = scores[next(iter(scores))]
        out[name] = row
        print(f"  {name:10s}" + "".join(f"  NFE {b:>2}: {v['rmse']:.4f} ({v['median_rmse']:.4f})"
                                        + (f" FD {v['fd']:.2f}" if "fd" in v else "")
                                        for b, v in row.items()), flush=True)  # fmt: skip
    return out


def diffusers_solution(
    cls, den, z: torch.Tensor, steps: int, solver_sigma: bool = False, **config
) -> tuple[torch.Tensor, torch.Tensor]:
    """(result, σ grid) of a diffusers multistep scheduler on its Karras grid, driven through the ε-adapter."""
    sched = cls(use_karras_sigmas=True, **config)
    sched.set_timesteps(steps)
    model, sample = VPAdapter(den, sched.alphas_cumprod), z * sched.init_noise_sigma
    for i, t in enumerate(sched.timesteps):
        # diffusers rounds the Karras grid's timesteps to integers, so its net sees σ(round(t)), not the σ its
        # update assumes (up to 4% off at 50 steps, 1% at 10); solver_sigma=True feeds the net the update's σ instead.
        sigma = float(sched.sigmas[i]) if solver_sigma else None
        sample = sched.step(model(sched.scale_model_input(sample, t), t, sigma=sigma), t, sample).prev_sample
    return sample, sched.sigmas.double()


def parity(den, noise: torch.Tensor, ref_steps: int) -> dict:
    """Reference distance of diffkit vs diffusers / k-diffusion on the same grid and noise; ratio ours / theirs."""
    import diffusers
    import k_diffusion.sampling as kd

    _, grid = diffusers_solution(diffusers.UniPCMultistepScheduler, den, noise, 10)
    sigma_max, sigma_min = float(grid[0]), float(grid[-2])
    reference = dk.sample_heun(den, noise * sigma_max, diffkit.karras_sigmas(ref_steps, sigma_min, sigma_max))
    pairs = {
        "unipc_2": (partial(dk.sample_unipc, order=2), (diffusers.UniPCMultistepScheduler, {"solver_order": 2})),
        "unipc_3": (partial(dk.sample_unipc, order=3), (diffusers.UniPCMultistepScheduler, {"solver_order": 3})),
        "dpmpp_2m": (dk.sample_dpmpp_2m, (diffusers.DPMSolverMultistepScheduler, {})),
        "unipc_2/diffusers at the solver's σ": (
            partial(dk.sample_unipc, order=2),
            (diffusers.UniPCMultistepScheduler, {"solver_order": 2, "solver_sigma": True}),
        ),
        "dpmpp_2m/diffusers at the solver's σ": (
            dk.sample_dpmpp_2m,
            (diffusers.DPMSolverMultistepScheduler, {"solver_sigma": True}),
        ),
        "dpmpp_2m/k-diffusion": (dk.sample_dpmpp_2m, kd.sample_dpmpp_2m),
        "lms/k-diffusion": (dk.sample_lms, kd.sample_lms),
    }
    out: dict = {}
    for name, (ours, theirs) in pairs.items():
        out[name] = {}
        for steps in BUDGETS:
            if isinstance(theirs, tuple):
                result, grid = diffusers_solution(theirs[0], den, noise, steps, **theirs[1])
            else:
                grid = torch.cat([kd.get_sigmas_karras(steps, sigma_min, sigma_max, rho=7.0)[:-1].double(),
                                  torch.zeros(1, dtype=torch.float64)])  # fmt: skip
                result = theirs(den, noise * sigma_max, grid.float(), disable=True)
            mine = ours(den, noise * float(grid[0]), grid.float())
            a, b = rmse(mine, reference), rmse(result, reference)
            out[name][steps] = {"diffkit": a, "peer": b, "ratio": a / b}
        print(f"  {name:38s}" + "".join(f"  {s:>2}: {v['diffkit']:.4f}/{v['peer']:.4f} ({v['ratio']:.3f})"
                                        for s, v in out[name].items()), flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpts", nargs="+")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--n", type=int, default=64, help="initial noises for the reference distance")
    parser.add_argument("--fd", type=int, default=None, help="also score FD with this many samples per point")
    parser.add_argument("--schedule", default=None, help="option of conf/schedule/ (default: the checkpoint's)")
    parser.add_argument("--reference-steps", type=int, default=512, help="Heun steps of the reference solution")
    parser.add_argument("--no-parity", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sampler_convergence.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # several single-threaded jobs share a small CPU better than one oversubscribed
    start, payload = time.perf_counter(), {"cpu": platform.processor() or platform.machine(), "checkpoints": {}}
    for path in args.ckpts:
        module, train_cfg = diffkit.load(path), load_config(path)
        if args.schedule:
            node = OmegaConf.load(ROOT / "conf" / "schedule" / f"{args.schedule}.yaml")
            module.schedule = instantiate_option(train_cfg, "schedule", node)
        shape = (args.n, *module.modality.example_shape())
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        print(f"{path}: reference distance per NFE: RMSE (median over examples of their RMSE)", flush=True)
        names = args.samplers.split(",")
        entry = {"convergence": convergence(module, train_cfg, names, noise, args.fd, args.reference_steps)}
        if not args.no_parity:
            print("  parity (diffkit / peer reference distance, ratio), diffusers' Karras grid:", flush=True)
            entry["parity"] = parity(module.ema.module, noise, args.reference_steps)
        payload["checkpoints"][path] = entry
    payload["wall_s"] = time.perf_counter() - start
    Path(args.out).write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.out} ({payload['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
