"""Shared fixtures: compose the Hydra training config the way `python -m diffkit.train` does; under pytest-xdist
(`-n auto`, set in pyproject.toml) each worker takes its share of the cores."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from helpers import compose_train
from omegaconf import DictConfig


def _share_cores_between_workers() -> None:
    """N workers on C cores: C // N intra-op threads each, also for the processes a test starts (OMP_NUM_THREADS),
    so parallel workers do not oversubscribe the machine."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


_share_cores_between_workers()


def _own_compile_cache() -> None:
    """torch.compile writes kernels to one machine-wide cache (/tmp/torchinductor_$USER) whose keys ignore
    ATEN_CPU_CAPABILITY: a kernel built under `ATEN_CPU_CAPABILITY=avx2` aborts the process when a later run loads
    it. The tests compile into a fresh folder of their own (torch sets the variable itself when it first looks)."""
    folder = tempfile.mkdtemp(prefix="diffkit-tests-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


_own_compile_cache()


@pytest.fixture
def smoke_cfg(tmp_path: Path) -> DictConfig:
    """The CPU smoke recipe for the image modality, writing into a temporary run folder."""
    return compose_train(["recipe=smoke/image"], tmp_path)
