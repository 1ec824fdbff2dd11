"""The text smoke recipe end to end (masked diffusion and the AR baseline), checkpoint round trip, infilling CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT, compose_train

from diffkit.config import load
from diffkit.train import run


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("text_run")
    return out, run(compose_train(["recipe=smoke/text"], out))


def test_smoke_text_trains_end_to_end(trained) -> None:
    out, metrics = trained
    assert (out / "checkpoints" / "last.ckpt").is_file()
    for key in ("train/loss", "val/loss", "test/loss"):
        assert math.isfinite(metrics[key]), key
    # An untrained model's NELBO is near log(V) nats/char (uniform guess), and it is a bound, so not below 0.
    assert 0 < metrics["test/loss"] < 2 * math.log(128)
    final = list((out / "samples" / "final").glob("*.jsonl"))
    rows = [json.loads(line) for line in final[0].read_text().splitlines()]
    assert len(rows) == 4 and all(len(r["text"]) > 0 and "[MASK]" not in r["text"] for r in rows)


def test_checkpoint_infilling_keeps_the_given_text(trained) -> None:
    out, _ = trained
    module = load(out / "checkpoints" / "last.ckpt")
    known, mask = module.modality.infill(3, prefix="ROMEO:", suffix="love.")
    ids = module.sample(3, known=known, mask=mask, steps=16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ids[mask], known[mask]) and bool((ids != module.modality.mask_id).all())
    texts = module.modality.decode(ids)
    assert all(t.startswith("ROMEO:") and t.endswith("love.") for t in texts)


def test_ar_baseline_trains_and_continues_a_prompt(tmp_path: Path) -> None:
    metrics = run(compose_train(["recipe=smoke/text", "module=ar", "backbone.causal=true"], tmp_path))
    assert math.isfinite(metrics["test/loss"]) and metrics["test/loss"] < 2 * math.log(128)
    module = load(tmp_path / "checkpoints" / "last.ckpt")
    known, mask = module.modality.infill(2, prefix="KING")
    texts = module.modality.decode(module.sample(2, known=known, mask=mask, generator=torch.Generator().manual_seed(0)))
    assert all(t.startswith("KING") for t in texts)


@pytest.mark.parametrize("module", [[], ["module=ar", "backbone.causal=true"]], ids=["mdlm", "ar"])
def test_a_resumed_text_run_continues_exactly(module: list[str], tmp_path: Path) -> None:
    """Stopped after step 3 of 4 (mid-epoch) and resumed, a run ends at the uninterrupted run's weights and EMA:
    the data order continues where it stopped, and last.ckpt holds the EMA of its own step."""
    args = ["recipe=smoke/text", *module, "trainer.max_steps=4", "trainer.limit_train_batches=10",
            "callbacks.last_checkpoint.every_n_train_steps=1", "eval.after_training=false",
            "eval.test_loss=false"]  # fmt: skip
    run(compose_train(args, tmp_path / "whole"))
    run(compose_train([*args, "trainer.max_steps=3"], tmp_path / "parts"))
    run(compose_train([*args, "ckpt_path=last"], tmp_path / "parts"))
    whole, parts = (
        torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=True) for d in ("whole", "parts")
    )
    assert whole["global_step"] == parts["global_step"] == 4
    for name, value in whole["state_dict"].items():
        assert torch.equal(value, parts["state_dict"][name]), name


def test_sample_cli_with_prompt_and_suffix(trained, tmp_path: Path) -> None:
    out, _ = trained
    cmd = [sys.executable, "-m", "diffkit.sample", f"ckpt={out / 'checkpoints' / 'last.ckpt'}", "n=3", "steps=12",
           "+request.prefix=HAMLET", "+request.suffix=end.", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in next(tmp_path.glob("samples_step*.jsonl")).read_text().splitlines()]
    assert len(rows) == 3 and all(r["text"].startswith("HAMLET") and r["text"].endswith("end.") for r in rows)


def test_sample_cli_names_the_request_arguments_the_modality_declares(trained, tmp_path: Path) -> None:
    out, _ = trained
    cmd = [sys.executable, "-m", "diffkit.sample", f"ckpt={out / 'checkpoints' / 'last.ckpt'}", "n=2",
           "+request.label=3", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "TextModality takes request arguments ['prefix', 'suffix']; got ['label']" in proc.stderr


def test_train_cli_reports_a_bad_text_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text \xff\xfe more")
    cmd = [sys.executable, "-m", "diffkit.train", "recipe=smoke/text", "data=text_files", f"data.text_files=[{bad}]",
           f"data.data_dir={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "bad.txt: not UTF-8 (byte 0xff at offset 10)" in proc.stderr and "Traceback" not in proc.stderr
