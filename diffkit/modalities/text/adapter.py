"""The text modality adapter: a character tokenizer built offline, ids <-> strings, infill masks, sample tables.

    tok = build_char_tokenizer(train_text, vocab_size=128, out_dir="data/shakespeare/out/tokenizer")
    modality = TextModality("data/shakespeare/out/tokenizer", seq_len=128)
    request = modality.request(4, prefix="ROMEO:")   # known ids [4,128] and mask (1 = given)

References:
    Hugging Face `tokenizers` (WordLevel model, Fuse decoder) wrapped as a transformers PreTrainedTokenizerFast;
    Karpathy's nanoGPT shakespeare_char (character-level language modelling); Sahoo et al. 2024 (MDLM infilling).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffkit.core.types import Cond, CondSpec
from diffkit.io import atomic_write
from diffkit.modalities.base import DataError, Request

MASK_TOKEN, UNK_TOKEN = "[MASK]", "[UNK]"
MASK_ID, UNK_ID = 0, 1  # fixed ids: the masking process and the AR start token use MASK_ID


def build_char_tokenizer(text: str, vocab_size: int, out_dir: str | os.PathLike) -> Any:
    """Character-level PreTrainedTokenizerFast with exactly vocab_size ids, saved to out_dir.

    Ids: [MASK]=0, [UNK]=1, the training text's characters by decreasing frequency, then [unused<k>] fillers
    (BERT's convention) so the vocabulary size, and with it the model shape, is fixed by the config.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # lazy: only data preparation
    from transformers import PreTrainedTokenizerFast

    chars = [c for c, _ in sorted(Counter(text).items(), key=lambda kv: (-kv[1], kv[0]))]
    room = vocab_size - 2
    if room < 1:
        raise ValueError(f"vocab_size={vocab_size} leaves no room for characters after [MASK] and [UNK]")
    chars = chars[:room]
    tokens = [MASK_TOKEN, UNK_TOKEN, *chars] + [f"[unused{k}]" for k in range(room - len(chars))]
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=UNK_TOKEN))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one token per character
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=UNK_TOKEN, mask_token=MASK_TOKEN)
    fast.save_pretrained(str(out_dir))
    return fast


def load_tokenizer(path: str | os.PathLike) -> Any:
    """The saved PreTrainedTokenizerFast; one clear error if the data has not been prepared."""
    from transformers import PreTrainedTokenizerFast

    if not (Path(path) / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"no tokenizer in {path}; prepare the data first (e.g. python data/shakespeare/prepare.py)"
        )
    return PreTrainedTokenizerFast.from_pretrained(str(path))


class TextModality:
    """Token ids [B,L] from a character tokenizer; decode() gives strings, log_samples() writes tables."""

    bin_width = None  # discrete ids: no dequantised likelihood

    def __init__(
        self,
        tokenizer_dir: str,  # folder with the saved tokenizer (written by the DataModule / prepare.py)
        seq_len: int = 128,  # tokens per packed block
        vocab_size: int = 128,  # ids in the tokenizer, [MASK] included
        mask_id: int = MASK_ID,
    ) -> None:
        self.tokenizer_dir, self.seq_len, self.vocab_size, self.mask_id = tokenizer_dir, seq_len, vocab_size, mask_id
        self._tokenizer = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:  # lazy: configs instantiate before the data is prepared
            self._tokenizer = load_tokenizer(self.tokenizer_dir)
            if len(self._tokenizer) != self.vocab_size or self._tokenizer.mask_token_id != self.mask_id:
                raise ValueError(
                    f"tokenizer in {self.tokenizer_dir} has {len(self._tokenizer)} ids and mask id "
                    f"{self._tokenizer.mask_token_id}; the config says vocab_size={self.vocab_size}, "
                    f"mask_id={self.mask_id}; delete the folder to rebuild it"
                )
        return self._tokenizer

    def example_shape(self) -> tuple[int, ...]:
        return (self.seq_len,)

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]:
        ids = batch["ids"]
        if ids.ndim != 2 or ids.shape[1] != self.seq_len:
            raise ValueError(f"text batch has shape {tuple(ids.shape)}; expected [B, {self.seq_len}]")
        return ids.long(), {}

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, x0: Tensor, cond: Cond | None = None) -> list[str]:
        """Ids [B,L] -> B strings; [MASK] (never left by a finished sampler) is shown as '[MASK]'."""
        return self.tokenizer.batch_decode(x0.detach().cpu().tolist(), skip_special_tokens=False)

    def infill(self, n: int, prefix: str = "", suffix: str = "") -> tuple[Tensor, Tensor]:
        """(known ids [n,L], mask [n,L] with 1 = given) for prefix/suffix-conditioned generation."""
        head, tail = self.tokenize(prefix), self.tokenize(suffix)
        if len(head) + len(tail) >= self.seq_len:
            raise DataError(f"prefix + suffix take {len(head) + len(tail)} tokens; seq_len is {self.seq_len}")
        known = torch.full((n, self.seq_len), self.mask_id, dtype=torch.long)
        mask = torch.zeros((n, self.seq_len), dtype=torch.bool)
        known[:, : len(head)] = torch.tensor(head, dtype=torch.long)
        mask[:, : len(head)] = True
        if tail:
            known[:, -len(tail) :] = torch.tensor(tail, dtype=torch.long)
            mask[:, -len(tail) :] = True
        return known, mask

    def cond_specs(self) -> tuple[CondSpec, ...]:
        return ()  # unconditional language model: the text itself is the only input

    def request(self, n: int, prefix: str = "", suffix: str = "") -> Request:
        """`+request.prefix="ROMEO:" +request.suffix="love."`: n samples that start / end with exactly that text
        (MDLM infilling; the AR baseline forces the given tokens); no arguments: free samples."""
        if not prefix and not suffix:
            return Request()
        known, mask = self.infill(n, prefix=str(prefix), suffix=str(suffix))
        return Request(known=known, mask=mask)

    def log_samples(self, samples: list[str], logger: Any, step: int, out_dir: str | None = None) -> None:
        """Write samples as Markdown and JSONL under out_dir; a wandb logger also gets a wandb.Table."""
        if out_dir is not None:
            stem = os.path.join(out_dir, f"samples_step{step:06d}")
            lines = "".join(json.dumps({"step": step, "index": i, "text": s}) + "\n" for i, s in enumerate(samples))
            md = "".join(f"### sample {i}\n\n```text\n{s}\n```\n\n" for i, s in enumerate(samples))
            atomic_write(stem + ".jsonl", lambda tmp: Path(tmp).write_text(lines, encoding="utf-8"))
            atomic_write(stem + ".md", lambda tmp: Path(tmp).write_text(md, encoding="utf-8"))
        if logger is not None and hasattr(logger, "log_text"):  # lightning's WandbLogger -> wandb.Table
            logger.log_text(key="samples/text", columns=["index", "text"], data=[[i, s] for i, s in enumerate(samples)])
