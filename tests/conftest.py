"""Shared fixtures: compose the Hydra training config the way `python -m diffkit.train` does."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import compose_train
from omegaconf import DictConfig


@pytest.fixture
def smoke_cfg(tmp_path: Path) -> DictConfig:
    """The CPU smoke recipe for the image modality, writing into a temporary run folder."""
    return compose_train(["recipe=smoke/image"], tmp_path)
