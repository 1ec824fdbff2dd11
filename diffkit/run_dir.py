"""`${unique_dir:PATH}`: a run folder of its own, even for runs started in the same second.

Hydra names run folders by the second (`outputs/<task>/<date>_<time>`), so two runs launched together would share
one folder and overwrite each other's metrics and checkpoints. conf/hydra/default.yaml wraps the name in this
resolver, which claims the folder with an atomic `mkdir` and falls back to `<name>_1`, `<name>_2`, ...
"""

from __future__ import annotations

import itertools
from pathlib import Path

from omegaconf import OmegaConf

RESOLVER = "unique_dir"


def unique_dir(path: str) -> str:
    """Create `path` (or the first free `path_1`, `path_2`, ...) with an atomic mkdir and return the one created."""
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    for k in itertools.count():
        candidate = base if k == 0 else base.with_name(f"{base.name}_{k}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return str(candidate)
    raise AssertionError("unreachable")


def register_unique_dir() -> None:
    """Register `${unique_dir:...}` once; cached, so a config resolves it to one folder however often it is read."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, unique_dir, use_cache=True)
