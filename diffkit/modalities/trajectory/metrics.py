"""Closed-loop PointMaze evaluation of a planner, scored only through the inpainting function (base.Evaluator).

References:
    Janner et al. 2022 (Diffuser maze2d evaluation); Fu et al. 2020 (D4RL normalized score);
    diffusion_policy env_runner.run(policy) -> dict (evaluation decoupled from training).
"""

from __future__ import annotations

import numpy as np
import torch

from diffkit.modalities.base import Headline, InpaintFn, SampleFn
from diffkit.modalities.trajectory.adapter import TrajectoryModality
from diffkit.modalities.trajectory.rollout import (
    controller_policy,
    episode_pairs,
    plan_policy,
    random_policy,
    run_episodes,
    scores,
)


class PlanningEvaluator:
    """Success and D4RL-normalized score of inpainted plans tracked by the PD controller, beside the random policy
    and the data's controller measured on the same seeded start/goal pairs."""

    def __init__(
        self,
        modality: TrajectoryModality,  # a modality like the model's (its normalizer comes from the same file)
        n_episodes: int = 100,  # held-out episodes (seeded start/goal cell pairs)
        seed: int = 1000,  # seed of the pairs; the data's stream uses seed 0
        replan_every: int | None = None,  # None = one open-loop plan at t = 0 (Diffuser)
        episode_steps: int | None = None,  # None = D4RL's length for the layout (300 / 600 / 800)
    ) -> None:
        self.modality, self.n_episodes, self.seed = modality, int(n_episodes), int(seed)
        self.replan_every, self.episode_steps = replan_every, episode_steps
        self._references: tuple[dict, dict] | None = None

    def headlines(self) -> tuple[Headline, ...]:
        note = f"{self.n_episodes} seeded episodes"
        base = (("random", "random_success"), ("controller", "controller_success"))
        return (
            Headline("maze success", "success", base, lower_is_better=False, note=note),
            Headline("normalized score", "score", (("random", "random_score"), ("controller", "controller_score")),
                     lower_is_better=False, note="100 = the data's controller, 0 = random, same pairs"),
        )  # fmt: skip

    def references(self) -> tuple[dict, dict]:
        """(random, controller) results on this evaluator's pairs, measured once."""
        if self._references is None:
            layout, pairs = self.modality.layout, episode_pairs(self.modality.layout, self.n_episodes, self.seed)
            self._references = (
                run_episodes(layout, pairs, random_policy(self.seed), self.episode_steps),
                run_episodes(layout, pairs, controller_policy(layout), self.episode_steps),
            )
        return self._references

    def run(self, sample_fn: SampleFn, inpaint_fn: InpaintFn | None = None) -> dict[str, float]:
        if inpaint_fn is None:
            raise ValueError("PlanningEvaluator plans by inpainting: it needs inpaint_fn")
        modality, layout = self.modality, self.modality.layout
        errors: list[float] = []

        def planner(starts: np.ndarray, goals: np.ndarray) -> np.ndarray:
            request = modality.plan_request(torch.as_tensor(starts), torch.as_tensor(goals[:, : modality.goal_dims]))
            plans = modality.decode(inpaint_fn(request.known, request.mask, None))
            errors.append(float((plans[:, 0] - torch.as_tensor(starts, dtype=torch.float32)).abs().max()))
            return plans.numpy().astype(np.float64)

        random, expert = self.references()
        pairs = episode_pairs(layout, self.n_episodes, self.seed)
        result = run_episodes(layout, pairs, plan_policy(planner, self.replan_every), self.episode_steps)
        out = scores(result, random, expert, layout)
        out.update({f"random_{k}": v for k, v in scores(random, random, expert, layout).items() if "_" not in k})
        out.update({f"controller_{k}": v for k, v in scores(expert, random, expert, layout).items() if "_" not in k})
        out["plan_start_error"] = max(errors)  # raw units; 0 up to float32 rounding when the start is held
        return out
