"""The end-of-run summary: headline numbers beside their baselines, the run's files, the next commands."""

from __future__ import annotations

from pathlib import Path

from diffkit.modalities.base import Headline
from diffkit.training.summary import (
    evaluator_headlines,
    format_number,
    format_seconds,
    headline_line,
    process_seconds,
    run_summary,
)

FD = Headline("digits-FD", "fd_test_size", (("real test images", "fd_real_test"),), note="179 samples")
PSNR = Headline("inpainting PSNR", "inpaint_mean_psnr", (("mean fill", "meanfill_psnr"),), False, " dB")


def test_headline_line_puts_the_value_beside_its_baselines_and_the_untrained_model() -> None:
    metrics = {"test/fd_test_size": 27.71, "test/fd_real_test": 13.382, "init/fd_test_size": 767.7}
    line = headline_line(metrics, FD)
    assert line == "digits-FD 27.71 (lower is better; real test images 13.38, untrained model 767.7; 179 samples)"
    psnr = headline_line({"test/inpaint_mean_psnr": 15.3, "test/meanfill_psnr": 14.2}, PSNR)
    assert psnr == "inpainting PSNR 15.3 dB (higher is better; mean fill 14.2 dB)"
    assert headline_line({"init/fd_test_size": 1.0}, FD) is None  # no final number, no line


def test_run_summary_names_the_files_the_numbers_and_the_next_commands(tmp_path: Path) -> None:
    (tmp_path / "samples" / "final").mkdir(parents=True)
    (tmp_path / "samples" / "final" / "grid.png").write_bytes(b"")
    (tmp_path / "metrics.json").write_text("{}")
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"")
    recipes = tmp_path / "recipes"
    (recipes / "image").mkdir(parents=True)
    for name in ("digits", "fashion", "cifar"):
        (recipes / "image" / f"{name}.yaml").write_text("")
    metrics = {"test/fd_test_size": 5.1, "test/fd_real_test": 13.4, "test/inpaint_mean_psnr": 15.0}
    where = {"out_dir": tmp_path, "checkpoint": ckpt, "recipe": "image/digits", "recipes_dir": recipes}
    text = run_summary(metrics, [FD, PSNR], seconds=491.6, **where)
    lines = text.splitlines()
    assert lines[0] == f"Done in 8 min 12 s. Run folder: {tmp_path}"
    assert any(line.split() == ["samples/final/grid.png", "the", "final", "model's", "samples"] for line in lines)
    assert any(line.strip().startswith("metrics.json") for line in lines)
    assert any(line.strip().startswith("checkpoints/last.ckpt") for line in lines)
    assert "  digits-FD 5.1 (lower is better; real test images 13.4; 179 samples)" in lines
    assert "  inpainting PSNR 15 dB (higher is better)" in lines
    assert f"python -m diffkit.sample ckpt={ckpt} n=64" in text
    assert "recipe=image/<name>   # <name>: cifar, fashion" in text


def test_run_summary_without_headlines_shows_the_losses(tmp_path: Path) -> None:
    text = run_summary({"val/loss": 1.7796, "train/loss": 1.8}, evaluator_headlines(None), out_dir=tmp_path, seconds=3)
    assert text.splitlines() == [
        f"Done in 3 s. Run folder: {tmp_path}",
        "Results of the final model:",
        "  validation loss 1.78 (lower is better)",
    ]


def test_evaluator_headlines_reads_the_optional_method() -> None:
    class Declares:
        def headlines(self) -> list[Headline]:
            return [FD]

    assert evaluator_headlines(Declares()) == (FD,)
    assert evaluator_headlines(object()) == ()


def test_format_seconds_and_process_age() -> None:
    assert [format_seconds(s) for s in (41.6, 491.6, 3780)] == ["42 s", "8 min 12 s", "1 h 03 min"]
    age = process_seconds()
    assert age is None or 0 < age < 24 * 3600  # Linux: this test process's age


def test_format_number_shows_rounding_noise_as_zero() -> None:
    assert [format_number(v) for v in (13.3812, 0.507, 1234.4, -8.349e-16, 1e-6)] == ["13.38", "0.507", "1,234", "0",
                                                                                       "1e-06"]  # fmt: skip
