"""The first screen of `python -m diffkit.train`: no dependency noise, and a summary a newcomer can read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, subprocess_env, train_cmd

NOISE = ("Tip:", "litlogger", "litmodels", "anonymous", "FLOPs", "LeafSpec")  # see diffkit/training/quiet.py


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[Path, str]:
    """The smoke recipe as the default recipe runs: offline wandb logger, model summary and progress bar on."""
    out = tmp_path_factory.mktemp("first")
    overrides = ["recipe=smoke/image", "logger=wandb", "trainer.enable_model_summary=true"]
    overrides += ["trainer.enable_progress_bar=true", f"hydra.run.dir={out}"]
    env = subprocess_env(WANDB_MODE="offline", WANDB_SILENT="false")
    env.pop("WANDB_API_KEY", None)
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr in the order written
    cmd, merged = train_cmd(*overrides), {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, text=True, timeout=600, **merged)
    screen = proc.stdout
    assert proc.returncode == 0, screen[-3000:]
    return out, screen


def test_the_first_screen_has_no_dependency_noise(first_run) -> None:
    _, screen = first_run
    assert [word for word in NOISE if word in screen] == [], screen
    assert "Total params" in screen  # the model summary stays, without its FLOPs column
    assert "metrics: {" not in screen and "untrained model: {" not in screen  # the dicts go to the log file


def test_the_run_ends_with_a_summary(first_run) -> None:
    out, screen = first_run
    summary = screen[screen.index("Done in ") :]
    assert "wandb sync" in screen and "wandb" not in summary  # the summary is the last thing on screen
    assert f"Run folder: {out}" in summary
    assert "checkpoints/last.ckpt" in summary and "metrics.json" in summary
    assert "digits-FD" in summary and "real test images" in summary and "untrained model" in summary
    assert "per-class Gaussians" in summary and "inpainting SSIM" in summary
    assert "inpainting PSNR" in summary and "mean fill" in summary and "higher is better" in summary
    assert f"python -m diffkit.sample ckpt={out}/checkpoints/last.ckpt n=64" in summary
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"test/fd", "test/fd_real_test", "test/fd_class_gauss", "init/fd", "test/meanfill_psnr"} <= set(metrics)
    log = (out / "train.log").read_text()
    assert "metrics: {" in log and "Done in " in log  # the full dict and the summary are kept in the log file
