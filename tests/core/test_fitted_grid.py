"""fitted_sigmas: a diffkit.fit_grid file is used exactly at its own step count and resampled otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from diffkit.core.samplers import fitted_sigmas, interpolated_sigmas


def test_exact_at_its_step_count_and_interpolated_otherwise(tmp_path: Path) -> None:
    sigmas = [80.0, 7.0, 0.9, 0.05, 0.002, 0.0]
    path = tmp_path / "dpmpp_2m_5.json"
    path.write_text(json.dumps({"sampler": "dpmpp_2m", "steps": 5, "sigmas": sigmas}))
    assert torch.equal(fitted_sigmas(5, str(path)), torch.tensor(sigmas))
    assert torch.allclose(fitted_sigmas(9, str(path)), interpolated_sigmas(9, knots=sigmas))


@pytest.mark.parametrize("content", ["not json", json.dumps({"steps": 5}), json.dumps({"sigmas": 3})])
def test_a_bad_file_names_itself(tmp_path: Path, content: str) -> None:
    path = tmp_path / "grid.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="grid.json"):
        fitted_sigmas(5, str(path))
    with pytest.raises(ValueError, match="missing.json"):
        fitted_sigmas(5, str(tmp_path / "missing.json"))
