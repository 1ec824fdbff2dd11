"""Closed-loop PointMaze episodes: seeded start/goal pairs, batched policies (random, the data's controller, a
diffusion planner tracked by a PD controller) and D4RL-normalized scores with measured references.

    pairs = episode_pairs("umaze", n=100, seed=1000)
    random = run_episodes("umaze", pairs, random_policy(0))
    expert = run_episodes("umaze", pairs, controller_policy("umaze"))
    planned = run_episodes("umaze", pairs, plan_policy(diffusion_planner(module, steps=20)))
    scores(planned, random, expert)   # success, normalized score ± s.e.

References:
    Janner et al. 2022 (Diffuser maze2d: one open-loop plan, PD tracking a = (wp_xy - s_xy) + (wp_v - s_v));
    Fu et al. 2020 (D4RL: reward 1 within 0.5 of the goal, never done; normalized = (R - R_rand)/(R_expert - R_rand)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from diffkit.modalities.trajectory.maze import (
    EPISODE_STEPS,
    GOAL_RADIUS,
    SUCCESS_RADIUS,
    Maze,
    WaypointController,
    make_env,
)

D4RL_REFERENCES = {"umaze": (23.85, 161.86), "medium": (13.13, 277.39), "large": (6.7, 273.99)}  # random, expert
Policy = Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # (states [n,4], goals [n,2], t) -> actions [n,2]
Planner = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (starts [n,4], goals [n,2]) -> plans [n,H,4]


@dataclass(frozen=True)
class Pairs:
    """Seeded episodes: start and goal cells [n,2] and the env reset seed of each (its position noise)."""

    start_cells: np.ndarray
    goal_cells: np.ndarray
    seeds: np.ndarray


def episode_pairs(layout: str, n: int, seed: int) -> Pairs:
    """n episodes between distinct free cells drawn from `seed` (keep it apart from the data's seed)."""
    cells, rng = Maze.of(layout).free_cells, np.random.default_rng(seed)
    idx = np.stack([rng.choice(len(cells), 2, replace=False) for _ in range(n)])
    return Pairs(cells[idx[:, 0]], cells[idx[:, 1]], rng.integers(0, 2**31 - 1, n))


def run_episodes(layout: str, pairs: Pairs, policy_factory: Callable[[], Policy], steps: int | None = None,
                 envs: list[Any] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Step every episode in lockstep for `steps` (D4RL's length by default); per episode: return (steps within
    GOAL_RADIUS after each step), success (ever within the env's SUCCESS_RADIUS) and the xy path [n,T+1,2]."""
    steps = EPISODE_STEPS[layout] if steps is None else steps
    n = len(pairs.seeds)
    own = envs is None
    envs = envs or [make_env(layout, steps) for _ in range(n)]
    states, goals = np.zeros((n, 4)), np.zeros((n, 2))
    for i, env in enumerate(envs[:n]):
        options = {"reset_cell": pairs.start_cells[i], "goal_cell": pairs.goal_cells[i]}
        obs, _ = env.reset(seed=int(pairs.seeds[i]), options=options)
        states[i], goals[i] = obs["observation"], obs["desired_goal"]
    policy = policy_factory()
    paths, returns, success = [states[:, :2].copy()], np.zeros(n), np.zeros(n, bool)
    for t in range(steps):
        actions = np.clip(policy(states, goals, t), -1.0, 1.0)
        for i, env in enumerate(envs[:n]):
            obs, *_ = env.step(actions[i].astype(np.float32))
            states[i] = obs["observation"]
        dist = np.linalg.norm(states[:, :2] - goals, axis=1)
        returns += dist <= GOAL_RADIUS
        success |= dist <= SUCCESS_RADIUS
        paths.append(states[:, :2].copy())
    if own:
        for env in envs:
            env.close()
    return {"returns": returns, "success": success.astype(float), "paths": np.stack(paths, 1), "goals": goals}


def random_policy(seed: int) -> Callable[[], Policy]:
    """D4RL's R_random: uniform actions in [-1, 1]^2."""

    def make() -> Policy:
        rng = np.random.default_rng(seed)
        return lambda states, goals, t: rng.uniform(-1.0, 1.0, (len(states), 2))

    return make


def controller_policy(layout: str) -> Callable[[], Policy]:
    """D4RL's R_expert: the data-generating waypoint controller (without action noise)."""

    def make() -> Policy:
        maze, controllers = Maze.of(layout), []

        def act(states: np.ndarray, goals: np.ndarray, t: int) -> np.ndarray:
            if t == 0:
                controllers.clear()
                for s, g in zip(states, goals):
                    controllers.append(WaypointController(maze))
                    controllers[-1].set_goal(s[:2], g)
            return np.stack([c(s) for c, s in zip(controllers, states)])

        return act

    return make


def plan_policy(planner: Planner, replan_every: int | None = None, kp: float = 1.0, kv: float = 1.0,
                plans_out: list | None = None) -> Callable[[], Policy]:  # fmt: skip
    """Plan from the current state to the goal (at t = 0, and every replan_every steps if set) and track it:
    a = kp·(wp_xy - s_xy) + kv·(wp_v - s_v) with wp the plan's next state, past its end the last xy at rest."""

    def make() -> Policy:
        held: dict[str, Any] = {}

        def act(states: np.ndarray, goals: np.ndarray, t: int) -> np.ndarray:
            if t == 0 or (replan_every and t % replan_every == 0):
                held["plans"], held["t0"] = planner(states.copy(), goals.copy()), t
                if plans_out is not None:
                    plans_out.append(held["plans"])
            plans, k = held["plans"], t - held["t0"] + 1
            wp = plans[:, min(k, plans.shape[1] - 1)].copy()
            if k >= plans.shape[1]:
                wp[:, 2:4] = 0.0
            return kp * (wp[:, :2] - states[:, :2]) + kv * (wp[:, 2:4] - states[:, 2:4])

        return act

    return make


def path_policy(planner: Planner, replan_every: int | None = None, plans_out: list | None = None,
                reach: float = 0.5) -> Callable[[], Policy]:  # fmt: skip
    """Plan as in plan_policy, but follow the plan's xy as a path at the data controller's pace: its states are the
    waypoints of WaypointController (dropped once within `reach`), so the plan's timing does not set the speed.
    reach 0.5: the PD law's steady speed 10·0.5 matches the env's top speed (5.2), the pace of the data."""

    def make() -> Policy:
        controllers: list[WaypointController] = []

        def act(states: np.ndarray, goals: np.ndarray, t: int) -> np.ndarray:
            if t == 0 or (replan_every and t % replan_every == 0):
                plans = planner(states.copy(), goals.copy())
                if plans_out is not None:
                    plans_out.append(plans)
                controllers[:] = [WaypointController(None, reach=reach) for _ in plans]
                for controller, plan in zip(controllers, plans):
                    controller.waypoints = list(plan[1:, :2])
            return np.stack([c(s) for c, s in zip(controllers, states)])

        return act

    return make


def diffusion_planner(module: Any, *, steps: int | None = None, sampler: Any = None, seed: int = 0,
                      guide: Callable[[np.ndarray, np.ndarray], Any] | None = None) -> Planner:  # fmt: skip
    """Plans from a trained DiffusionModule: start and goal given exactly (its conditioning holds them), EMA weights.
    guide(starts, goals) -> a denoiser wrapper for module.sample (e.g. cost guidance), or None."""
    generator = torch.Generator().manual_seed(seed)

    def plan(starts: np.ndarray, goals: np.ndarray) -> np.ndarray:
        modality = module.modality
        request = modality.plan_request(torch.as_tensor(starts), torch.as_tensor(goals[:, : modality.goal_dims]))
        x = module.sample(len(starts), known=request.known, mask=request.mask, steps=steps, sampler=sampler,
                          generator=generator, guide=None if guide is None else guide(starts, goals))  # fmt: skip
        return modality.decode(x).cpu().numpy().astype(np.float64)

    return plan


def mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the mean."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def scores(result: dict[str, np.ndarray], random: dict[str, np.ndarray], expert: dict[str, np.ndarray],
           layout: str) -> dict[str, float]:  # fmt: skip
    """Success rate and D4RL-normalized score (×100, per episode, mean ± s.e.) with the references measured on
    the same pairs, and with D4RL's published references beside them."""
    r_low, r_high = float(random["returns"].mean()), float(expert["returns"].mean())
    if r_high <= r_low:  # e.g. episodes too short for the controller to arrive: no scale to normalize by
        raise ValueError(f"controller return {r_high} is not above the random policy's {r_low} on these pairs")
    d_low, d_high = D4RL_REFERENCES[layout]
    out = {"episodes": float(len(result["returns"])), "ref_random_return": r_low, "ref_controller_return": r_high}
    out["success"], out["success_se"] = mean_se(result["success"])
    out["return"], out["return_se"] = mean_se(result["returns"])
    out["score"], out["score_se"] = mean_se(100 * (result["returns"] - r_low) / (r_high - r_low))
    out["score_d4rl_refs"], out["score_d4rl_refs_se"] = mean_se(100 * (result["returns"] - d_low) / (d_high - d_low))
    return out
