"""EMA of weights: the update rule, its warm-up, buffers, and the frozen eval-mode copy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from diffkit.training.ema import EMA


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))


def test_update_is_the_exponential_average_with_warmup() -> None:
    net = _net()
    ema = EMA(net, decay=0.5, warmup=True)
    start = [p.detach().clone() for p in ema.module.parameters()]
    decays = []
    for step in range(30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * (step + 1))
        decays.append(ema.current_decay())
        ema.update(net)
    # d_n = min(0.5, (1 + n) / (10 + n)): 0.1, 2/11, ..., capped at 0.5 from n = 8 on.
    assert decays[0] == pytest.approx(0.1) and decays[1] == pytest.approx(2 / 11) and decays[8:] == [0.5] * 22
    expected = start
    net_params = list(net.parameters())
    shifts = torch.cumsum(0.1 * torch.arange(1, 31, dtype=torch.float64), 0)
    for i, (e, p) in enumerate(zip(expected, net_params)):
        value = e.double()
        base = p.detach().double() - shifts[-1]  # the initial net weights
        for n, d in enumerate(decays):
            value = d * value + (1 - d) * (base + shifts[n])
        assert torch.allclose(list(ema.module.parameters())[i].double(), value, atol=1e-5)
    assert int(ema.num_updates) == 30


def test_buffers_are_copied_and_the_copy_stays_frozen_in_eval_mode() -> None:
    net = _net()
    ema = EMA(net, decay=0.99)
    net.train()
    net(torch.randn(8, 3))  # moves the BatchNorm running statistics
    ema.update(net)
    assert torch.equal(ema.module[2].running_mean, net[2].running_mean)
    ema.train()
    assert not ema.module.training and all(not p.requires_grad for p in ema.module.parameters())
    x = torch.randn(5, 3)
    assert torch.equal(ema(x), ema(x))  # dropout off in the EMA copy


def test_invalid_decay_is_rejected() -> None:
    with pytest.raises(ValueError, match="decay"):
        EMA(_net(), decay=1.0)
