"""The time-series modality: windows and splits, scaling, given entries held, CSV errors, scores, baselines, and
the smoke recipe training, sampling and evaluating end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import compose_train
from scipy.stats import norm

from diffkit.config import build_module, load
from diffkit.modalities.base import DataError
from diffkit.modalities.timeseries.adapter import TimeSeriesModality
from diffkit.modalities.timeseries.baselines import AutoRegressive, interpolate, seasonal_naive
from diffkit.modalities.timeseries.data import TimeSeriesDataModule
from diffkit.modalities.timeseries.datasets import load_csv, load_series, prepare_series
from diffkit.modalities.timeseries.masks import TimeSeriesMasks
from diffkit.modalities.timeseries.metrics import crps_ensemble, probabilistic_scores
from diffkit.train import run


@pytest.fixture(scope="module")
def elnino(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("elnino")
    prepare_series(out, "elnino")
    return out


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "series.csv"
    path.write_text(text)
    return path


def test_windows_have_the_shape_and_splits_do_not_overlap(elnino: Path) -> None:
    data = TimeSeriesDataModule(str(elnino), length=48, batch_size=8)
    data.setup()
    batch = next(iter(data.train_dataloader()))
    x0, cond = TimeSeriesModality(data_dir=str(elnino)).encode(batch)
    assert x0.shape == (8, 1, 48) and x0.dtype == torch.float32 and cond == {}
    series = load_series(elnino)
    spans = {s: (int(d.starts.min()), int(d.starts.max()) + 48) for s, d in data.splits.items()}
    assert spans["train"][1] <= series.n_train <= spans["val"][0] < spans["val"][1] <= spans["test"][0]
    assert spans["test"][1] <= len(series.values) and len(data.splits["train"]) == series.n_train - 48 + 1
    with pytest.raises(DataError, match=r"expected \[B, 1, 48\]"):
        TimeSeriesModality(data_dir=str(elnino)).encode({"series": torch.zeros(2, 1, 40)})


def test_scaling_is_fitted_on_train_and_round_trips(elnino: Path) -> None:
    modality, series = TimeSeriesModality(data_dir=str(elnino)), load_series(elnino)
    train = series.scaled()[: series.n_train]
    assert abs(train.mean()) < 1e-9 and abs(train.std() - 1) < 1e-9
    assert abs(series.scaled()[series.n_train :].mean()) > 1e-3  # val/test do not take part in the fit
    raw = torch.as_tensor(series.values[:48].T[None], dtype=torch.float32)
    torch.testing.assert_close(modality.decode(modality.scale(raw)), raw)


@pytest.mark.parametrize("task", ["forecast", "impute"])
def test_given_points_are_held_exactly(elnino: Path, tmp_path: Path, task: str) -> None:
    cfg = compose_train(["recipe=smoke/timeseries", f"paths.data_dir={elnino.parent}",
                         f"data.data_dir={elnino}", f"modality.task={task}"], tmp_path)  # fmt: skip
    module = build_module(cfg)
    request = module.modality.request(5, window=1)
    assert request.mask.sum() > 0 and (request.mask == 0).any()
    samples = module.sample(5, known=request.known, mask=request.mask, steps=3, generator=torch.Generator())
    given = request.mask.bool()
    assert torch.equal(samples[given], request.known[given])
    assert not torch.equal(samples[~given], request.known[~given])
    truth, mask = module.modality.showcase
    decoded = module.modality.decode(samples)
    assert np.allclose(decoded[0].numpy()[mask > 0], truth[mask > 0], atol=1e-4)  # data units on given points
    if task == "forecast":
        assert mask[:, :36].all() and not mask[:, 36:].any()


def test_csv_with_missing_values_loads(tmp_path: Path) -> None:
    values, names = load_csv(_csv(tmp_path, "time,a,b\n2020-01,1.5,2\n2020-02,,NA\n2020-03,3,4\n"))
    assert names == ("a", "b") and values.shape == (3, 2)
    assert np.isnan(values[1]).all() and values[2].tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    "text, match",
    [
        ("time,a\n1,2\n2,x\n", r"series\.csv, row 3, column 'a': 'x' is not a number"),
        ("time,a,b\n1,2,3\n2,4\n", r"series\.csv, row 3: 2 fields, the header has 3"),
        ("date,a\n1,2\n", r"series\.csv, row 1: no time column 'time'"),
        ("time,a\n1,2\n1,3\n", r"series\.csv, row 3, column 'time': repeated time"),
        ("time,a\n1,inf\n", r"series\.csv, row 2, column 'a': 'inf' is not a finite number"),
        ("", r"series\.csv, row 1: the file is empty"),
    ],
)
def test_bad_csv_names_file_row_and_column(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_csv(_csv(tmp_path, text))


def test_a_csv_becomes_a_prepared_series(tmp_path: Path) -> None:
    t = np.arange(200)
    rows = "".join(f"{i},{np.sin(i / 5):.4f},{'' if i % 17 == 0 else i % 7}\n" for i in t)
    prepare_series(tmp_path / "out", str(_csv(tmp_path, "time,s,c\n" + rows)))
    series = load_series(tmp_path / "out")
    assert series.names == ("s", "c") and (series.n_train, series.n_val) == (140, 20)
    assert np.isnan(series.values[::17, 1]).all()
    assert not any(np.isnan(series.values[s : s + 16]).any() for s in series.windows("train", 16, 1, complete=True))
    data = TimeSeriesDataModule(str(tmp_path / "from_module"), source=str(tmp_path / "series.csv"), length=8)
    data.setup()  # the data module builds the same file from the CSV when it is missing
    assert next(iter(data.train_dataloader()))["series"].shape == (64, 2, 8)
    assert not torch.isnan(data.splits["train"][0]["series"]).any()


def test_crps_is_properscoring_s() -> None:
    properscoring = pytest.importorskip("properscoring")
    rng = np.random.default_rng(0)
    y, ens = rng.standard_normal((3, 7)), rng.standard_normal((3, 7, 50)) * 2 + 0.5
    np.testing.assert_allclose(crps_ensemble(y, ens), properscoring.crps_ensemble(y, ens), rtol=1e-10)


def test_scores_of_a_known_distribution() -> None:
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((4, 1, 500))
    samples = rng.standard_normal((4, 4000, 1, 500))
    scores = probabilistic_scores(samples, truth, np.ones_like(truth))
    gaussian = np.sqrt(2 / np.pi) * np.exp(-(truth**2) / 2) + truth * (2 * norm.cdf(truth) - 1) - 1 / np.sqrt(np.pi)
    assert scores["crps"] == pytest.approx(gaussian.mean(), rel=0.01)  # CRPS of N(0, 1), Gneiting & Raftery eq. 5
    assert scores["coverage50"] == pytest.approx(0.5, abs=0.03) and scores["coverage90"] == pytest.approx(0.9, abs=0.02)
    point = probabilistic_scores(samples[:, :1], truth, np.ones_like(truth))  # one sample: CRPS is the MAE
    assert point["crps"] == pytest.approx(point["mae"])


def test_baselines() -> None:
    season = np.tile(np.arange(12.0), 4)[None]  # [1,48], period 12
    assert np.array_equal(seasonal_naive(season[:, :36], 12, 12), season[:, 36:])
    line = np.arange(10.0)[None]
    given = np.zeros_like(line)
    given[:, [0, 4, 9]] = 1
    assert np.allclose(interpolate(line, given), line)
    rng = np.random.default_rng(0)
    x = np.zeros(3000)
    for t in range(2, len(x)):
        x[t] = 0.6 * x[t - 1] - 0.3 * x[t - 2] + 0.1 * rng.standard_normal()
    ar = AutoRegressive(x[:, None], lags=2)
    intercept, phi, std = ar.params[0]
    assert np.allclose(phi, [0.6, -0.3], atol=0.05) and std == pytest.approx(0.1, rel=0.05)
    paths = ar.sample(x[None, -2:], 1, 20000, rng)
    assert paths.mean() == pytest.approx(intercept + 0.6 * x[-1] - 0.3 * x[-2], abs=0.005)


def test_training_masks() -> None:
    x0 = torch.zeros(64, 2, 48)
    past = TimeSeriesMasks(context=36, forecast=1.0)(x0, torch.Generator().manual_seed(0))
    assert past[..., :36].all() and not past[..., 36:].any()
    points = TimeSeriesMasks(context=36, forecast=0.0, missing=0.5)(x0, torch.Generator().manual_seed(0))
    assert 0.6 < points.mean() < 0.9 and points.shape == x0.shape  # hidden rates uniform in [0, 0.5]


def test_smoke_recipe_trains_samples_and_evaluates(tmp_path: Path) -> None:
    metrics = run(compose_train(["recipe=smoke/timeseries"], tmp_path))
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("train/loss", "val/loss", "test/crps", "test/ar_crps", "test/snaive_crps", "test/coverage90"):
        assert np.isfinite(on_disk[key]) and on_disk[key] == pytest.approx(metrics[key]), key
    assert on_disk["test/n_windows"] == 9 and on_disk["test/n_points"] == 9 * 12
    assert list((tmp_path / "samples" / "final").glob("samples_step*.png"))
    module = load(str(tmp_path / "checkpoints" / "last.ckpt"))  # the checkpoint rebuilds the modality
    request = module.modality.request(3)
    assert module.sample(3, known=request.known, mask=request.mask, steps=2).shape == (3, 1, 48)


def test_fan_charts_go_to_disk_and_to_wandb(elnino: Path, tmp_path: Path, monkeypatch) -> None:
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    modality = TimeSeriesModality(data_dir=str(elnino))
    request = modality.request(20, window=2)
    samples = modality.decode(request.known + torch.randn(request.known.shape) * (1 - request.mask))
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    modality.log_samples(samples, logger, 7, str(tmp_path / "samples"))
    logger.experiment.finish()
    assert (tmp_path / "samples" / "samples_step000007.png").stat().st_size > 10_000
    assert list(tmp_path.glob("wandb/offline-run-*/files/media/images/samples/fan_chart_*.png"))
