"""The audio modality: espeak-ng spoken digits, WAV folders and their errors, the log-mel adapter, the DiffWave net
under the core's samplers, vocoder metrics against hand-computed values, and the smoke recipe end to end."""

from __future__ import annotations

import csv
import json
import math
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import compose_train

from diffkit.core.precond import EDMPrecond
from diffkit.core.samplers.gaussian import (
    count_nfe,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
)
from diffkit.core.samplers.multistep import sample_unipc
from diffkit.core.schedules import karras_sigmas
from diffkit.modalities.audio import datasets
from diffkit.modalities.audio.adapter import AudioModality
from diffkit.modalities.audio.data import AudioDataModule
from diffkit.modalities.audio.io import read_wav
from diffkit.modalities.audio.metrics import griffin_lim, log_mel_l1, mcd, mel_cepstra, mr_stft
from diffkit.modalities.audio.nets import DiffWave
from diffkit.modalities.base import DataError
from diffkit.train import run

ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(not ESPEAK, reason="espeak-ng not installed (apt-get install -y espeak-ng)")


@pytest.fixture
def digits(spoken_digits_smoke: Path) -> Path:
    """The 12-speaker smoke set (tests/modalities/conftest.py), synthesised once per test session."""
    return spoken_digits_smoke


@needs_espeak
def test_prepare_writes_1s_16khz_clips_with_voice_disjoint_splits(digits: Path) -> None:
    rows = list(csv.DictReader(open(digits / "manifest.csv")))
    assert len(rows) == 120 and sorted({int(r["label"]) for r in rows}) == list(range(10))
    info = sf.info(str(digits / rows[0]["file"]))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
    voices = {s: {r["speaker"].split("_s")[0] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert all(voices.values()) and not voices["train"] & (voices["val"] | voices["test"])
    assert not voices["val"] & voices["test"] and len({r["speaker"] for r in rows}) == 12
    clip = read_wav(digits / rows[0]["file"], 16000)
    assert 0.85 < np.abs(clip).max() <= 0.91 and np.abs(clip[:100]).max() < 0.02  # peak 0.9, centred in silence


def test_missing_espeak_is_one_error_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"Debian package espeak-ng .*apt-get install -y espeak-ng"):
        datasets.prepare_digits("/nonexistent/never", 1)


def _wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate, subtype="PCM_16")
    return path


