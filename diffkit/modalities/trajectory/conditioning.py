"""Start and goal as net inputs: every training window shows the net its first state and goal (Diffuser's
conditioning), and the loss skips those entries, which replacement overwrites at sampling anyway.

    conditioning = [EndpointInputs(goal_dims=2), GivenEntries(replace)]

References:
    Janner et al. 2022 (Diffuser: apply_conditioning on the first and last state); Saharia et al. 2022 (Palette:
    known entries as net inputs).
"""

from __future__ import annotations

from dataclasses import replace as copy_with

from torch import Generator, Tensor

from diffkit.modalities.base import TrainingExample
from diffkit.modalities.conditioning import KnownInputs
from diffkit.modalities.trajectory.adapter import endpoint_mask


class EndpointMasks:
    """(x0 [B,D,H], generator) -> the endpoint mask [B,D,H] (first state, goal dimensions of the last state)."""

    def __init__(self, goal_dims: int = 2) -> None:
        self.goal_dims = goal_dims

    def __call__(self, x0: Tensor, generator: Generator | None = None) -> Tensor:
        return endpoint_mask(tuple(x0.shape[1:]), self.goal_dims).to(x0).expand_as(x0)


class EndpointInputs(KnownInputs):
    """KnownInputs with the endpoint mask on every window; the loss weight is 0 on the given entries."""

    def __init__(self, goal_dims: int = 2, known_key: str = "known", mask_key: str = "mask") -> None:
        super().__init__(EndpointMasks(goal_dims), known_key=known_key, mask_key=mask_key)

    def train(self, example: TrainingExample, generator: Generator) -> TrainingExample:
        example = super().train(example, generator)
        free = 1 - example.cond[self.mask_key]
        return copy_with(example, weight=free if example.weight is None else example.weight * free)
