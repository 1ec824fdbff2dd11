"""Atomic writes: the result is complete, readable like any other file, and a failure leaves nothing behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from diffkit.io import atomic_write, exclusive, write_json


def test_atomic_write_gives_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_json({"a": 1}, tmp_path / "m.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert path.read_text().strip().startswith("{")


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = write_json({"good": True}, tmp_path / "m.json")

    def crash(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, crash)
    assert '"good": true' in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


BUILD_ONCE = """
import sys, time
from pathlib import Path
from diffkit.io import exclusive
folder = Path(sys.argv[1])
with exclusive(folder):
    if not (folder / "data.txt").exists():
        with open(folder / "builds.log", "a") as log:
            log.write("built\\n")
        time.sleep(0.5)  # a slow build: the other process must wait, then find the data
        (folder / "data.txt").write_text("ready")
"""


def test_exclusive_builds_a_folder_once_when_processes_start_together(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "out"  # does not exist yet: exclusive creates it
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_ONCE, str(folder)]) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert (folder / "builds.log").read_text() == "built\n" and (folder / "data.txt").read_text() == "ready"
    with exclusive(folder) as held:  # the lock is free again afterwards
        assert held == folder
