"""PriorGrad's data-dependent prior as the audio modality's change of variables y = x / s(mel): exact round trip,
silence at the floor, s from the mel alone, one clear error when decode is not given the mel, isotropic by default."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffkit.modalities.audio.adapter import AudioModality
from diffkit.modalities.audio.data import ClipDataset
from diffkit.modalities.audio.envelope import frames_to_samples, mel_envelope
from diffkit.modalities.base import DataError

FLOOR = 1e-6


def _batch(n: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Frame-aligned crops with clip context of clips that are a tone burst in digital silence (as the digits are)."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    clips = []
    for k in range(n):
        on = np.abs(t - 0.5) < 0.08  # the centred crop starts and ends in silence, with floor frames at its start
        clips.append(on * (0.3 * np.sin(2 * np.pi * (200 + 150 * k) * t) + 0.02 * rng.standard_normal(len(t))))
    data = ClipDataset(np.round(np.stack(clips) * 32767).astype(np.int16), np.zeros(n), 4096, random_crop=False,
                       hop=256, context=512)  # fmt: skip
    items = [data[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in ("audio", "context")}


def _modality(**kwargs) -> AudioModality:
    return AudioModality(length=4096, mel_cond=True, envelope=True, envelope_floor=FLOOR, **kwargs)


def test_encode_then_decode_is_the_identity_with_the_envelope() -> None:
    modality, batch = _modality(), _batch()
    y, cond = modality.encode(batch)
    assert not torch.equal(y, batch["audio"])  # the model space is rescaled
    torch.testing.assert_close(modality.decode(y, cond), batch["audio"], atol=1e-6, rtol=1e-6)
    speech = modality.scale_of(cond) > FLOOR
    assert not bool(speech.all())  # the crops hold floor frames too
    assert 0.3 < float(y[speech].std()) < 3.0  # unit-ish where the mel has energy


def test_digital_silence_maps_to_the_floor() -> None:
    modality = _modality()
    silent = modality.scale_of({"mel": modality.log_mel(torch.zeros(2, 4096))})
    assert silent.shape == (2, 1, 4096) and bool((silent == FLOOR).all())
    _, cond = modality.encode({"audio": torch.zeros(1, 1, 4096)})
    assert bool((modality.scale_of(cond) == FLOOR).all())
    tone = torch.zeros(1, 4096)
    tone[:, 3072:] = 0.3 * torch.sin(torch.arange(1024) * 0.2)  # speech in the last quarter only
    s = modality.scale_of({"mel": modality.log_mel(tone)})
    assert bool((s[..., :1536] == FLOOR).all()) and float(s[..., 3584:].min()) > 0.05  # far from it: the floor


def test_the_envelope_comes_from_the_mel_alone() -> None:
    modality, batch = _modality(), _batch()
    y, cond = modality.encode(batch)
    again = {"mel": cond["mel"].clone()}  # only the condition, no audio
    s = modality.scale_of(again)
    torch.testing.assert_close(y * s, batch["audio"], atol=1e-6, rtol=1e-6)
    direct = mel_envelope(cond["mel"], hop=256, scale=modality.envelope_scale, floor=FLOOR, log_floor=1e-5)
    assert torch.equal(s, direct)


def test_the_envelope_follows_the_frames_rms() -> None:
    modality, batch = _modality(), _batch()
    _, cond = modality.encode(batch)
    s, x = modality.scale_of(cond), batch["audio"]
    hop_rms = x.reshape(len(x), 16, 256).pow(2).mean(-1).sqrt()
    centre_s = s[..., 128::256].reshape(len(x), 16)  # s in the middle of each hop
    loud = hop_rms > 0.05
    ratio = (centre_s[loud] / hop_rms[loud]).median()
    assert 0.5 < float(ratio) < 2.0  # the fitted scale maps mel energy to the waveform's level


def test_frames_are_interpolated_between_their_centres() -> None:
    up = frames_to_samples(torch.tensor([[0.0, 1.0, 3.0]]), hop=4)
    assert up.shape == (1, 1, 12)
    torch.testing.assert_close(up[0, 0, :9], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0]))
    assert bool((up[0, 0, 8:] == 3.0).all())  # held after the last centre


def test_decode_without_the_mel_is_one_clear_error() -> None:
    modality, batch = _modality(), _batch(1)
    y, _ = modality.encode(batch)
    with pytest.raises(DataError, match=r'"mel" entry'):
        modality.decode(y)
    with pytest.raises(DataError, match=r'"mel" entry.*\[\'label\'\]'):
        modality.decode(y, {"label": torch.zeros(1)})
    with pytest.raises(ValueError, match="mel_cond: true"):
        AudioModality(length=4096, envelope=True)


def test_isotropic_by_default_ignores_the_condition() -> None:
    modality, batch = AudioModality(length=4096, mel_cond=True), _batch(2)
    x0, cond = modality.encode(batch)
    assert not modality.envelope and torch.equal(x0, batch["audio"])
    assert torch.equal(modality.decode(x0), modality.decode(x0, cond))
