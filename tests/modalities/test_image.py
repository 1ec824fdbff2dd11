"""Image modality on the real digits: data preparation, loading errors, DataModule, adapter, metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffkit.modalities.base import DataError, Request
from diffkit.modalities.image.adapter import ImageModality, make_grid, save_grid
from diffkit.modalities.image.data import DigitsDataModule
from diffkit.modalities.image.datasets import load_digits_split, prepare_digits, to_model_space, to_pixels
from diffkit.modalities.image.metrics import (
    frechet_distance,
    half_mask,
    inpainting_scores,
    load_or_train_classifier,
    mean_fill,
    mean_set_fd,
)


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory) -> Path:
    return prepare_digits(tmp_path_factory.mktemp("digits"))


def test_prepare_is_deterministic_disjoint_and_stratified(digits_npz: Path, tmp_path: Path) -> None:
    again = prepare_digits(tmp_path)
    sizes = {}
    for split in ("train", "val", "test"):
        a_img, a_lab = load_digits_split(digits_npz, split)
        b_img, b_lab = load_digits_split(again, split)
        assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
        assert a_img.dtype == np.uint8 and a_img.shape[1:] == (8, 8) and a_img.max() <= 16
        sizes[split] = len(a_img)
        assert np.bincount(a_lab, minlength=10).min() >= 0.08 * len(a_lab)  # every class present
    assert sizes == {"train": 1439, "val": 179, "test": 179}
    flat = {s: {img.tobytes() + bytes([lab]) for img, lab in zip(*load_digits_split(digits_npz, s))} for s in sizes}
    assert sum(len(v) for v in flat.values()) >= 1797 - 20  # a few true duplicate scans exist in the source
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temp files


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_digits_split(tmp_path / "missing.npz", "train")
    bad = tmp_path / "digits.npz"
    bad.write_bytes(b"not a zip archive at all")
    with pytest.raises(ValueError, match="digits.npz"):
        load_digits_split(bad, "train")
    np.savez(tmp_path / "other.npz", foo=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz"):
        load_digits_split(tmp_path / "other.npz", "train")
    with pytest.raises(ValueError, match="split"):
        load_digits_split(bad, "holdout")


def test_model_space_round_trip() -> None:
    grey = torch.arange(17, dtype=torch.uint8).reshape(1, 17, 1).numpy()
    x = to_model_space(grey)
    assert x.shape == (1, 1, 17, 1) and x.min() == -1 and x.max() == 1
    modality = ImageModality(grey_levels=16)
    assert torch.equal(modality.decode(x), to_pixels(x))
    assert to_pixels(torch.tensor([-3.0, 0.0, 3.0])).tolist() == [0, 128, 255]


def test_datamodule_batches(digits_npz: Path) -> None:
    dm = DigitsDataModule(data_dir=str(digits_npz.parent), batch_size=32)
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (32, 1, 8, 8) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["image"].min() >= -1 and batch["image"].max() <= 1
    assert len(dm.val_dataloader().dataset) == 179


def test_datamodule_builds_missing_data(tmp_path: Path) -> None:
    dm = DigitsDataModule(data_dir=str(tmp_path / "new"))
    dm.prepare_data()
    assert (tmp_path / "new" / "digits.npz").is_file()


def test_adapter_encode_validates_and_conditions() -> None:
    batch = {"image": torch.zeros(4, 1, 8, 8), "label": torch.arange(4)}
    x0, cond = ImageModality().encode(batch)
    assert x0 is batch["image"] and cond == {}
    _, cond = ImageModality(num_classes=10).encode(batch)
    assert torch.equal(cond["label"], batch["label"])
    with pytest.raises(ValueError, match=r"\(4, 1, 16, 16\).*\[B, 1, 8, 8\]"):
        ImageModality().encode({"image": torch.zeros(4, 1, 16, 16), "label": torch.arange(4)})
    (spec,) = ImageModality(num_classes=10).cond_specs()
    assert (spec.name, spec.dtype, spec.null) == ("label", torch.long, -1) and ImageModality().cond_specs() == ()
    assert ImageModality(num_classes=10).request(12).cond["label"].tolist()[9:] == [9, 0, 1]
    assert ImageModality(num_classes=10).request(3, label=7).cond["label"].tolist() == [7, 7, 7]
    assert ImageModality().request(12) == Request()
    with pytest.raises(DataError, match="class-conditional"):
        ImageModality().request(2, label=1)


def test_a_request_with_a_known_image_holds_its_visible_half(tmp_path: Path) -> None:
    from PIL import Image

    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    request = ImageModality().request(3, known=str(tmp_path / "digit.png"), hide="bottom")
    assert request.known.shape == request.mask.shape == (3, 1, 8, 8)
    assert bool((request.mask[..., :4, :] == 1).all()) and not bool(request.mask[..., 4:, :].any())
    torch.testing.assert_close(request.known[1, 0, :4], torch.from_numpy(pixels[:4]).float() / 127.5 - 1)
    with pytest.raises(DataError, match="8x8"):
        ImageModality(size=28).request(1, known=str(tmp_path / "digit.png"))


def test_grid_and_png(tmp_path: Path) -> None:
    images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    grid = make_grid(images, nrow=5, pad=1, scale=4)
    assert grid.shape == (2 * 33 + 1, 5 * 33 + 1, 3)
    assert np.array_equal(grid[1:33, 1:33, 0], images[0, 0].repeat_interleave(4, 0).repeat_interleave(4, 1).numpy())
    save_grid(images, tmp_path / "g.png", nrow=5)
    from PIL import Image

    assert Image.open(tmp_path / "g.png").size == (5 * 57 + 1, 2 * 57 + 1)  # default: 8x8 cells upscaled x7
    assert make_grid(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), nrow=2).shape == (2 * 57 + 1, 2 * 57 + 1, 3)


def test_frechet_distance_closed_form_and_monotone() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 4, generator=g, dtype=torch.float64)
    assert abs(frechet_distance(a, a)) < 1e-6
    # Diagonal Gaussians: FD = |μa - μb|² + Σ (√va - √vb)².
    b = torch.randn(20000, 4, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5, 1.0]) + 1.0
    expected = 4 * 1.0 + (1 - 2) ** 2 + (1 - 0.5) ** 2
    assert abs(frechet_distance(a, b) - expected) < 0.1
    noisy = [frechet_distance(a, a + s * torch.randn(a.shape, generator=g, dtype=torch.float64)) for s in (0.1, 0.5, 1)]
    assert noisy[0] < noisy[1] < noisy[2]


def test_mean_set_fd_averages_disjoint_sets() -> None:
    g = torch.Generator().manual_seed(1)
    ref, feats = torch.randn(500, 3, generator=g), torch.randn(250, 3, generator=g) + 0.5
    parts = [frechet_distance(feats[i : i + 100], ref) for i in (0, 100)]  # the 50 rows left over are dropped
    assert abs(mean_set_fd(feats, ref, 100) - sum(parts) / 2) < 1e-9
    assert mean_set_fd(feats[:100], ref, 100) == frechet_distance(feats[:100], ref)


def test_inpainting_helpers() -> None:
    target = torch.rand(6, 1, 8, 8) * 2 - 1
    mask = half_mask(tuple(target.shape))
    assert mask[..., :4, :].min() == 1 and mask[..., 4:, :].max() == 0
    filled = mean_fill(target * mask, mask, torch.zeros(1, 8, 8))
    assert torch.equal(filled[..., :4, :], target[..., :4, :]) and filled[..., 4:, :].abs().max() == 0
    same = inpainting_scores(target, target)
    assert abs(same["ssim"] - 1) < 1e-5 and same["psnr"] > 60
    assert inpainting_scores(filled, target)["ssim"] < 0.9


def test_classifier_is_accurate_and_cached(digits_npz: Path) -> None:
    """3 epochs instead of the evaluator's 30 keep the test short (the default's accuracy: tests/test_train.py)."""
    dm = DigitsDataModule(data_dir=str(digits_npz.parent))
    dm.setup()
    args = (*dm.arrays("train"), *dm.arrays("val"))
    model, acc = load_or_train_classifier(digits_npz.parent, *args, epochs=3)
    assert acc >= 0.93
    cached, cached_acc = load_or_train_classifier(digits_npz.parent, *args, epochs=3)
    assert cached_acc == acc
    x = dm.arrays("test")[0][:8]
    torch.testing.assert_close(cached(x), model(x))
    (digits_npz.parent / "classifier.safetensors").write_bytes(b"damaged")  # damaged cache: retrained
    _, acc_again = load_or_train_classifier(digits_npz.parent, *args, epochs=3)
    assert acc_again == acc


def test_posterior_mean_of_completions_beats_a_single_completion() -> None:
    from diffkit.modalities.image.metrics import posterior_inpaint_scores

    g = torch.Generator().manual_seed(0)
    target = torch.rand(40, 1, 8, 8, generator=g) * 2 - 1
    mask = half_mask(tuple(target.shape))
    seen = {}

    def noisy_posterior(known, m, cond):  # exact on known pixels, target + independent noise elsewhere
        seen["shape"], seen["labels"] = tuple(known.shape), cond["label"]
        noise = 0.3 * torch.randn(known.shape, generator=g)
        return torch.where(m.bool(), known, target.repeat(len(known) // len(target), 1, 1, 1) + noise)

    labels = torch.arange(40) % 10
    scores = posterior_inpaint_scores(noisy_posterior, target * mask, mask, target, {"label": labels}, 8, "inpaint")
    assert seen["shape"] == (320, 1, 8, 8) and torch.equal(seen["labels"], labels.repeat(8))
    # Averaging 8 independent completions divides the noise variance by 8: PSNR up by about 10·log10(8) = 9 dB.
    assert scores["inpaint_mean_psnr"] - scores["inpaint_psnr"] == pytest.approx(9.0, abs=1.0)
    assert scores["inpaint_mean_ssim"] > scores["inpaint_ssim"]
