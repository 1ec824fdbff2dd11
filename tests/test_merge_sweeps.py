"""benchmarks/merge_sweeps.py: seeds read from sweep.json or the run's Hydra config; mean ± sd per point."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from merge_sweeps import merge, read_run  # noqa: E402


def _run(folder: Path, fds: list[float], seed: int | None, hydra_seed: int | None = None) -> Path:
    rows = [{"sampler": "dpmpp_2m", "steps": s, "denoiser_calls": s, "nfe": 2 * s, "fd": fd, "note": "x"}
            for s, fd in zip((5, 10), fds)]  # fmt: skip
    sweep = {"ckpt": "c", "schedule": "checkpoint", "metric": "fd", "rows": rows}
    if seed is not None:
        sweep["seed"] = seed
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps(sweep))
    if hydra_seed is not None:
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "config.yaml").write_text(f"seed: {hydra_seed}\n")
    return folder


def test_merge_gives_each_points_seeds_mean_and_sd(tmp_path: Path) -> None:
    runs = [read_run(_run(tmp_path / "a", [60.0, 50.0], seed=0)), read_run(_run(tmp_path / "b", [70.0, 46.0], None, 3))]
    rows = merge(runs)
    assert [(r["nfe"], sorted(r["seeds"])) for r in rows] == [(10, [0, 3]), (20, [0, 3])]
    assert rows[0]["fd_mean"] == 65.0 and rows[0]["fd_sd"] == pytest.approx(7.0710678)
    assert rows[1]["seeds"][3] == {"fd": 46.0, "note": "x"} and rows[1]["note_mean"] is None
    with pytest.raises(ValueError, match="seed 0 appears twice"):
        merge([runs[0], runs[0]])
