"""Two-stage spoken digits: the log-mel modality, the digit classifier and its cache, the low-rank class Gaussians,
and the class-conditional smoke recipe end to end (train, sample, render, judge)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import compose_train

from diffkit.modalities.audio.classifier import MelClassifier
from diffkit.modalities.audio.mel import MelModality
from diffkit.modalities.base import DataError
from diffkit.modalities.image.baselines import sample_gaussian
from diffkit.modalities.image.metrics import FeatureClassifier, load_or_train_classifier


def test_mel_modality_shapes_round_trip_and_requests() -> None:
    m = MelModality(num_classes=10, n_mels=16, length=2048)
    assert m.example_shape() == (1, 16, 8) and [s.name for s in m.cond_specs()] == ["label"]
    audio = 0.1 * torch.randn(3, 1, 2048)
    x0, cond = m.encode({"audio": audio, "label": torch.tensor([1, 2, 3])})
    assert x0.shape == (3, 1, 16, 8) and cond["label"].tolist() == [1, 2, 3]
    torch.testing.assert_close(m.decode(x0), m.log_mel(audio[:, 0]))  # standardisation inverted exactly
    assert m.decode(torch.full((1, 1, 16, 8), 100.0)).max() == 0.0  # clamped to ln 1 and the log floor
    assert m.request(12).cond["label"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert m.request(3, label=7).cond["label"].tolist() == [7, 7, 7]
    with pytest.raises(ValueError, match="outside 0..9"):
        m.request(2, label=10)
    with pytest.raises(DataError, match=r"whole clips \[B, 1, 2048\]"):
        m.encode({"audio": torch.zeros(2, 1, 1000), "label": torch.zeros(2)})
    with pytest.raises(ValueError, match="mel_cond"):
        MelModality(mel_cond=True)
    with pytest.raises(ValueError, match="class-conditional"):
        MelModality().request(2, label=3)


def test_mel_classifier_shapes_and_cache(tmp_path: Path) -> None:
    torch.manual_seed(0)
    labels = torch.arange(40) % 4
    mels = torch.randn(40, 1, 12, 16) * 0.3 + labels[:, None, None, None].float()  # separable by level
    model, acc = load_or_train_classifier(tmp_path, mels, labels, mels, labels, model_class=MelClassifier,
                                          epochs=20, feature_dim=8, batch_size=8)  # fmt: skip
    assert acc > 0.9 and model.features(mels).shape == (40, 8) and model(mels).shape == (40, 4)
    cached, cached_acc = load_or_train_classifier(tmp_path, mels, labels, mels, labels, model_class=MelClassifier,
                                                  epochs=20, feature_dim=8, batch_size=8)  # fmt: skip
    assert cached_acc == acc
    torch.testing.assert_close(cached(mels), model(mels))
    meta = json.loads((tmp_path / "classifier.json").read_text())
    assert meta["n_mels"] == 12 and meta["num_classes"] == 4
    images = torch.rand(40, 1, 8, 8)  # another kind of classifier for the same folder: the cache is stale
    other, _ = load_or_train_classifier(tmp_path, images, labels, images, labels, epochs=1, feature_dim=8)
    assert isinstance(other, FeatureClassifier)
    with pytest.raises(ValueError, match=r"\[B, 1, 12, F\]"):
        model.features(torch.zeros(2, 1, 13, 16))


def test_low_rank_gaussian_samples_lie_in_the_span_of_the_data_with_its_covariance() -> None:
    g = torch.Generator().manual_seed(0)
    data = torch.randn(6, 1, 5, 10, generator=g)  # 6 examples in 50 dimensions: a rank-5 sample covariance
    samples = sample_gaussian(data, 20_000, generator=g, low_rank=True).reshape(20_000, -1).double()
    flat = data.reshape(6, -1).double()
    centred = (flat - flat.mean(0)).T  # [50, 6]
    coef = torch.linalg.lstsq(centred, (samples - flat.mean(0)).T).solution
    torch.testing.assert_close(centred @ coef, (samples - flat.mean(0)).T, atol=1e-5, rtol=0)  # in the span
    torch.testing.assert_close(torch.cov(samples.T), torch.cov(flat.T), atol=0.05, rtol=0)
    torch.testing.assert_close(samples.mean(0), flat.mean(0), atol=0.05, rtol=0)


def test_infill_span_fills_and_span_l1_by_hand() -> None:
    from diffkit.modalities.audio.infill import crossfade_fill, middle_frames, silence_fill, span_l1

    assert middle_frames(64, 0.3) == (22, 41) and middle_frames(10, 0.3) == (3, 6) and middle_frames(2, 0.9) == (0, 1)
    with pytest.raises(ValueError, match="fraction"):
        middle_frames(10, 1.0)
    wave = torch.arange(1.0, 13.0)  # 1..12; gap [4, 8): 4 samples, the 4 before (1..4) fade into the 4 after (9..12)
    assert silence_fill(wave, 4, 8).tolist() == [1, 2, 3, 4, 0, 0, 0, 0, 9, 10, 11, 12]
    fade = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0])
    expected = torch.tensor([1.0, 2, 3, 4]) * (1 - fade) + torch.tensor([9.0, 10, 11, 12]) * fade  # 1, 14/3, 25/3, 12
    torch.testing.assert_close(crossfade_fill(wave, 4, 8)[4:8], expected)
    assert crossfade_fill(wave, 4, 8)[:4].tolist() == [1, 2, 3, 4] and wave[4] == 5  # the input is untouched
    with pytest.raises(ValueError, match="needs 4 samples on each side"):
        crossfade_fill(wave, 2, 6)
    a, b = torch.zeros(2, 3, 5), torch.zeros(2, 3, 5)
    a[..., 1] = 2.0  # frame 1 off by 2 everywhere, frame 4 (outside the span) off by 100
    a[..., 4] = 100.0
    assert span_l1(a, b, 1, 3) == pytest.approx(1.0)  # frames 1 and 2: mean of 2 and 0


def test_smoke_recipe_trains_samples_renders_and_judges(spoken_digits_smoke: Path, tmp_path: Path) -> None:
    from diffkit.train import run

    metrics = run(compose_train(["recipe=smoke/audio_digits", f"paths.data_dir={spoken_digits_smoke.parent.parent}"],
                                tmp_path))  # fmt: skip
    for key in ("train/loss", "val/loss", "test/cond_acc", "test/fd", "test/fd_real_train", "test/fd_class_gauss",
                "test/classifier_test_acc", "test/rendered_acc", "test/class_gauss_rendered_acc", "test/infill_mel_l1",
                "test/infill_silence_mel_l1", "test/infill_crossfade_mel_l1", "test/infill_acc",
                "test/infill_crossfade_acc"):  # fmt: skip
        assert math.isfinite(metrics[key]), key
    assert metrics["test/fd"] > max(metrics["test/fd_real_train"], metrics["test/fd_class_gauss"])  # untrained
    wavs = list((tmp_path / "samples").rglob("*.wav"))
    assert wavs and list((tmp_path / "samples").rglob("*.png"))
    from diffkit.modalities.audio.io import read_wav

    assert read_wav(wavs[0], 16000).shape == (16384,)  # rendered whole clips
    from diffkit.sample import run as sample

    out = tmp_path / "sampled"
    sample(compose_train([f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}", "n=2", "steps=2", "+request.label=3",
                          "guidance_scale=2"], out, config_name="sample"))  # fmt: skip
    assert len(list(out.rglob("*.wav"))) == 2 and list(out.glob("samples_step*.png"))


def test_render_with_a_vocoder_checkpoint_and_its_errors(spoken_digits_smoke: Path, tmp_path: Path) -> None:
    from diffkit.train import run

    data_dir = spoken_digits_smoke.parent.parent
    run(compose_train(["recipe=smoke/audio", f"paths.data_dir={data_dir}", "eval.before_training=false",
                       "eval.after_training=false"], tmp_path / "vocoder"))  # fmt: skip
    ckpt = tmp_path / "vocoder" / "checkpoints" / "last.ckpt"
    m = MelModality(num_classes=10, data_dir=str(spoken_digits_smoke), vocoder_ckpt=str(ckpt), vocoder_steps=2)
    mels, labels = m.held_out_mels(2)
    assert mels.shape == (2, 80, 64) and labels.tolist() == [0, 1]
    waves = m.render(mels)
    assert waves.shape == (2, 1, 16384) and torch.isfinite(waves).all() and waves.abs().max() <= 1.0
    with pytest.raises(DataError, match="no such checkpoint"):
        MelModality(vocoder_ckpt=str(tmp_path / "missing.ckpt")).render(mels)
    image_run = tmp_path / "image"
    run(compose_train(["recipe=smoke/image", "eval.before_training=false", "eval.after_training=false"], image_run))
    with pytest.raises(DataError, match="not a mel vocoder"):
        MelModality(vocoder_ckpt=str(image_run / "checkpoints" / "last.ckpt")).render(mels)
