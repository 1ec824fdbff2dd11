"""A modality outside the repository (tests/fixtures/toywave, copied to a temporary folder): its own adapter, data
module, encoder, conditioning component, evaluator, conf group files and recipe join diffkit through
`hydra.searchpath`, and train and sample with the diffkit entry points; no diffkit file changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "toywave"


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


def test_an_out_of_tree_modality_trains_and_samples_with_the_diffkit_entry_points(tmp_path: Path) -> None:
    ext = tmp_path / "ext"
    shutil.copytree(FIXTURE, ext / "toywave", ignore=shutil.ignore_patterns("__pycache__"))
    assert not ext.resolve().is_relative_to(ROOT.resolve())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ext), str(ROOT)])}  # diffkit as if installed
    before, run = _git_status(), tmp_path / "run"
    train = [sys.executable, "-m", "diffkit.train", "hydra.searchpath=[pkg://toywave.conf]", "recipe=toywave/smoke",
             f"hydra.run.dir={run}"]  # fmt: skip
    proc = subprocess.run(train, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/start_kept"] == 1.0 and metrics["test/offset_error"] >= 0  # its evaluator, given starts
    assert list((run / "samples" / "final").glob("samples_step*.json"))  # its own log_samples

    out = tmp_path / "sampled"
    sample = [sys.executable, "-m", "diffkit.sample", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "n=3",
              "+request.offset=0.5", "+request.start=[0.25,-0.5]", "guidance_scale=1.5", "evaluate=true",
              "trust=[toywave.]", f"hydra.run.dir={out}"]  # fmt: skip
    proc = subprocess.run(sample, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(next(out.glob("samples_step*.json")).read_text())
    assert len(rows) == 3 and all(row[:2] == [0.25, -0.5] and len(row) == 16 for row in rows)
    assert "offset_error" in json.loads((out / "metrics.json").read_text())
    assert _git_status() == before  # nothing in the repository was written or changed
