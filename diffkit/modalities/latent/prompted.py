"""Text-prompted latent diffusion: captions -> frozen MiniLM token states -> the net's cross-attention.

    modality = PromptedModality(autoencoder_ckpt="outputs/vae/checkpoints/last.ckpt", inner=ImageModality(size=28))
    x0, cond = modality.encode(batch)       # batch["caption"]: B strings -> cond {"context" [B,L,384], "context_mask"}
    request = modality.request(16, prompt="a dark ankle boot")          # or prompt_file="prompts.txt"

A dropped caption (classifier-free guidance) is the declared nulls: context NaN, mask 0, so the net attends only its
learned null token; guidance scale 0 is the unconditional model, 1 the conditional one.

References:
    Rombach et al. 2022 (LDM text-to-image: cross-attention on a frozen text encoder); Ho & Salimans 2022 (CFG).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffkit.core.types import Cond, CondSpec
from diffkit.modalities.base import DataError, Request
from diffkit.modalities.latent.adapter import LatentModality
from diffkit.modalities.latent.captions import CLASS_NAMES
from diffkit.modalities.latent.text_encoder import TextEncoder

MAX_PROMPTS = 100  # prompts per prompt file (one grid row each)


def read_prompts(path: str | os.PathLike) -> list[str]:
    """Non-blank lines of a prompt file; an unreadable or empty file is a DataError naming it."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read prompt_file {path}: {err}") from None
    prompts = [line.strip() for line in lines if line.strip()]
    if not prompts:
        raise DataError(f"prompt_file {path} holds no prompts (one prompt per line)")
    if len(prompts) > MAX_PROMPTS:
        raise DataError(f"prompt_file {path} holds {len(prompts)} prompts; at most {MAX_PROMPTS}")
    return prompts


class PromptedModality(LatentModality):
    """Latents of a frozen autoencoder as x0; the condition is a caption's token states (the batch's "caption")."""

    def __init__(
        self,
        autoencoder_ckpt: str,
        inner: Any,
        sigma_data: float = 1.0,
        channels: int | None = None,
        max_length: int = 16,  # tokens per caption, [CLS] and [SEP] included
        context_key: str = "context",
        mask_key: str = "context_mask",
    ) -> None:
        super().__init__(autoencoder_ckpt, inner, sigma_data, channels)
        self.text = TextEncoder(max_length=max_length)
        self.context_key, self.mask_key = context_key, mask_key
        self.prompts: list[str] = []  # the prompts of the last request, in grid-row order
        self.row = 0  # samples per grid row of the last request (0 = square grid)

    def cond_specs(self) -> tuple[CondSpec, ...]:
        """Token states (null NaN: no caption) and their mask (null 0: nothing to attend but the learned null)."""
        length, width = self.text.max_length, self.text.width
        return (
            CondSpec(self.context_key, (length, width), torch.float32, math.nan),
            CondSpec(self.mask_key, (length,), torch.float32, 0.0),
        )

    def embed(self, captions: Sequence[str], device: torch.device | None = None) -> Cond:
        """Captions -> {"context": [B,L,384], "context_mask": [B,L]}."""
        context, mask = self.text(list(captions), device)
        return {self.context_key: context, self.mask_key: mask}

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]:
        if "caption" not in batch:
            raise DataError(f"prompted batch has no 'caption' entry (keys: {sorted(batch)}); use a captioned data "
                            "module, e.g. diffkit.modalities.latent.data.CaptionedFashionMNISTDataModule")  # fmt: skip
        x, _ = self.inner.encode(batch)
        return self.to_latent(x), self.embed(batch["caption"], x.device)

    def check_prompt(self, prompt: Any, source: str = "prompt") -> str:
        """A non-empty prompt within max_length tokens, else a DataError naming it."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{source} {prompt!r} is empty; give a caption, e.g. prompt=\"a dark ankle boot\" "
                            "(guidance_scale=0 samples the unconditional model)")  # fmt: skip
        try:
            self.text.check(prompt.strip())
        except DataError as err:
            raise DataError(str(err) if source == "prompt" else f"{source}: {err}") from None
        return prompt.strip()

    def request(self, n: int, prompt: str | None = None, prompt_file: str | None = None) -> Request:
        """`prompt="a dark ankle boot"`: n samples of it; `prompt_file=F`: n samples per line of F, one grid row per
        prompt; neither: the showcase, "a photo of a {class}" for every class in turn."""
        if prompt is not None and prompt_file is not None:
            raise DataError("give prompt= or prompt_file=, not both")
        if prompt_file is not None:
            prompts = [self.check_prompt(p, f"prompt_file {prompt_file}") for p in read_prompts(prompt_file)]
            captions, self.row = [p for p in prompts for _ in range(n)], n
        elif prompt is not None:
            prompts = [self.check_prompt(prompt)]
            captions, self.row = prompts * n, 0
        else:
            prompts = [f"a photo of a {name}" for name in CLASS_NAMES]
            captions, self.row = [prompts[i % len(prompts)] for i in range(n)], len(prompts)
        self.prompts = prompts
        return Request(cond=self.embed(captions))

    def log_samples(self, samples: Any, logger: Any, step: int, out_dir: str | None = None) -> None:
        """The inner modality's grid (one row per prompt) and beside it a .txt of the same name with its prompts."""
        from diffkit.modalities.image.adapter import save_grid

        if out_dir is None or not self.row:
            self.inner.log_samples(samples, logger, step, out_dir)
        else:
            save_grid(samples, os.path.join(out_dir, f"samples_step{step:06d}.png"), nrow=self.row)
        if out_dir is not None and self.prompts:
            Path(out_dir, f"samples_step{step:06d}.txt").write_text("\n".join(self.prompts) + "\n", encoding="utf-8")
