"""The latent-diffusion pieces: the KL autoencoder, its scale factor in the checkpoint, the latent modality."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers import ROOT

from diffkit.modalities.base import DataError
from diffkit.modalities.image.adapter import ImageModality
from diffkit.modalities.image.masks import half_mask
from diffkit.modalities.latent.adapter import LatentEvaluator, LatentModality, latent_mask, load_autoencoder
from diffkit.nets.autoencoder import KLAutoencoder, kl_to_standard_normal

SMOKE_VAE = ROOT / "tests" / "fixtures" / "vae_digits_smoke.ckpt"  # recipe=smoke/vae trainer.max_steps=60


def test_autoencoder_shapes_and_latent_size() -> None:
    ae = KLAutoencoder(in_channels=1, latent_channels=4, channels=(8, 16, 16), size=28)
    x = torch.randn(3, 1, 28, 28)
    mean, logvar = ae.encode(x)
    assert mean.shape == logvar.shape == (3, 4, 7, 7) == (3, *ae.latent_shape())
    recon, m2, _ = ae(x, generator=torch.Generator().manual_seed(0))
    assert recon.shape == x.shape and torch.equal(m2, mean)
    with pytest.raises(ValueError, match="not divisible"):
        KLAutoencoder(channels=(8, 16, 16), size=30)
    with pytest.raises(ValueError, match="expected"):
        ae.decode(torch.zeros(1, 4, 8, 8))


def test_kl_term_matches_the_closed_form_and_torch_distributions() -> None:
    mean, logvar = torch.randn(5, 4, 3, 3), torch.randn(5, 4, 3, 3)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).flatten(1).sum(1)
    torch.testing.assert_close(kl_to_standard_normal(mean, logvar), expected)
    assert torch.all(kl_to_standard_normal(torch.zeros(2, 4), torch.zeros(2, 4)) == 0)


def test_trained_smoke_autoencoder_reconstructs_and_stores_its_scale_factor() -> None:
    ae = load_autoencoder(SMOKE_VAE)
    scale = float(ae.scale_factor)
    assert math.isfinite(scale) and scale != 1.0  # measured on the validation split, not the initial value
    from diffkit.modalities.image.data import DigitsDataModule

    data = DigitsDataModule(data_dir=str(ROOT / "data" / "digits" / "out"))
    data.prepare_data()
    x = data.arrays("test")[0][:200]
    recon = ae.decode(ae.encode(x)[0])
    err, var = (recon - x).square().mean(), (x - x.mean()).square().mean()
    assert err < 0.5 * var  # decode(encode(x)) much closer to x than the mean image is
    assert not any(p.requires_grad for p in ae.parameters()) and not ae.training


def test_latent_modality_round_trip_and_errors(tmp_path: Path) -> None:
    inner = ImageModality(size=8, num_classes=10)
    modality = LatentModality(str(SMOKE_VAE), inner)
    batch = {"image": torch.rand(4, 1, 8, 8) * 2 - 1, "label": torch.arange(4)}
    z, cond = modality.encode(batch)
    assert z.shape == (4, *modality.example_shape()) and torch.equal(cond["label"], batch["label"])
    assert modality.decode(z).dtype == torch.uint8 and modality.cond_specs() == inner.cond_specs()
    with pytest.raises(DataError, match="28x28|reads"):
        LatentModality(str(SMOKE_VAE), ImageModality(size=28))
    with pytest.raises(DataError, match="not found"):
        LatentModality(str(tmp_path / "missing.ckpt"), inner)
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(DataError, match="not an autoencoder checkpoint"):
        LatentModality(str(bad), inner)


def test_a_latent_cell_is_known_when_all_its_pixels_are() -> None:
    bottom = latent_mask(half_mask((2, 1, 28, 28), "bottom"), (7, 7))
    assert bottom.shape == (2, 1, 7, 7) and bottom[0, 0, :, 0].tolist() == [1, 1, 1, 0, 0, 0, 0]  # row 3: px 12-15
    centre = latent_mask(half_mask((1, 1, 28, 28), "center"), (7, 7))[0, 0]  # pixels 7..20 hidden
    assert centre[0].tolist() == [1] * 7 and centre[3].tolist() == [1, 0, 0, 0, 0, 0, 1]
    with pytest.raises(DataError, match="does not tile"):
        latent_mask(torch.ones(1, 1, 28, 28), (6, 6))


def test_latent_requests_and_evaluation_map_given_pixels_to_latent_cells(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray((torch.rand(8, 8) * 255).to(torch.uint8).numpy()).save(tmp_path / "digit.png")
    modality = LatentModality(str(SMOKE_VAE), ImageModality(size=8))
    request = modality.request(3, known=str(tmp_path / "digit.png"), hide="bottom")
    assert request.known.shape == request.mask.shape == (3, *modality.example_shape())  # 4 x 4 x 4 latents
    assert request.mask[0, 0, :, 0].tolist() == [1, 1, 0, 0]  # 2-pixel cells: rows 0-3 known

    class Inner:  # an inner evaluator that only completes the bottom half of its images
        def run(self, sample_fn, inpaint_fn):
            target = torch.rand(2, 1, 8, 8) * 2 - 1
            mask = half_mask(tuple(target.shape))
            return {"filled": inpaint_fn(target * mask, mask, None), "target": target, "mask": mask}

    seen = {}

    def latent_inpaint(known, mask, cond):
        seen.update(known=known, mask=mask)
        return torch.where(mask.bool(), known, torch.zeros_like(known))

    out = LatentEvaluator(Inner(), str(SMOKE_VAE)).run(lambda n, c: None, latent_inpaint)
    assert seen["known"].shape == (2, 4, 4, 4) and seen["mask"][0, :, 2:].sum() == 0
    keep = out["mask"].bool()
    assert torch.equal(out["filled"][keep], out["target"][keep])  # the given pixels are put back exactly
    assert out["filled"].shape == (2, 1, 8, 8)
