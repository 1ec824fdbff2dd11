"""Run folders: `${unique_dir:...}` never hands one folder to two runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import ROOT, compose_train
from omegaconf import OmegaConf

from diffkit.run_dir import register_unique_dir, unique_dir


def test_unique_dir_claims_a_fresh_folder_each_call(tmp_path: Path) -> None:
    base = tmp_path / "task" / "2026-12-02_03-10-34"
    got = [unique_dir(str(base)) for _ in range(3)]
    assert got == [str(base), f"{base}_1", f"{base}_2"]
    assert all(Path(p).is_dir() for p in got)


def test_a_config_resolves_its_run_folder_once(tmp_path: Path) -> None:
    register_unique_dir()
    cfg = OmegaConf.create({"dir": f"${{unique_dir:{tmp_path}/run}}"})
    assert cfg.dir == cfg.dir == str(tmp_path / "run")  # cached: reading twice does not claim a second folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_default_run_folder_goes_through_unique_dir(tmp_path: Path) -> None:
    cfg = compose_train(["recipe=smoke/image"], tmp_path, keep_hydra=True)
    assert OmegaConf.to_container(cfg.hydra.run)["dir"].startswith("${unique_dir:")


def test_two_runs_launched_together_get_two_folders(tmp_path: Path) -> None:
    # the same folder name for both, as two runs started in the same second get; each fails fast on a missing
    # checkpoint after Hydra has made its folder
    cmd = [sys.executable, "-m", "diffkit.sample", "ckpt=no_such.ckpt", f"hydra.run.dir=${{unique_dir:{tmp_path}/run}}"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run_1"]
