"""The patch DiT: shapes, zero init, learning, label and caption conditioning, positions, clear shape errors."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from helpers import fit_fixed_batch

from diffkit.nets.encoders import ContextTokens, KnownChannels, LabelEmbedding
from diffkit.nets.patch_dit import PatchDiT, sincos_positions_2d


def _perturb(net: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("shape, patch", [((2, 4, 7, 7), 1), ((2, 1, 8, 8), 2), ((3, 3, 12, 8), 4)])
def test_output_shape_and_zero_init(shape, patch) -> None:
    net = PatchDiT(shape[1], out_channels=5, patch=patch, dim=32, depth=2, heads=4)
    out = net(torch.randn(shape), torch.randn(shape[0]))
    assert out.shape == (shape[0], 5, *shape[2:])
    assert torch.equal(out, torch.zeros_like(out))  # adaLN-Zero blocks and a zero head: the net starts at 0


def test_unpatchify_puts_every_patch_back_where_it_came_from() -> None:
    """With the blocks and the final modulation silenced, head = patchify⁻¹ makes the net the identity."""
    net = PatchDiT(2, patch=2, dim=8, depth=1, heads=2)
    with torch.no_grad():  # patchify: pixel (c, i, j) of a patch -> channel; head: channel -> the same pixel
        eye = torch.eye(8).reshape(8, 2, 2, 2)  # [dim, C, p, p]: channel k = pixel (c, i, j) in C-major order
        net.patchify.weight.copy_(eye)
        net.patchify.bias.zero_()
        order = eye.permute(0, 2, 3, 1).reshape(8, 8)  # head rows are (i, j, c)-major
        net.head.weight.copy_(order.T)
        net.norm = torch.nn.Identity()
    net.blocks = torch.nn.ModuleList()  # no blocks: tokens = patches + positions
    x = torch.randn(3, 2, 6, 4)
    zero_positions = net(torch.zeros_like(x), torch.zeros(3))  # what the positions alone give back
    torch.testing.assert_close(net(x, torch.zeros(3)) - zero_positions, x)


def test_learns_a_fixed_batch_and_positions_matter() -> None:
    torch.manual_seed(0)
    net = PatchDiT(1, patch=2, dim=32, depth=2, heads=4)
    x, c, target = torch.randn(8, 1, 8, 8), torch.randn(8), torch.randn(8, 1, 8, 8)
    losses = fit_fixed_batch(net, x, c, target, steps=40)
    assert losses[-1] < 0.7 * losses[0]
    flat = torch.ones(1, 1, 8, 8)  # a constant input: only the positions tell the tokens apart
    out = net(flat, torch.zeros(1))
    assert not torch.allclose(out[..., :2, :2], out[..., 4:6, 4:6])


def test_sincos_positions_table() -> None:
    table = sincos_positions_2d(2, 3, 8)
    assert table.shape == (6, 8)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1]))  # row 0, column 0
    torch.testing.assert_close(table[4, 4:], sincos_positions_2d(1, 3, 8)[1, 4:])  # column 1 part, any row
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_positions_2d(2, 2, 6)


def test_label_conditioning_with_a_learned_null() -> None:
    torch.manual_seed(0)
    net = PatchDiT(1, patch=2, dim=32, depth=2, heads=4, embeddings={"label": partial(LabelEmbedding, num_classes=10)})
    assert net.cond_keys == {"label"}
    _perturb(net)
    x, c, labels = torch.randn(4, 1, 8, 8), torch.zeros(4), torch.tensor([0, 1, 2, 3])
    base = net(x, c, {"label": labels})
    assert not torch.allclose(base, net(x, c + 1.0, {"label": labels}))  # c_noise matters
    assert not torch.allclose(base, net(x, c, {"label": labels + 1}))  # labels matter
    torch.testing.assert_close(net(x, c, {"label": torch.full((4,), -1)}), net(x, c, None))


def test_captions_through_cross_attention_in_every_block() -> None:
    torch.manual_seed(0)
    net = PatchDiT(4, patch=1, dim=32, depth=2, heads=4, context=ContextTokens(6))
    assert net.cond_keys == {"context", "context_mask"}
    assert all(block.cross is not None for block in net.blocks)
    _perturb(net)
    x, c = torch.randn(2, 4, 7, 7), torch.zeros(2)
    context, mask = torch.randn(2, 3, 6), torch.tensor([[1.0, 1, 0], [1, 0, 0]])
    out = net(x, c, {"context": context, "context_mask": mask})
    assert not torch.allclose(out, net(x, c))  # the caption changes the prediction
    padded = torch.where(mask[..., None].bool(), context, float("nan"))  # padding rows are never read
    torch.testing.assert_close(net(x, c, {"context": padded, "context_mask": mask}), out)
    dropped = {"context": torch.full_like(context, float("nan")), "context_mask": torch.zeros_like(mask)}
    torch.testing.assert_close(net(x, c, dropped), net(x, c))  # a dropped caption = no caption: the null token


def test_known_channels_input_and_clear_errors() -> None:
    net = PatchDiT(1, patch=2, dim=16, depth=1, heads=2, inputs=KnownChannels)
    assert net.cond_keys == {"known", "mask"} and net.patchify.in_channels == 3
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\].*\(2, 3, 8, 8\)"):
        net(torch.randn(2, 3, 8, 8), torch.zeros(2))
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(2, 1, 7, 8), torch.zeros(2))
