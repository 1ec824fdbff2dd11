"""Which entries of a window [B,C,T] are given (mask 1): the past (forecasting) or random points (imputation).

References:
    Tashiro et al. 2021 (CSDI): random-point and historical masks for training a conditional score model.
"""

from __future__ import annotations

import torch
from torch import Generator, Tensor


def forecast_mask(shape: tuple[int, ...], context: int) -> Tensor:
    """1 on the first `context` steps of every series, 0 on the horizon after them; [*shape] float."""
    mask = torch.zeros(shape)
    mask[..., :context] = 1
    return mask


def point_mask(shape: tuple[int, ...], missing: float, generator: Generator | None = None) -> Tensor:
    """Each entry hidden independently with probability `missing` (imputation of random points); 1 = given."""
    return (torch.rand(shape, generator=generator) >= missing).float()


class TimeSeriesMasks:
    """Training masks for KnownInputs: a forecast mask with probability `forecast`, else random points hidden with
    a rate drawn uniformly from [0, missing] per window (CSDI's random strategy)."""

    def __init__(
        self,
        context: int,  # steps given in a forecast mask
        forecast: float = 1.0,  # share of forecast masks; 0 = imputation only
        missing: float = 1.0,  # largest missing rate of a random-point mask
    ) -> None:
        self.context, self.forecast, self.missing = int(context), float(forecast), float(missing)

    def __call__(self, x0: Tensor, generator: Generator | None = None) -> Tensor:
        batch = x0.shape[0]
        rate = torch.rand(batch, generator=generator, device=x0.device) * self.missing
        shape = (batch, *x0.shape[1:])
        points = (torch.rand(shape, generator=generator, device=x0.device) >= rate.view(-1, 1, 1)).to(x0.dtype)
        past = forecast_mask(shape, self.context).to(x0)
        pick = (torch.rand(batch, generator=generator, device=x0.device) < self.forecast).view(-1, 1, 1)
        return torch.where(pick, past, points)
