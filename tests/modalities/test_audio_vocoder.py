"""The vocoder's training conditions: frame-aligned crops whose log-mel (from clip context) equals the whole clip's
log-mel frames, the recipe's waveform noise range, and a tiny net that learns from those conditions (seconds)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import compose_train

from diffkit.core.losses import DenoisingLoss
from diffkit.core.precond import EDMPrecond
from diffkit.core.processes import GaussianProcess
from diffkit.core.schedules import log_normal
from diffkit.core.weighting import edm_weight
from diffkit.modalities.audio.adapter import AudioModality
from diffkit.modalities.audio.data import AudioDataModule, ClipDataset
from diffkit.modalities.audio.nets import DiffWave


def _speech_like(n: int, length: int = 16000, seed: int = 0) -> np.ndarray:
    """n int16 clips: a tone in a noise burst in the middle, faint noise at the edges (no two crops alike)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / 16000
    envelope = np.clip(1 - np.abs(t - 0.5) / 0.35, 0, 1)
    clips = [envelope * (0.3 * np.sin(2 * np.pi * (200 + 300 * k) * t) + 0.05 * rng.standard_normal(length))
             + 0.003 * rng.standard_normal(length) for k in range(n)]  # fmt: skip
    return np.round(np.stack(clips) * 32767).astype(np.int16)


def _start(whole: torch.Tensor, crop: torch.Tensor, hop: int) -> int:
    starts = [s for s in range(0, len(whole) - len(crop) + 1, hop) if torch.equal(whole[s : s + len(crop)], crop)]
    assert len(starts) == 1, "a crop starts on exactly one whole frame"
    return starts[0]


