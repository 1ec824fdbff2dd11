"""docs/new_modality.md works when followed literally: its code blocks, extracted from the Markdown, are written
(blocks whose first line is `# file: <path>`) or run (the others) in order, in an empty folder outside the
repository, with diffkit importable as if installed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

TUTORIAL = ROOT / "docs" / "new_modality.md"
BLOCK = re.compile(r'^```(python|yaml|bash)(?: title="([^"]+)")?\n(.*?)^```', re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str | None, str]]:
    """(language, file name or None, text) of every fenced python/yaml/bash block, in order."""
    return [(m.group(1), m.group(2), m.group(3)) for m in BLOCK.finditer(TUTORIAL.read_text())]


def test_the_tutorial_has_files_commands_and_a_test() -> None:
    found = blocks()
    files = [name for _, name, _ in found if name]
    commands = [text for lang, name, text in found if lang == "bash"]
    assert len(files) >= 10 and "tests/test_myseries.py" in files
    assert any("diffkit.train" in c for c in commands) and any("pytest" in c for c in commands)


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "tutorial"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(work), str(ROOT)]), "PYTHONDONTWRITEBYTECODE": "1"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # `python` = this one
    for i, (lang, name, text) in enumerate(blocks()):
        if name:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
            continue
        assert lang == "bash", f"block {i} ({lang}) has no file name and is not a command"
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, f"block {i}:\n{text}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert (work / "run" / "metrics.json").is_file() and list((work / "sampled").glob("samples_step*.json"))
