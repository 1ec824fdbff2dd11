"""warmup_cosine: warm-up, cosine decay to final_factor, clear errors for impossible settings."""

import math

import pytest
import torch

from diffkit.training.lr import warmup_cosine


def _rates(scheduler: torch.optim.lr_scheduler.LambdaLR, steps: int) -> list[float]:
    optimizer, rates = scheduler.optimizer, []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_warmup_then_cosine_to_final_factor() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    rates = _rates(warmup_cosine(optimizer, warmup_steps=10, total_steps=110, final_factor=0.1), 130)
    assert rates[0] == pytest.approx(0.02)
    assert rates[5] == pytest.approx(2.0 * (0.01 + 0.99 * 0.5))
    assert max(rates) == pytest.approx(2.0) and rates[10] == pytest.approx(2.0)
    assert rates[60] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # monotone after warm-up
    assert rates[110] == pytest.approx(0.2) and rates[-1] == pytest.approx(0.2)  # held at the floor past the end


@pytest.mark.parametrize("kwargs", [{"warmup_steps": 10, "total_steps": 10}, {"warmup_steps": -1, "total_steps": 5},
                                    {"warmup_steps": 0, "total_steps": 5, "final_factor": 1.5}])  # fmt: skip
def test_bad_settings_raise(kwargs: dict) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="warmup_cosine"):
        warmup_cosine(optimizer, **kwargs)
