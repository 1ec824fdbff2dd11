"""DiT token backbone: shapes, causality (no information from the future), rotary positions see order."""

from __future__ import annotations

import pytest
import torch

from diffkit.nets.dit import DiT


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_causal_net_ignores_the_future_and_bidirectional_does_not(positions: str) -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 16, (2, 10))
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % 16  # change the future
    causal = DiT(16, 10, dim=32, depth=2, heads=4, causal=True, positions=positions).eval()
    assert causal(x).shape == (2, 10, 16)
    torch.testing.assert_close(causal(x)[:, :6], causal(y)[:, :6])
    full = DiT(16, 10, dim=32, depth=2, heads=4, positions=positions).eval()
    assert not torch.allclose(full(x)[:, :6], full(y)[:, :6])


def test_rotary_net_distinguishes_order_and_time_conditioning_uses_sigma() -> None:
    torch.manual_seed(0)
    net = DiT(16, 8, dim=32, depth=1, heads=2).eval()
    x = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    assert not torch.allclose(net(x)[0, 0], net(x.flip(1))[0, -1])  # same token, mirrored context
    timed = DiT(16, 8, dim=32, depth=1, heads=2, time_conditioning=True).eval()
    for block in timed.blocks:  # adaLN-Zero starts at zero; perturb it so σ matters
        torch.nn.init.normal_(block.ada.weight, std=0.5)
    assert not torch.allclose(timed(x, torch.tensor([0.1])), timed(x, torch.tensor([3.0])))
    with pytest.raises(ValueError, match="seq_len"):
        net(torch.zeros(1, 9, dtype=torch.long))
