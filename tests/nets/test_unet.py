"""The N-d UNet: shapes for 1-d and 2-d inputs, zero init, learning, conditioning, clear shape errors."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from helpers import fit_fixed_batch

from diffkit.nets.encoders import KnownChannels, LabelEmbedding
from diffkit.nets.unet import UNet

LABELS = {"label": partial(LabelEmbedding, num_classes=10)}  # the class-conditional encoder slot


def _perturb(net: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 3, 16), dict(dims=1, channel_mult=(1, 2, 2), attn_levels=(1,))),
        ((2, 1, 8, 8), dict(dims=2, channel_mult=(1, 2), attn_levels=(1,))),
        ((2, 3, 16, 16), dict(dims=2, channel_mult=(1, 2, 2), attn_levels=(2,))),
    ],
)
def test_output_shape_and_zero_init(shape, kwargs) -> None:
    net = UNet(shape[1], out_channels=5, channels=16, num_res_blocks=1, **kwargs)
    out = net(torch.randn(shape), torch.randn(shape[0]))
    assert out.shape == (shape[0], 5, *shape[2:])
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised head


def test_learns_a_fixed_batch() -> None:
    torch.manual_seed(0)
    net = UNet(1, channels=16, channel_mult=(1, 2), num_res_blocks=1)
    x, c, target = torch.randn(8, 1, 8, 8), torch.randn(8), torch.randn(8, 1, 8, 8)
    losses = fit_fixed_batch(net, x, c, target, steps=30)
    assert losses[-1] < 0.7 * losses[0]
    assert not torch.equal(net(x, c), torch.zeros_like(x))


def test_conditioning_on_noise_and_labels() -> None:
    torch.manual_seed(0)
    net = UNet(1, channels=16, channel_mult=(1, 2), num_res_blocks=1, embeddings=LABELS)
    assert net.cond_keys == {"label"}
    _perturb(net)
    x, c = torch.randn(4, 1, 8, 8), torch.zeros(4)
    labels = torch.tensor([0, 1, 2, 3])
    base = net(x, c, {"label": labels})
    assert not torch.allclose(base, net(x, c + 1.0, {"label": labels}))  # c_noise matters
    assert not torch.allclose(base, net(x, c, {"label": labels + 1}))  # labels matter
    null = net(x, c, None)
    torch.testing.assert_close(net(x, c, {"label": torch.full((4,), -1)}), null)  # -1 = no label
    torch.testing.assert_close(net(x, c, {}), null)


def test_unconditional_net_ignores_cond() -> None:
    net = UNet(1, channels=16, channel_mult=(1, 2), num_res_blocks=1)
    _perturb(net)
    x, c = torch.randn(2, 1, 8, 8), torch.zeros(2)
    torch.testing.assert_close(net(x, c, {"label": torch.tensor([1, 2])}), net(x, c))


def test_clear_errors_for_bad_shapes() -> None:
    net = UNet(1, channels=16, channel_mult=(1, 2, 2), num_res_blocks=1)
    with pytest.raises(ValueError, match=r"\[B, 1, \*, \*\].*\(2, 8, 8\)"):
        net(torch.randn(2, 8, 8), torch.zeros(2))
    with pytest.raises(ValueError, match="got \\(2, 3, 8, 8\\)"):
        net(torch.randn(2, 3, 8, 8), torch.zeros(2))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(2, 1, 6, 6), torch.zeros(2))
    with pytest.raises(ValueError, match="dims"):
        UNet(1, dims=3)


def test_parameter_count_of_the_digits_config() -> None:
    net = UNet(1, channels=32, channel_mult=(1, 2), num_res_blocks=2, attn_levels=(1,), embeddings=LABELS)
    n = sum(p.numel() for p in net.parameters())
    assert 0.5e6 < n < 2e6


def test_known_channels_read_the_known_pixels_and_default_to_nothing_known() -> None:
    """KnownChannels: the net sees [x, known·mask, mask]; no mask = zeros; pixels under mask 0 do not matter."""
    torch.manual_seed(0)
    net = UNet(1, channels=16, channel_mult=(1, 2), num_res_blocks=1, inputs=KnownChannels)
    assert net.cond_keys == {"known", "mask"}
    _perturb(net)
    x, c = torch.randn(2, 1, 8, 8), torch.zeros(2)
    known, mask = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) < 0.5).float()
    out = net(x, c, {"known": known, "mask": mask})
    assert not torch.allclose(out, net(x, c))  # the known pixels change the output
    torch.testing.assert_close(net(x, c), net(x, c, {"known": known, "mask": torch.zeros_like(mask)}))
    hidden_changed = torch.where(mask.bool(), known, known + 5.0)  # only the entries under mask 0 differ
    torch.testing.assert_close(net(x, c, {"known": hidden_changed, "mask": mask}), out)
    assert net.stem.in_channels == 3
    with pytest.raises(ValueError, match="no 'known'"):
        net(x, c, {"mask": mask})
