"""Conditioning components (diffkit.modalities.conditioning) and the contract checks of the module."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from diffkit.core.guidance import replace, replace_tokens
from diffkit.core.types import CondSpec
from diffkit.modalities.base import SamplingState, TrainingExample, declared_specs
from diffkit.modalities.conditioning import ClassifierFree, GivenEntries, KnownInputs
from diffkit.modalities.image.adapter import ImageModality
from diffkit.nets.encoders import LabelEmbedding
from diffkit.nets.unet import UNet
from diffkit.training.module import check_readers

SPECS = {"label": CondSpec("label", (), torch.long, -1)}


def _example(training: bool) -> TrainingExample:
    return TrainingExample(torch.zeros(1000, 1, 2, 2), {"label": torch.arange(1000) % 10}, None, SPECS, training)


def test_classifier_free_drops_to_the_declared_null_in_training_only() -> None:
    component = ClassifierFree(p=0.3)
    dropped = component.train(_example(True), torch.Generator().manual_seed(0)).cond["label"]
    assert abs((dropped == -1).float().mean().item() - 0.3) < 0.05
    kept = component.train(_example(False), torch.Generator().manual_seed(0)).cond["label"]
    assert torch.equal(kept, torch.arange(1000) % 10)  # validation / test: nothing dropped
    with pytest.raises(ValueError, match="p must be"):
        ClassifierFree(p=1.0)


def test_classifier_free_guides_with_the_requested_scale() -> None:
    calls: list[torch.Tensor] = []

    def denoiser(x, sigma, cond=None):
        calls.append(cond["label"])
        return x + cond["label"].float()[:, None]

    x, cond = torch.zeros(2, 1), {"label": torch.tensor([1, 2])}
    state = SamplingState(denoiser, x, cond, None, None, SPECS)
    out = ClassifierFree(scale=2.0).prepare(state).denoiser(x, torch.ones(2), cond)
    # uncond: the null label -1; cond: 1, 2 -> -1 + 2 * (l + 1)
    assert calls[0].tolist() == [-1, -1] and out[:, 0].tolist() == [3.0, 5.0]
    state = SamplingState(denoiser, x, cond, None, None, SPECS, guidance_scale=1.0)
    assert ClassifierFree(scale=2.0).prepare(state).denoiser(x, torch.ones(2), cond)[:, 0].tolist() == [1.0, 2.0]


def test_given_entries_hold_the_request_and_choose_their_sampler() -> None:
    known, mask = torch.tensor([[5, 6, 0, 0]]), torch.tensor([[1, 1, 0, 0]])
    x = torch.zeros(1, 4, dtype=torch.long)
    tokens = GivenEntries(replace_tokens, start_given=True)
    state = tokens.prepare(SamplingState(lambda *a: None, x, None, known, mask))
    assert state.x.tolist() == [[5, 6, 0, 0]] and state.sampler is None  # visible from the first step
    assert tokens.finish(torch.full((1, 4), 9), state).tolist() == [[5, 6, 9, 9]]

    def repaint(*args, **kwargs):
        return None

    def explicit(*args, **kwargs):
        return None

    gaussian = GivenEntries(replace, sampler=repaint)
    state = gaussian.prepare(SamplingState(lambda x, s, c=None: x, x.float(), None, known.float(), mask))
    assert torch.equal(state.x, x.float()) and state.sampler is repaint  # Gaussian: the prior is unchanged
    assert gaussian.prepare(SamplingState(lambda *a: None, x, None, known, mask, sampler=explicit)).sampler is explicit
    plain = SamplingState(lambda *a: None, x, None, None, None)
    assert gaussian.prepare(plain) is plain and torch.equal(gaussian.finish(x, plain), x)  # nothing given


def test_known_inputs_declare_their_entries_and_reach_the_net() -> None:
    component = KnownInputs(lambda x0, g: torch.ones_like(x0[:, :1]))
    specs = component.cond_specs((1, 2, 2))
    assert [(s.name, s.null) for s in specs] == [("known", 0.0), ("mask", 0.0)]
    example = component.train(TrainingExample(torch.full((3, 1, 2, 2), 0.5), {}, None, {}, True), None)
    assert set(example.cond) == {"known", "mask"} and torch.equal(example.cond["known"], example.x0)
    seen: list[set] = []
    ones = torch.ones(1, 1, 2, 2)
    state = SamplingState(lambda x, s, c=None: seen.append(set(c)) or x, torch.zeros_like(ones), {}, ones, ones)
    component.prepare(state).denoiser(state.x, torch.ones(1), {})
    assert seen == [{"known", "mask"}]


def test_every_declared_entry_needs_a_reader_in_the_backbone() -> None:
    specs = declared_specs(ImageModality(num_classes=10), [KnownInputs(lambda x0, g: x0)])
    assert list(specs) == ["label", "known", "mask"]
    labels_only = UNet(1, channels=8, channel_mult=(1,), num_res_blocks=1,
                       embeddings={"label": partial(LabelEmbedding, num_classes=10)})  # fmt: skip
    check_readers(labels_only, ["label"])
    with pytest.raises(ValueError, match=r"no encoder for the condition entries \['known', 'mask'\]"):
        check_readers(labels_only, list(specs))
    with pytest.raises(ValueError, match="declared twice"):
        declared_specs(ImageModality(), [KnownInputs(lambda x0, g: x0), KnownInputs(lambda x0, g: x0)])