def test_a_training_crop_mel_equals_the_whole_clip_mel_frames() -> None:
    modality = AudioModality(length=2048, mel_cond=True)
    clips = _speech_like(4)
    data = ClipDataset(clips, np.zeros(4), 2048, random_crop=True, hop=256, context=512)
    torch.manual_seed(0)
    edge_gap = []
    for i in list(range(4)) * 6:
        item = data[i]
        batch = {k: v[None] for k, v in item.items()}
        assert batch["context"].shape == (1, 1, 2048 + 2 * 512)
        x0, cond = modality.encode(batch)
        whole = torch.from_numpy(clips[i][64 : 64 + 62 * 256].astype(np.float32) / 32767.0)  # centred, 62 frames
        start = _start(whole, x0[0, 0], 256)
        expected = modality.log_mel(whole[None])[..., start // 256 : start // 256 + 8]
        torch.testing.assert_close(cond["mel"], expected, atol=1e-4, rtol=0)
        crop_only = modality.log_mel(x0[:, 0])  # the old condition: the crop alone, reflected at its edges
        edge_gap.append(float((crop_only - expected)[..., 0].abs().mean()))
    assert max(edge_gap) > 0.05  # without context the first frame differs: the mismatch this guards against
    val = ClipDataset(clips, np.zeros(4), 2048, random_crop=False, hop=256, context=512)[0]["audio"][0]
    assert _start(torch.from_numpy(clips[0][64 : 64 + 62 * 256].astype(np.float32) / 32767.0), val, 256) == 27 * 256


def test_log_mel_around_needs_half_an_fft_of_context() -> None:
    modality = AudioModality(length=2048, mel_cond=True)
    with pytest.raises(ValueError, match="n_fft/2 = 512"):
        modality.log_mel.around(torch.zeros(1, 2048 + 2 * 256), 2048)
    wide = torch.randn(1, 2048 + 2 * 700)  # more context than needed is trimmed to n_fft/2
    torch.testing.assert_close(modality.log_mel.around(wide, 2048), modality.log_mel.around(wide[:, 188:-188], 2048))


def test_the_data_module_batches_crops_with_context(tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    folder.mkdir()
    for i, clip in enumerate(_speech_like(4)):
        sf.write(str(folder / f"clip{i}.wav"), clip, 16000, subtype="PCM_16")
    data = AudioDataModule(folder=str(folder), fractions=(0.0, 0.0), length=2048, hop=256, context=512, batch_size=2)
    data.setup()
    batch = next(iter(data.train_dataloader()))
    assert batch["audio"].shape == (2, 1, 2048) and batch["context"].shape == (2, 1, 3072)
    torch.testing.assert_close(batch["context"][..., 512:-512], batch["audio"])


def test_the_vocoder_recipe_sets_a_waveform_noise_range(tmp_path: Path) -> None:
    cfg = compose_train(["recipe=audio/vocoder"], tmp_path)
    assert cfg.modality.envelope  # PriorGrad: the noise ranges below are for y = x / s(mel), of std ~1
    assert (cfg.process.sigma_min, cfg.process.sigma_max) == (1e-3, 15.0)
    density = cfg.loss.sigma_density
    assert (density.p_mean, density.p_std) == (-2.3, 2.4)
    assert cfg.modality.sigma_data == 1.0 and cfg.data.context == 512 and cfg.data.hop == cfg.modality.hop
    assert cfg.backbone.mel_mean == -8.0 and cfg.backbone.mel_std == 4.0


def test_a_tiny_vocoder_learns_a_batch_under_the_recipe_noise() -> None:
    torch.manual_seed(0)
    modality = AudioModality(length=1024, mel_cond=True, sigma_data=0.12)
    t = np.arange(16000) / 16000
    tones = np.stack([0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 330.0)])  # predictable from their mel
    item = ClipDataset(np.round(tones * 32767).astype(np.int16), np.zeros(2), 1024, False, hop=256, context=512)
    batch = {k: torch.stack([item[i][k] for i in range(2)]) for k in ("audio", "context")}
    x0, cond = modality.encode(batch)
    denoiser = EDMPrecond(DiffWave(channels=16, layers=4, dilation_cycle=4, emb_dim=32, n_mels=80), sigma_data=0.12)
    loss = DenoisingLoss(GaussianProcess(1e-4, 2.0), partial(log_normal, p_mean=-4.3, p_std=2.4),
                         partial(edm_weight, sigma_data=0.12))  # fmt: skip
    opt = torch.optim.Adam(denoiser.parameters(), lr=3e-3)
    sigma = torch.full((2,), 0.05)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = loss(denoiser, x0, cond, sigma=sigma, noise=noise).mean()
    for _ in range(150):
        opt.zero_grad(set_to_none=True)
        loss(denoiser, x0, cond).mean().backward()
        opt.step()
    with torch.no_grad():
        after = loss(denoiser, x0, cond, sigma=sigma, noise=noise).mean()
    assert after < 0.5 * before  # the net denoises σ = 0.05 (SNR ~ 2) far better than the skip path alone


def test_held_out_mels_are_the_whole_clip_frames_training_sees(tmp_path: Path) -> None:
    clips = _speech_like(3)
    for i, clip in enumerate(clips):
        (tmp_path / "wav").mkdir(exist_ok=True)
        sf.write(str(tmp_path / "wav" / f"c{i}.wav"), clip, 16000, subtype="PCM_16")
    rows = "".join(f"wav/c{i}.wav,{i},s{i},test\n" for i in range(3))
    (tmp_path / "manifest.csv").write_text("file,label,speaker,split\n" + rows)
    modality = AudioModality(length=2048, mel_cond=True, data_dir=str(tmp_path))
    val = ClipDataset(clips, np.zeros(3), 2048, random_crop=False, hop=256, context=512)
    items = [val[i] for i in range(3)]
    torch.testing.assert_close(modality.held_out(3), torch.stack([it["audio"] for it in items]), atol=1e-4, rtol=0)
    _, cond = modality.encode({k: torch.stack([it[k] for it in items]) for k in ("audio", "context")})
    torch.testing.assert_close(modality.held_out_mel(3), cond["mel"], atol=1e-4, rtol=0)
    torch.testing.assert_close(modality.request(3).cond["mel"], cond["mel"], atol=1e-4, rtol=0)
