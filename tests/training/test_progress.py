"""track_slices yields every batch in order and reports each one."""

import logging

import pytest

from diffkit.training.progress import track_slices


def test_yields_all_slices_and_logs_each_batch(caplog: pytest.LogCaptureFixture) -> None:
    slices = [slice(0, 5), slice(5, 10), slice(10, 12)]
    with caplog.at_level(logging.INFO, logger="diffkit.training.progress"):
        assert list(track_slices(slices, "sampling")) == slices
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" done")[0] for line in lines] == ["sampling: 5/12", "sampling: 10/12", "sampling: 12/12"]
    assert lines[-1].endswith("about 0 s left")


def test_no_slices_no_output(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="diffkit.training.progress"):
        assert list(track_slices([], "sampling")) == []
    assert not caplog.records
