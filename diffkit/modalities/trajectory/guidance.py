"""Costs that steer a plan while it is sampled (core.guidance.cost_guidance), in the maze's own coordinates.

    request = modality.request(8, start=[-1, 1, 0, 0], goal=[-1, -1], avoid=[0.5, 0.0, 0.6])
    plans = module.sample(8, known=request.known, mask=request.mask, guide=request.guide)

References:
    Janner et al. 2022 (Diffuser: plans steered by the gradient of a value or cost during sampling);
    Chung et al. 2023 / Bansal et al. 2023 (the gradient of a cost of the denoised estimate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def disk_intrusion(
    unnormalize: Callable[[Tensor], Tensor], centre: Sequence[float], radius: float
) -> Callable[[Tensor], Tensor]:
    """cost(x0 [B,D,H] model space) -> [B]: Σ_t max(0, radius - |xy_t - centre|)², how deep a plan enters the disk."""
    c = torch.as_tensor(centre, dtype=torch.float32)

    def cost(x0: Tensor) -> Tensor:
        xy = unnormalize(x0.transpose(1, 2))[..., :2]  # [B,H,2] maze coordinates
        depth = (radius - (xy - c.to(xy)).norm(dim=-1)).clamp(min=0)
        return depth.square().sum(-1)

    return cost


def goal_distance(unnormalize: Callable[[Tensor], Tensor], goals: Tensor) -> Callable[[Tensor], Tensor]:
    """cost(x0 [B,D,H] model space) -> [B]: the mean over the plan of |xy_t - goal_b|² (arrive sooner, then stay)."""
    goals = torch.as_tensor(goals, dtype=torch.float32)

    def cost(x0: Tensor) -> Tensor:
        xy = unnormalize(x0.transpose(1, 2))[..., :2]  # [B,H,2]
        return (xy - goals.to(xy)[:, None]).square().sum(-1).mean(-1)

    return cost
