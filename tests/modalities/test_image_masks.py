"""Random training masks for learned inpainting: shapes, the masked fraction, the mask families, determinism."""

from __future__ import annotations

import pytest
import torch

from diffkit.modalities.image.masks import RandomImageMasks


def _draw(p: float, p_half: float = 0.5, n: int = 2000, seed: int = 0) -> torch.Tensor:
    return RandomImageMasks(p=p, p_half=p_half)(torch.zeros(n, 3, 28, 28), torch.Generator().manual_seed(seed))


def test_masks_are_binary_single_channel_and_seeded() -> None:
    masks = _draw(0.5)
    assert masks.shape == (2000, 1, 28, 28) and set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(masks, _draw(0.5)) and not torch.equal(masks, _draw(0.5, seed=1))


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_fraction_of_masked_examples_is_p(p: float) -> None:
    masked = _draw(p).flatten(1).amax(1)  # an all-zero mask = an unmasked example
    assert abs(masked.mean().item() - p) < 0.04


def test_halves_hide_half_and_boxes_a_quarter_to_three_quarters_per_side() -> None:
    hidden = 1 - _draw(1.0, p_half=1.0)[:, 0]
    assert torch.all(hidden.sum((1, 2)) == 28 * 14)  # every half mask hides exactly half the pixels
    sides = {(bool(h[0].all()), bool(h[-1].all()), bool(h[:, 0].all()), bool(h[:, -1].all())) for h in hidden}
    assert len(sides) == 4  # top, bottom, left and right all occur
    boxes = 1 - _draw(1.0, p_half=0.0)[:, 0]
    heights, widths = boxes.amax(2).sum(1), boxes.amax(1).sum(1)
    assert heights.min() >= 7 and heights.max() <= 21 and widths.min() >= 7 and widths.max() <= 21
    assert torch.all(boxes.sum((1, 2)) == heights * widths)  # one solid rectangle each


def test_bad_arguments_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="p and p_half"):
        RandomImageMasks(p=1.5)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        RandomImageMasks()(torch.zeros(4, 28, 28))