def _tone(n: int = 16000, rate: int = 16000, freq: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def _bad(kind: str, path: Path) -> Path:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_wav":
        path.write_text("this is not audio\n")
    elif kind == "corrupt":
        path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\xff" * 40)
    elif kind == "truncated":
        _wav(path, _tone())
        path.write_bytes(path.read_bytes()[:5000])
    elif kind == "stereo":
        _wav(path, np.stack([_tone(), _tone()], axis=1))
    elif kind == "wrong_rate":
        _wav(path, _tone(8000, 8000), 8000)
    return path


@pytest.mark.parametrize("kind", ["empty", "not_wav", "corrupt", "truncated", "stereo", "wrong_rate"])
def test_each_bad_file_is_one_error_naming_the_file(kind: str, tmp_path: Path) -> None:
    path = _bad(kind, tmp_path / f"bad_{kind}.wav")
    with pytest.raises(DataError, match=f"bad_{kind}.wav") as error:
        read_wav(path, 16000, resample=False)
    assert "\n" not in str(error.value)
    folder = tmp_path / "folder" / "yes"  # the data module names the same file
    _wav(folder / "good.wav", _tone())
    shutil.copy(path, folder / path.name)
    with pytest.raises(DataError, match=f"bad_{kind}.wav"):
        AudioDataModule(folder=str(folder.parent), resample=False, fractions=(0.0, 0.0), batch_size=1).setup()


def test_wav_folders_load_sc09_flat_and_ljspeech_layouts_resampled(tmp_path: Path) -> None:
    sc09 = tmp_path / "sc09"
    for label in ("one", "zero"):
        for speaker in ("aa", "bb", "cc", "dd"):
            _wav(sc09 / label / f"{speaker}_nohash_0.wav", _tone(8000, 8000), 8000)  # 8 kHz: resampled to 16 kHz
    data = AudioDataModule(folder=str(sc09), fractions=(0.0, 0.0), length=16000, batch_size=4)
    data.setup()
    batch = next(iter(data.train_dataloader()))
    assert batch["audio"].shape == (4, 1, 16000) and len(data.splits["train"]) == 8
    assert sorted(set(data.splits["train"].labels.tolist())) == [0, 1]  # labels sorted by name: one=0, zero=1
    audio = read_wav(sc09 / "one" / "aa_nohash_0.wav", 16000, resample=True)
    assert len(audio) == 16000 and abs(np.abs(audio).max() - 0.5) < 0.02
    lj = tmp_path / "lj"
    for i in range(3):
        _wav(lj / "wavs" / f"LJ001-000{i}.wav", _tone(12000))
    (lj / "metadata.csv").write_text("".join(f"LJ001-000{i}|text {i}|text {i}\n" for i in range(3)))
    assert [p.name for p, _ in datasets.folder_files(lj)] == [f"LJ001-000{i}.wav" for i in range(3)]
    with pytest.raises(DataError, match="no .wav files"):
        datasets.folder_files(tmp_path / "sc09" / "..")


def test_adapter_shapes_one_log_mel_and_logging(tmp_path: Path) -> None:
    modality = AudioModality(length=2048, mel_cond=True, num_classes=10)
    batch = {"audio": torch.rand(3, 1, 2048) * 2 - 1, "label": torch.tensor([1, 2, 3])}
    x0, cond = modality.encode(batch)
    assert x0.shape == (3, 1, 2048) and cond["mel"].shape == (3, 80, 8) and cond["label"].tolist() == [1, 2, 3]
    assert [s.name for s in modality.cond_specs()] == ["mel", "label"]
    assert modality.cond_specs()[0].shape == (80, 8) and math.isnan(modality.cond_specs()[0].null)
    tone = torch.as_tensor(_tone(2048))[None]
    direct = torch.log(modality.log_mel.mel(tone).clamp(min=1e-5))[..., :8]  # torchaudio's MelSpectrogram
    torch.testing.assert_close(modality.log_mel(tone), direct)
    assert float(modality.log_mel(torch.zeros(1, 2048)).max()) == pytest.approx(math.log(1e-5))
    with pytest.raises(DataError, match=r"expected \[B, 1, 2048\]"):
        modality.encode({"audio": torch.zeros(2, 1, 1000)})
    assert modality.decode(torch.full((1, 1, 4), 3.0)).max() == 1.0
    modality.log_samples(batch["audio"], None, 7, out_dir=str(tmp_path))
    assert len(list((tmp_path / "samples_step000007").glob("*.wav"))) == 3
    assert (tmp_path / "samples_step000007.png").stat().st_size > 1000


SAMPLERS = {"euler": sample_euler, "heun": sample_heun, "dpmpp_2m": sample_dpmpp_2m, "unipc": sample_unipc,
            "euler_ancestral": sample_euler_ancestral, "ddpm": partial(sample_ddpm, variance="small")}  # fmt: skip


@pytest.mark.parametrize("name", SAMPLERS)
def test_diffwave_passes_the_core_sampler_contract(name: str) -> None:
    torch.manual_seed(0)
    net = DiffWave(channels=8, layers=4, dilation_cycle=2, emb_dim=32, n_mels=80)
    torch.nn.init.normal_(net.head.weight, std=0.1)  # a non-trivial output (the head starts at zero)
    denoiser, sampler = EDMPrecond(net, sigma_data=0.13), SAMPLERS[name]
    mel = {"mel": torch.randn(2, 80, 2)}
    sigmas = karras_sigmas(3, 0.002, 80.0)
    calls = []

    def counted(x, sigma, cond=None):
        calls.append(1)
        assert sigma.shape == (2,) and cond is mel
        return denoiser(x, sigma, cond)

    x = torch.randn(2, 1, 512, generator=torch.Generator().manual_seed(1)) * 80
    with torch.no_grad():
        a = sampler(counted, x, sigmas, cond=mel, generator=torch.Generator().manual_seed(2))
        b = sampler(denoiser, x, sigmas, cond=mel, generator=torch.Generator().manual_seed(2))
        other = sampler(
            denoiser, x, sigmas, cond={"mel": torch.randn(2, 80, 2)}, generator=torch.Generator().manual_seed(2)
        )
    assert a.shape == x.shape and a.dtype == x.dtype and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.allclose(a, other)  # seeded; the mel reaches the net
    assert len(calls) == count_nfe(sampler, sigmas) and net.cond_keys == {"mel"}
    with pytest.raises(ValueError, match="expected \\[B, 80, 2\\]"):
        net(x, torch.zeros(2), {"mel": torch.randn(2, 80, 3)})
    null = net(x, torch.zeros(2), {"mel": torch.full((2, 80, 2), float("nan"))})  # the declared null: no mel
    torch.testing.assert_close(null, net(x, torch.zeros(2), None))


def test_metrics_match_hand_computed_values() -> None:
    pytest.importorskip("auraloss", reason='the audio extra: pip install -e ".[audio]"')
    noise = torch.randn(1, 1, 16384, generator=torch.Generator().manual_seed(0)) * 0.1
    assert mr_stft(noise, noise) == pytest.approx(0.0, abs=1e-6)
    # input 2x vs target x: spectral convergence ||X - 2X|| / ||X|| = 1, log-magnitude L1 = ln 2, per resolution.
    assert mr_stft(2 * noise, noise) == pytest.approx(1.0 + math.log(2.0), rel=1e-3)
    real = torch.randn(2, 80, 10)
    assert log_mel_l1(real + 0.25, real) == pytest.approx(0.25, rel=1e-5)
    assert mcd(real + 3.0, real) == pytest.approx(0.0, abs=1e-4)  # a level change moves only c0 (float32 input)
    m = torch.arange(80, dtype=torch.float64)
    basis = torch.cos(math.pi / 80 * (m + 0.5) * 1) * math.sqrt(2 / 80)  # orthonormal DCT-II row 1
    # Δ log-mel = a·basis -> Δc_1 = 2a (log power), MCD = 10/ln10 · sqrt(2 (2a)²).
    a = 0.3
    assert mcd(real + a * basis[:, None].float(), real) == pytest.approx(10 / math.log(10) * math.sqrt(8) * a, rel=1e-4)
    # The cepstra are scipy's orthonormal DCT-II of the log power over the mel axis, c_1..c_24.
    scipy_fft = pytest.importorskip("scipy.fft")
    expected = scipy_fft.dct(2.0 * real.double().numpy(), type=2, norm="ortho", axis=-2)[:, 1:25]
    assert torch.allclose(mel_cepstra(real), torch.from_numpy(expected), atol=1e-5)


def test_griffin_lim_rebuilds_a_tone_from_its_log_mel() -> None:
    modality = AudioModality(length=4096)
    tone = torch.as_tensor(_tone(4096))[None, None]
    mel = modality.log_mel(tone[:, 0])
    rebuilt = griffin_lim(mel, modality, n_iter=32)
    assert rebuilt.shape == tone.shape
    assert log_mel_l1(modality.log_mel(rebuilt[:, 0])[..., 2:-2], mel[..., 2:-2]) < 0.5  # edges: no context


@needs_espeak
def test_smoke_recipe_trains_samples_and_evaluates(digits: Path, tmp_path: Path) -> None:
    pytest.importorskip("auraloss", reason='the audio extra: pip install -e ".[audio]"')  # the evaluator's MR-STFT
    metrics = run(compose_train(["recipe=smoke/audio", f"paths.data_dir={digits.parent.parent}"], tmp_path))
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("train/loss", "val/loss", "test/mr_stft", "test/log_mel_l1", "test/mcd", "test/gl100_mcd"):
        assert np.isfinite(on_disk[key]) and on_disk[key] == pytest.approx(metrics[key]), key
    assert list((tmp_path / "samples").rglob("*.wav")) and list((tmp_path / "samples").rglob("*.png"))
    from diffkit.sample import run as sample  # the sample CLI decodes with the request's mel (envelope: true)

    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    sample(compose_train([f"ckpt={ckpt}", "n=2", "steps=2"], tmp_path / "sampled", config_name="sample"))
    assert len(list((tmp_path / "sampled").rglob("*.wav"))) == 2
