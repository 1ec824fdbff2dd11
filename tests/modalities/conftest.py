"""Data fixtures shared by the modality tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from diffkit.modalities.audio import datasets


@pytest.fixture(scope="session")
def spoken_digits_smoke(tmp_path_factory) -> Path:
    """12 speakers × 10 digits, synthesised the way data/spoken_digits/prepare.py does (the smoke recipes' data)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed: the spoken digits need the Debian package espeak-ng")
    out = tmp_path_factory.mktemp("data") / "spoken_digits_smoke" / "out"
    datasets.prepare_digits(out, 12, fractions=(0.1, 0.1))
    return out
