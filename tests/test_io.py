"""Atomic writes: the result is complete, readable like any other file, and a failure leaves nothing behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from diffkit.io import atomic_write, write_json


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
