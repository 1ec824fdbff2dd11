"""Closed-loop PointMaze scores of a trained planner beside the random policy and the data's controller, measured on
the same seeded start/goal pairs; optionally an NFE sweep and a picture of planned vs executed paths.

    python benchmarks/trajectory_eval.py outputs/.../checkpoints/last.ckpt --episodes 100
    python benchmarks/trajectory_eval.py CKPT --episodes 100 --sweep dpmpp_2m:5,10,20,64 \
        --json benchmarks/results/trajectory_umaze.json --png docs/results/trajectory_umaze_paths.png
    python benchmarks/trajectory_eval.py CKPT --episodes 100 --avoid 0,1.2,0.35 --guide-scale 50   # guided vs not
    python benchmarks/trajectory_eval.py CKPT --episodes 100 --hurry --guide-scale 5                # arrive sooner

Pairs come from --seed (1000 by default; the data stream uses seed 0). Scores: success = ever within the env's
0.45 radius; return = steps within D4RL's 0.5 of the goal; normalized = 100·(R - R_random)/(R_controller -
R_random) with both references measured here, and beside it the same with D4RL's published references.
--avoid / --hurry add a cost-guided planner at the same sampler and NFE (diffkit.core.guidance.cost_guidance):
the share of executed steps inside the disk, and the first step within D4RL's 0.5 of the goal, for both planners.

References:
    Janner et al. 2022 (Diffuser maze2d protocol); Fu et al. 2020 (D4RL normalized scores).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from throughput import cpu_name

from diffkit.config import load
from diffkit.core.guidance import cost_guidance
from diffkit.core.samplers import nfe_per_grid, sample_dpmpp_2m, sample_euler, sample_heun
from diffkit.modalities.trajectory.guidance import disk_intrusion, goal_distance
from diffkit.modalities.trajectory.maze import GOAL_RADIUS
from diffkit.modalities.trajectory.plots import plot_paths
from diffkit.modalities.trajectory.rollout import (
    controller_policy,
    diffusion_planner,
    episode_pairs,
    path_policy,
    plan_policy,
    random_policy,
    run_episodes,
    scores,
)

SAMPLERS = {"heun": sample_heun, "euler": sample_euler, "dpmpp_2m": sample_dpmpp_2m}


def guide_factory(module, avoid: list[float] | None, hurry: bool, scale: float):
    """(starts, goals) -> cost guidance for the planner: out of a disk, or towards the goal all along the plan."""

    def make(starts: np.ndarray, goals: np.ndarray):
        if avoid is not None:
            cost = disk_intrusion(module.modality.unnormalize, avoid[:2], avoid[2])
        else:
            cost = goal_distance(module.modality.unnormalize, torch.as_tensor(goals[:, :2]))
        return lambda denoiser: cost_guidance(denoiser, cost, scale=scale)

    return make if (avoid is not None or hurry) else None


def guided_targets(result: dict, avoid: list[float] | None) -> dict[str, float]:
    """Per episode, mean ± s.e.: the share of steps inside the avoided disk, whether it entered the disk at all; the
    first step within 0.5 of the goal."""
    paths, goals = result["paths"], result["goals"]
    out = {}
    near = np.linalg.norm(paths - goals[:, None], axis=-1) <= GOAL_RADIUS
    first = np.where(near.any(1), near.argmax(1), paths.shape[1])  # never arrived: the episode length
    out["first_arrival"], out["first_arrival_se"] = float(first.mean()), float(first.std(ddof=1) / np.sqrt(len(first)))
    if avoid is not None:
        inside = np.linalg.norm(paths - np.asarray(avoid[:2]), axis=-1) < avoid[2]
        for key, per_episode in (("in_disk", inside.mean(1)), ("entered_disk", inside.any(1).astype(float))):
            out[key], out[f"{key}_se"] = (
                float(per_episode.mean()),
                float(per_episode.std(ddof=1) / np.sqrt(len(inside))),
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1000, help="seed of the start/goal pairs")
    parser.add_argument("--steps", type=int, default=None, help="sampler grid size (default: the model's)")
    parser.add_argument("--sampler", default=None, choices=sorted(SAMPLERS), help="default: the model's")
    parser.add_argument("--replan-every", type=int, default=None, help="plan again every k steps")
    parser.add_argument(
        "--tracking",
        default="time",
        choices=["time", "path"],
        help="time: Diffuser's PD on the plan's next state; path: the plan's states as waypoints",
    )
    parser.add_argument(
        "--plan-horizon",
        type=int,
        default=None,
        help="plan length at sampling (the conv net takes any multiple of 4); default: trained H",
    )
    parser.add_argument("--kp", type=float, default=1.0, help="PD position gain (Diffuser: 1)")
    parser.add_argument("--kv", type=float, default=1.0, help="PD velocity gain (Diffuser: 1)")
    parser.add_argument("--sweep", default=None, help="e.g. dpmpp_2m:5,10,20,64 (grid sizes of one sampler)")
    parser.add_argument("--avoid", default=None, help="x,y,r: also plan with cost guidance out of this disk")
    parser.add_argument("--hurry", action="store_true", help="also plan with cost guidance towards the goal")
    parser.add_argument("--guide-scale", type=float, default=50.0, help="cost guidance weight")
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default=None, help="planned vs executed paths of the first 16 episodes")
    args = parser.parse_args()
    tempfile.tempdir = tempfile.mkdtemp(prefix="pointmaze_")  # gymnasium-robotics writes maze XML there
    torch.manual_seed(0)
    module = load(args.ckpt)
    layout = module.modality.layout
    trained_horizon = module.modality.horizon
    if args.plan_horizon:
        module.modality.horizon = args.plan_horizon
    pairs = episode_pairs(layout, args.episodes, args.seed)
    started = time.monotonic()
    random = run_episodes(layout, pairs, random_policy(args.seed))
    expert = run_episodes(layout, pairs, controller_policy(layout))
    rows = {"random": scores(random, random, expert, layout), "controller": scores(expert, random, expert, layout)}

    def straight(starts: np.ndarray, goals: np.ndarray) -> np.ndarray:  # a one-state "plan": the goal at rest
        return np.concatenate([goals, np.zeros_like(goals)], axis=1)[:, None]

    naive = run_episodes(layout, pairs, plan_policy(straight, None, args.kp, args.kv))
    rows["straight_to_goal"] = scores(naive, random, expert, layout)  # the same PD law, no plan: what planning adds

    avoid = [float(v) for v in args.avoid.split(",")] if args.avoid else None
    guide = guide_factory(module, avoid, args.hurry, args.guide_scale)

    def diffusion(sampler_name: str | None, steps: int | None, guided: bool = False) -> tuple[dict, dict, list]:
        sampler = SAMPLERS[sampler_name] if sampler_name else None
        plans: list = []
        planner = diffusion_planner(module, steps=steps, sampler=sampler, seed=args.seed,
                                    guide=guide if guided else None)  # fmt: skip
        t0 = time.monotonic()
        if args.tracking == "path":
            policy = path_policy(planner, args.replan_every, plans)
        else:
            policy = plan_policy(planner, args.replan_every, args.kp, args.kv, plans)
        result = run_episodes(layout, pairs, policy)
        row = scores(result, random, expert, layout)
        grid = steps or module.sample_steps
        name = sampler_name or getattr(module.sampler, "func", module.sampler).__name__.removeprefix("sample_")
        row.update({"sampler": name, "grid": grid, "nfe": nfe_per_grid(f"sample_{name}", module.schedule(grid)),
                    "seconds": time.monotonic() - t0, "plans": len(plans)})  # fmt: skip
        return row, result, plans

    main_row, result, plans = diffusion(args.sampler, args.steps)
    rows["diffusion"] = main_row
    if guide is not None:  # the same pairs, sampler, NFE and noise seed; only the guidance differs
        main_row.update(guided_targets(result, avoid))
        guided_row, guided_result, _ = diffusion(args.sampler, args.steps, guided=True)
        guided_row.update({**guided_targets(guided_result, avoid), "guide_scale": args.guide_scale,
                           "guide": f"avoid {avoid}" if avoid else "hurry"})  # fmt: skip
        rows["diffusion_guided"] = guided_row
    sweep = []
    if args.sweep:
        name, grids = args.sweep.split(":")
        for grid in (int(g) for g in grids.split(",")):
            row, *_ = diffusion(name, grid)
            sweep.append(row)
            print(f"  {name} grid {grid} (NFE {row['nfe']}): success {row['success']:.2f} score {row['score']:.1f}")
    out = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "checkpoint": str(args.ckpt),
        "global_step": int(torch.load(args.ckpt, map_location="cpu", weights_only=True, mmap=True)["global_step"]),
        "layout": layout,
        "episodes": args.episodes,
        "pairs_seed": args.seed,
        "replan_every": args.replan_every,
        "tracking": args.tracking,
        "horizon": {"trained": trained_horizon, "planned": module.modality.horizon},
        "pd_gains": [args.kp, args.kv],
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "seconds": time.monotonic() - started,
        "rows": rows,
        "nfe_sweep": sweep,
    }
    for label, row in rows.items():
        success = f"{row['success']:.3f} ± {row['success_se']:.3f}"
        score = f"{row['score']:.1f} ± {row['score_se']:.1f}"
        extra = "".join(
            f"  {k} {row[k]:.3f} ± {row[k + '_se']:.3f}"
            for k in ("in_disk", "entered_disk", "first_arrival")
            if k in row
        )
        print(
            f"{label:10s} success {success}  return {row['return']:.1f}  score {score}  "
            f"(D4RL refs: {row['score_d4rl_refs']:.1f}){extra}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    if args.png:
        k = min(16, args.episodes)
        first = plans[0]
        titles = [f"{'reached' if result['success'][i] else 'missed'}, R={result['returns'][i]:.0f}" for i in range(k)]
        plot_paths(module.modality.maze, [first[i, :, :2] for i in range(k)],
                   [result["paths"][i] for i in range(k)], path=args.png, cols=4, titles=titles)  # fmt: skip
    np.set_printoptions(precision=3)


if __name__ == "__main__":
    main()
