"""Captions built from Fashion-MNIST itself: the class name in many phrasings plus a brightness attribute.

    terciles = fit_terciles(train_images, train_labels)          # per class, on the train split only
    captioner = Captioner(terciles, split="train")
    captioner.caption(label=9, image=x, generator=g)              # e.g. "a photo of a dark ankle boot"

The attribute (dark / mid-grey / light) is the tercile of the image's own mean pixel among the training images of its
class, so every (class, attribute) pair holds a third of the class. Two held-out sets make the test honest:
  - phrasings: the test split uses templates never seen in training (TEST_TEMPLATES);
  - combinations: HELD_OUT (class, attribute) pairs never appear in training captions (those images are captioned
    by class alone), so prompting them is a compositional test.

References:
    Xiao et al. 2017 (Fashion-MNIST); Radford et al. 2021 (CLIP prompt templates, "a photo of a {c}").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Generator, Tensor

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")  # the smoke data
CLASS_NAMES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
ATTRIBUTES = ("dark", "mid-grey", "light")  # brightness terciles, darkest first
HELD_OUT = ((1, 2), (8, 0), (7, 1))  # (class, attribute) never captioned in training: light trouser, dark bag,
# mid-grey sneaker
TRAIN_TEMPLATES = (
    "a {a} {c}", "a photo of a {a} {c}", "a picture of a {a} {c}", "{a} {c}", "an image of a {a} {c}",
    "a {c} that is {a}", "a {a} looking {c}", "a small {a} {c}",
)  # fmt: skip
TRAIN_CLASS_TEMPLATES = ("{c}", "a {c}", "a photo of a {c}", "a picture of a {c}", "an image of a {c}")
TEST_TEMPLATES = ("a product shot of a {a} {c}", "one {a} {c}", "a catalog photo of a {a} {c}", "this is a {a} {c}")
TEST_CLASS_TEMPLATES = ("a product shot of a {c}", "one {c}", "this is a {c}")
P_ATTRIBUTE = 0.75  # share of training captions that name the attribute (the rest name the class only)


def brightness(images: Tensor) -> Tensor:
    """Mean pixel of each image [N,C,H,W] (model space [-1, 1] or uint8) -> [N] float."""
    return images.float().flatten(1).mean(1)


def fit_terciles(images: Tensor, labels: Tensor, num_classes: int = len(CLASS_NAMES)) -> Tensor:
    """Per-class brightness terciles [num_classes, 2] (the 1/3 and 2/3 quantiles), fitted on the given (train) split."""
    values = brightness(images)
    qs = torch.tensor([1 / 3, 2 / 3])
    return torch.stack([torch.quantile(values[labels == c], qs) for c in range(num_classes)])


def attribute_of(images: Tensor, labels: Tensor, terciles: Tensor) -> Tensor:
    """Attribute index [N] (0 dark, 1 mid-grey, 2 light) of images [N,C,H,W] under the terciles of their classes."""
    values, bounds = brightness(images), terciles[labels.long()]
    return (values > bounds[:, 0]).long() + (values > bounds[:, 1]).long()


def caption_text(
    template: str, label: int, attribute: int | None = None, class_names: Sequence[str] = CLASS_NAMES
) -> str:
    """One caption from a template with {c} (class name) and optionally {a} (attribute)."""
    return template.format(c=class_names[label], a=ATTRIBUTES[attribute] if attribute is not None else "")


def templates_of(split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(attribute templates, class-only templates) of a split: the held-out phrasings for "test", else training's."""
    if split == "test":
        return TEST_TEMPLATES, TEST_CLASS_TEMPLATES
    return TRAIN_TEMPLATES, TRAIN_CLASS_TEMPLATES


class Captioner:
    """Random captions of (label, attribute) pairs for one split: train phrasings (held-out pairs by class only) or
    the held-out test phrasings (all pairs)."""

    def __init__(
        self,
        terciles: Tensor,
        split: str = "train",  # "train" (train and validation captions) or "test" (held-out phrasings, all pairs)
        held_out: Sequence[tuple[int, int]] = HELD_OUT,
        class_names: Sequence[str] = CLASS_NAMES,
    ) -> None:
        self.terciles, self.split, self.class_names = terciles, split, tuple(class_names)
        self.held_out = {(int(c), int(a)) for c, a in held_out}
        self.templates, self.class_templates = templates_of(split)

    def caption(self, label: int, attribute: int, generator: Generator | None = None) -> str:
        """A caption of one example: with P_ATTRIBUTE its attribute phrasing (never a held-out pair in training)."""
        draw = torch.rand(2, generator=generator)
        hidden = self.split != "test" and (label, attribute) in self.held_out
        if hidden or float(draw[0]) >= P_ATTRIBUTE:
            return caption_text(
                self.class_templates[int(draw[1] * len(self.class_templates))], label, None, self.class_names
            )
        return caption_text(self.templates[int(draw[1] * len(self.templates))], label, attribute, self.class_names)

    def captions(self, images: Tensor, labels: Tensor, generator: Generator | None = None) -> list[str]:
        """Captions of a batch of images [B,C,H,W] and labels [B]."""
        attributes = attribute_of(images, labels, self.terciles)
        return [self.caption(int(c), int(a), generator) for c, a in zip(labels, attributes, strict=True)]


def prompt_set(split: str = "test") -> list[tuple[str, int, int | None]]:
    """Every (prompt, class, attribute) of a split's attribute templates, plus its class-only templates (attribute
    None): the benchmark's prompts come from the held-out test phrasings."""
    templates, class_templates = templates_of(split)
    out: list[tuple[str, int, int | None]] = []
    for c in range(len(CLASS_NAMES)):
        out += [(caption_text(t, c, a), c, a) for t in templates for a in range(len(ATTRIBUTES))]
        out += [(caption_text(t, c), c, None) for t in class_templates]
    return out
