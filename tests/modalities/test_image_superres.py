"""Super-resolution: the "low_res" condition entry, its input encoder, requests, the evaluator and the smoke recipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import ROOT, compose_train
from PIL import Image

from diffkit.modalities.base import DataError
from diffkit.modalities.image.adapter import ImageModality
from diffkit.modalities.image.resize import downsample, upsample
from diffkit.modalities.image.superres import SuperResolutionEvaluator
from diffkit.nets.encoders import LowResChannels
from diffkit.nets.unet import UNet
from diffkit.train import run


def test_low_res_channels_upsample_and_concatenate() -> None:
    encoder = LowResChannels(1)
    x, low = torch.randn(3, 1, 8, 8), torch.randn(3, 1, 4, 4)
    out = encoder(x, {"low_res": low})
    assert encoder.out_channels == 2 and out.shape == (3, 2, 8, 8)
    torch.testing.assert_close(out[:, :1], x)
    torch.testing.assert_close(out[:, 1:], F.interpolate(low, size=(8, 8), mode="bicubic", align_corners=False))


def test_low_res_channels_read_a_larger_pixel_entry_into_a_smaller_latent() -> None:
    encoder = LowResChannels(4, channels=1)  # 4x7x7 latent, 1x14x14 low-res pixels
    out = encoder(torch.randn(2, 4, 7, 7), {"low_res": torch.randn(2, 1, 14, 14)})
    assert encoder.out_channels == 5 and out.shape == (2, 5, 7, 7)


def test_null_or_absent_low_res_reads_the_learned_null() -> None:
    encoder = LowResChannels(1)
    with torch.no_grad():
        encoder.null.fill_(0.25)
    x, low = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 4, 4)
    low[1] = float("nan")  # the declared null of the entry
    out = encoder(x, {"low_res": low})
    assert torch.isfinite(out).all() and bool((out[1, 1] == 0.25).all()) and not bool((out[0, 1] == 0.25).all())
    assert bool((encoder(x, None)[:, 1] == 0.25).all())


def test_a_wrong_shape_low_res_gives_one_clear_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"cond\['low_res'\] has shape \(2, 3, 4, 4\)"):
        LowResChannels(1)(torch.randn(2, 1, 8, 8), {"low_res": torch.randn(2, 3, 4, 4)})
    with pytest.raises(ValueError, match="low_res"):
        LowResChannels(1)(torch.randn(2, 1, 8, 8), {"low_res": torch.randn(2, 16)})


def test_unet_reads_the_low_res_entry() -> None:
    net = UNet(1, channels=8, channel_mult=(1, 2), num_res_blocks=1, inputs=LowResChannels)
    assert net.cond_keys == {"low_res"}
    x = torch.randn(2, 1, 8, 8)
    assert net(x, torch.zeros(2), {"low_res": downsample(x, 2)}).shape == (2, 1, 8, 8)


def test_the_condition_entry_is_x0_average_pooled() -> None:
    modality = ImageModality(size=8, low_res_factor=2)
    x0 = torch.rand(5, 1, 8, 8) * 2 - 1
    _, cond = modality.encode({"image": x0, "label": torch.zeros(5, dtype=torch.long)})
    torch.testing.assert_close(cond["low_res"], F.avg_pool2d(x0, 2))
    (spec,) = modality.cond_specs()
    assert spec.name == "low_res" and spec.shape == (1, 4, 4) and spec.null != spec.null  # NaN
    with pytest.raises(DataError, match="low_res_factor"):
        ImageModality(size=8, low_res_factor=3)


def test_a_low_res_request_from_a_png(tmp_path: Path) -> None:
    pixels = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    Image.fromarray(pixels).save(tmp_path / "small.png")
    request = ImageModality(size=8, low_res_factor=2).request(3, low_res=str(tmp_path / "small.png"))
    assert request.cond["low_res"].shape == (3, 1, 4, 4) and request.known is None
    torch.testing.assert_close(request.cond["low_res"][2, 0], torch.from_numpy(pixels).float() / 127.5 - 1)
    with pytest.raises(DataError, match="is 4x4; this model upscales 14x14"):
        ImageModality(size=28, low_res_factor=2).request(1, low_res=str(tmp_path / "small.png"))
    with pytest.raises(DataError, match="low_res_factor"):
        ImageModality(size=8).request(1, low_res=str(tmp_path / "small.png"))
    with pytest.raises(DataError, match="request.low_res"):
        ImageModality(size=8, low_res_factor=2).request(1)  # no PNG and no held-out data for the showcase


class _Data:
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def prepare_data(self) -> None:
        pass

    def arrays(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images, torch.zeros(len(self.images), dtype=torch.long)


def test_the_evaluator_scores_the_models_own_condition_against_bicubic() -> None:
    images = torch.rand(6, 1, 16, 16) * 2 - 1
    evaluator = SuperResolutionEvaluator(_Data(images), factor=2, n_images=4, k=3)
    seen = {}

    def oracle(n: int, cond: dict) -> torch.Tensor:  # returns the real images: the best possible score
        seen.update(n=n, low=cond["low_res"])
        return images[:4].repeat(3, 1, 1, 1)

    metrics = evaluator.run(oracle)
    assert seen["n"] == 12 and torch.equal(seen["low"][:4], downsample(images[:4], 2))
    assert metrics["sr_ssim"] == pytest.approx(1.0) and metrics["sr_psnr"] > 60
    bicubic = upsample(downsample(images[:4], 2), (16, 16))
    psnr = 10 * torch.log10(4 / (bicubic - images[:4]).pow(2).mean())  # data range 2: model space [-1, 1]
    assert metrics["bicubic_psnr"] == pytest.approx(float(psnr), rel=1e-4)
    assert {"nearest_ssim", "sr_mean_psnr", "consistency_psnr"} <= set(metrics)


def test_the_sr_smoke_recipe_trains_samples_and_takes_a_png_request(tmp_path: Path) -> None:
    metrics = run(compose_train(["recipe=smoke/sr"], tmp_path / "run"))
    for key in ("test/sr_ssim", "test/sr_mean_psnr", "test/bicubic_psnr", "test/nearest_ssim"):
        assert metrics[key] == metrics[key], key  # present, not NaN
    assert list((tmp_path / "run" / "samples" / "final").glob("*.png"))  # the showcase: held-out low-res inputs
    Image.fromarray(np.full((4, 4), 200, dtype=np.uint8)).save(tmp_path / "small.png")
    cmd = [sys.executable, "-m", "diffkit.sample", f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}", "n=4",
           f"+request.low_res={tmp_path / 'small.png'}", f"hydra.run.dir={tmp_path / 'sample'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "sample").glob("samples_step*.png"))
