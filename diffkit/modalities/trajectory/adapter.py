"""The trajectory modality: state windows <-> model space [B,D,H], a per-dimension normalizer kept in the checkpoint,
start/goal requests (planning as inpainting) and plots of plans over the maze.

    modality = TrajectoryModality("umaze", horizon=128, normalizer_file="data/pointmaze/out/umaze.normalizer.json")
    request = modality.request(4, start=[-1, 1, 0, 0], goal=[-1, -1])   # known entries + mask (1 = given)
    plans = modality.decode(module.sample(4, known=request.known, mask=request.mask))   # [4,H,D] states

References:
    Janner et al. 2022 (Diffuser: a LimitsNormalizer to [-1, 1]; the first state and the goal given by replacement).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace as copy_with
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from diffkit.core.guidance import cost_guidance
from diffkit.core.types import Cond, CondSpec
from diffkit.modalities.base import DataError, Request
from diffkit.modalities.trajectory.guidance import disk_intrusion
from diffkit.modalities.trajectory.maze import Maze


def write_normalizer(states: np.ndarray, path: str | os.PathLike) -> dict[str, list[float]]:
    """Per-dimension limits of train states [N,D] as JSON {"low", "high"} (Diffuser's LimitsNormalizer)."""
    from diffkit.io import write_json

    stats = {"low": states.min(axis=0).astype(float).tolist(), "high": states.max(axis=0).astype(float).tolist()}
    write_json(stats, path)
    return stats


class TrajectoryModality(nn.Module):
    """State windows [B,D,H] (D = x, y, vx, vy as channels, H steps) in [-1, 1] per dimension.

    The limits are buffers (they travel in the checkpoint's state_dict); before training they come from the
    normalizer file the data module writes from the train split.
    """

    bin_width = None  # continuous states

    def __init__(
        self,
        layout: str = "umaze",  # PointMaze layout: umaze, medium, large
        horizon: int = 128,  # plan length in steps (Diffuser: 128 / 256 / 384)
        state_dim: int = 4,  # (x, y, vx, vy)
        goal_dims: int = 2,  # leading state dimensions a goal gives (x, y; its velocity is left free)
        normalizer_file: str | None = None,  # {"low", "high"} from the train split; read when the buffers are unset
        sigma_data: float = 0.5,  # std of the states in model space (EDM's σ_data)
    ) -> None:
        super().__init__()
        self.layout, self.horizon, self.state_dim, self.goal_dims = layout, int(horizon), int(state_dim), goal_dims
        self.normalizer_file, self.sigma_data = normalizer_file, float(sigma_data)
        self.register_buffer("low", -torch.ones(self.state_dim))
        self.register_buffer("high", torch.ones(self.state_dim))
        self.register_buffer("fitted", torch.zeros(()))
        self._maze: Maze | None = None

    @property
    def maze(self) -> Maze:
        if self._maze is None:
            self._maze = Maze.of(self.layout)
        return self._maze

    def example_shape(self) -> tuple[int, ...]:
        return (self.state_dim, self.horizon)

    def cond_specs(self) -> tuple[CondSpec, ...]:
        return ()  # start and goal are given entries (known + mask), not net conditions

    # -- normalizer -----------------------------------------------------------------------------------------
    def fit(self, low: Sequence[float], high: Sequence[float]) -> None:
        """Set the per-dimension limits (model space = 2·(s - low)/(high - low) - 1)."""
        low_t, high_t = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        if low_t.shape != (self.state_dim,) or high_t.shape != (self.state_dim,) or not bool((high_t > low_t).all()):
            raise DataError(f"normalizer limits must be {self.state_dim} values with high > low, got {low}, {high}")
        self.low.copy_(low_t)
        self.high.copy_(high_t)
        self.fitted.fill_(1.0)

    def _limits(self) -> tuple[Tensor, Tensor]:
        if not bool(self.fitted):
            path = Path(self.normalizer_file) if self.normalizer_file else None
            if path is None or not path.is_file():
                raise DataError(f"no normalizer: {path} is missing; prepare the data first (data/pointmaze/prepare.py)")
            stats = json.loads(path.read_text())
            self.fit(stats["low"], stats["high"])
        return self.low, self.high

    def normalize(self, states: Tensor) -> Tensor:
        """Raw states [...,D] -> [-1, 1] per dimension."""
        low, high = self._limits()
        return 2 * (states - low.to(states)) / (high - low).to(states) - 1

    def unnormalize(self, x: Tensor) -> Tensor:
        """[-1, 1] [...,D] -> raw states [...,D]."""
        low, high = self._limits()
        return (x + 1) / 2 * (high - low).to(x) + low.to(x)

    # -- batches and samples --------------------------------------------------------------------------------
    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]:
        """{"states": [B,H,D] raw} -> x0 [B,D,H] in model space."""
        states = batch.get("states") if isinstance(batch, Mapping) else None
        expected = (self.horizon, self.state_dim)
        if not isinstance(states, Tensor) or tuple(states.shape[1:]) != expected:
            shape = tuple(getattr(states, "shape", ()))
            raise DataError(f"trajectory batch 'states' has shape {shape}; expected [B, {expected[0]}, {expected[1]}]")
        return self.normalize(states.float()).transpose(1, 2), {}

    def decode(self, x0: Tensor, cond: Cond | None = None) -> Tensor:
        """Model space [B,D,H] -> raw states [B,H,D]."""
        return self.unnormalize(x0.detach().float().transpose(1, 2))

    def plan_request(self, start: Tensor, goal: Tensor) -> Request:
        """Raw starts [n,D] and goals [n,goal_dims] -> known entries and mask [n,D,H] (state 0, goal at H-1)."""
        start, goal = torch.as_tensor(start, dtype=torch.float32), torch.as_tensor(goal, dtype=torch.float32)
        n = start.shape[0]
        if start.shape != (n, self.state_dim) or goal.shape != (n, self.goal_dims):
            raise DataError(f"start must be [n, {self.state_dim}] and goal [n, {self.goal_dims}], "
                            f"got {tuple(start.shape)} and {tuple(goal.shape)}")  # fmt: skip
        raw = torch.zeros(n, self.horizon, self.state_dim)
        raw[:, 0], raw[:, -1, : self.goal_dims] = start, goal
        mask = endpoint_mask(self.example_shape(), self.goal_dims).expand(n, -1, -1)
        known = self.normalize(raw).transpose(1, 2) * mask
        return Request(known=known, mask=mask.clone())

    def request(self, n: int, start: Sequence[float] | None = None, goal: Sequence[float] | None = None,
                seed: int = 0, avoid: Sequence[float] | None = None, avoid_scale: float = 50.0) -> Request:  # fmt: skip
        """`+request.start=[x,y,vx,vy] +request.goal=[x,y]`: n plans between them; by default n seeded pairs of
        distinct free cells (their centres, at rest). `+request.avoid=[x,y,r]`: steer the plans out of that disk
        (cost guidance on how deep they enter it, weight avoid_scale)."""
        if (start is None) != (goal is None):
            raise DataError("give both request.start and request.goal, or neither")
        if start is not None:
            request = self.plan_request(torch.tensor([list(start)] * n), torch.tensor([list(goal)] * n))
        else:
            cells, rng = self.maze.free_cells, np.random.default_rng(seed)
            pairs = np.stack([rng.choice(len(cells), 2, replace=False) for _ in range(n)])
            starts = self.maze.cell_xy(cells[pairs[:, 0]])
            starts = np.concatenate([starts, np.zeros((n, self.state_dim - 2))], axis=1)
            goals = self.maze.cell_xy(cells[pairs[:, 1]])[:, : self.goal_dims]
            request = self.plan_request(torch.tensor(starts), torch.tensor(goals))
        if avoid is None:
            return request
        if len(avoid) != 3 or float(avoid[2]) <= 0:
            raise DataError(f"request.avoid must be [x, y, radius > 0], got {list(avoid)}")
        cost = disk_intrusion(self.unnormalize, avoid[:2], float(avoid[2]))
        return copy_with(request, guide=partial(cost_guidance, cost=cost, scale=float(avoid_scale)))

    def log_samples(self, samples: Tensor, logger: Any, step: int, out_dir: str | None = None) -> None:
        """Plans [B,H,D] drawn over the maze: a PNG in out_dir, and an image to the logger (wandb) if it takes them."""
        from diffkit.modalities.trajectory.plots import plot_paths

        plans = [p[:, :2].numpy() for p in samples.cpu()]
        if out_dir is not None:
            plot_paths(self.maze, plans, path=os.path.join(out_dir, f"samples_step{step:06d}.png"))
        if logger is not None and hasattr(logger, "log_image"):  # wandb
            logger.log_image(key="samples/plans", images=[plot_paths(self.maze, plans)], step=step)


def endpoint_mask(example_shape: Sequence[int], goal_dims: int = 2) -> Tensor:
    """[1,D,H] mask: every dimension of the first state, the first goal_dims of the last (Diffuser's conditioning)."""
    mask = torch.zeros(1, *example_shape)
    mask[:, :, 0] = 1.0
    mask[:, :goal_dims, -1] = 1.0
    return mask
