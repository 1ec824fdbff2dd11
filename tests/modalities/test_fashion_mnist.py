"""Fashion-MNIST: the IDX reader on files written here, the prepared splits, the baselines and the metrics."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from diffkit.modalities.image.baselines import fit_gaussian, sample_class_gaussians, sample_gaussian, wiener_fill
from diffkit.modalities.image.data import FashionMNISTDataModule
from diffkit.modalities.image.fashion_mnist import IDX_FILES, load_fashion_split, prepare_fashion_mnist
from diffkit.modalities.image.idx import IDXError, read_idx
from diffkit.modalities.image.metrics import frechet_distance, half_mask, precision_recall


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_fake_source(folder: Path, n_train: int = 200, n_test: int = 50, gz: bool = True) -> Path:
    """Four MNIST-style IDX files with class-dependent 28x28 images (class c lights up row block c)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c : 2 * c + 3, 4:24] = 220
        for kind, array in (("images", images), ("labels", labels)):
            raw = idx_bytes(array)
            stem = IDX_FILES[f"{split}_{kind}"]
            path = folder / (stem + (".gz" if gz else ""))
            path.write_bytes(gzip.compress(raw) if gz else raw)
    return folder


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, ">i4", ">f4"])
def test_idx_round_trip(tmp_path: Path, gz: bool, dtype) -> None:
    values = np.arange(24).reshape(2, 3, 4)
    array = values.astype(np.uint8) if dtype == np.uint8 else (values - 5).astype(dtype)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    out = read_idx(path)
    assert out.shape == (2, 3, 4) and np.array_equal(out, array) and out.dtype.byteorder in "=|"


def test_idx_errors_name_the_file(tmp_path: Path) -> None:
    good = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    cases = {
        "truncated.idx": (good[:-10], "truncated"),
        "header.idx": (good[:9], "truncated header"),
        "magic.idx": (b"\x08\x03" + good[2:], "not an IDX file"),
        "trailing.idx": (good + b"xx", "trailing bytes"),
        "broken.idx.gz": (gzip.compress(good)[:-20], "damaged gzip"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(IDXError, match=message) as info:
            read_idx(tmp_path / name)
        assert name in str(info.value)
    with pytest.raises(IDXError, match="not found"):
        read_idx(tmp_path / "missing.idx")


def test_prepare_splits_and_datamodule(tmp_path: Path) -> None:
    source = write_fake_source(tmp_path / "src", gz=False)
    path = prepare_fashion_mnist(tmp_path / "out", source=source, val_per_class=3)
    train, val, test = (load_fashion_split(path, s) for s in ("train", "val", "test"))
    assert len(train[0]) == 170 and len(val[0]) == 30 and len(test[0]) == 50
    assert np.bincount(val[1]).tolist() == [3] * 10  # stratified validation carved from train
    train_rows = {img.tobytes() for img in train[0]}
    assert not any(img.tobytes() in train_rows for img in val[0])  # disjoint
    with pytest.raises(ValueError, match="val_per_class"):
        prepare_fashion_mnist(tmp_path / "bad", source=source, val_per_class=20)
    dm = FashionMNISTDataModule(data_dir=str(tmp_path / "dm"), batch_size=16, source=str(source), val_per_class=2)
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (16, 1, 28, 28) and batch["image"].min() >= -1 and batch["image"].max() <= 1


def test_missing_source_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        prepare_fashion_mnist(tmp_path / "out", source=tmp_path / "nowhere")


def test_wiener_fill_is_the_analytic_conditional_mean() -> None:
    # Two pixels with correlation: E[x2 | x1] = mu2 + cov12 / cov11 * (x1 - mu1).
    mean = torch.tensor([0.3, -0.2], dtype=torch.float64)
    cov = torch.tensor([[2.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    known = torch.tensor([[1.5, 0.0], [-1.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    filled = wiener_fill(known, mask, mean, cov)
    expected = -0.2 + 0.8 / 2.0 * (known[:, 0].double() - 0.3)
    assert torch.allclose(filled[:, 1].double(), expected, atol=1e-6)
    assert torch.equal(filled[:, 0], known[:, 0])  # known pixels untouched
    # Mixed masks: each row gets its own conditional; nothing known -> the mean.
    mask2 = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    filled2 = wiener_fill(torch.tensor([[0.0, 0.7], [0.0, 0.0]]), mask2, mean, cov)
    assert filled2[0, 0].item() == pytest.approx(0.3 + 0.8 / 1.0 * (0.7 + 0.2), abs=1e-6)
    assert torch.allclose(filled2[1].double(), mean, atol=1e-6)


def test_gaussian_baselines_match_the_fitted_moments() -> None:
    g = torch.Generator().manual_seed(0)
    data = torch.randn(4000, 1, 2, 2, generator=g) @ torch.tensor([[1.0, 0.5], [0.0, 1.0]]) + 0.4
    mean, cov = fit_gaussian(data)
    samples = sample_gaussian(data, 20000, generator=g)
    s_mean, s_cov = fit_gaussian(samples)
    assert torch.allclose(s_mean, mean, atol=0.03) and torch.allclose(s_cov, cov, atol=0.05)
    labels = torch.arange(4000) % 2
    data[labels == 1] += 3.0
    per_class = sample_class_gaussians(data, labels, 1000, generator=g)
    assert per_class[0::2].mean().item() == pytest.approx(0.4, abs=0.1)
    assert per_class[1::2].mean().item() == pytest.approx(3.4, abs=0.1)


def test_fd_self_is_zero_and_grows_with_noise_precision_recall_sane() -> None:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2000, 8, generator=g)
    assert abs(frechet_distance(feats, feats)) < 1e-8
    fds = [frechet_distance(feats + s * torch.randn(feats.shape, generator=g), feats) for s in (0.1, 0.5, 1.0)]
    assert 0 < fds[0] < fds[1] < fds[2]
    other = torch.randn(2000, 8, generator=g)
    same = precision_recall(feats, other)
    assert same["precision"] > 0.8 and same["recall"] > 0.8  # k = 3 balls cover ~90% of a same-law sample
    collapsed = precision_recall(feats, 0.05 * torch.randn(2000, 8, generator=g))  # all mass in the centre
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.2
    shifted = precision_recall(feats, other + 6.0)
    assert shifted["precision"] < 0.05


def test_center_mask_hides_the_middle() -> None:
    mask = half_mask((1, 1, 28, 28), side="center")
    assert mask.sum() == 28 * 28 - 14 * 14 and mask[0, 0, 14, 14] == 0 and mask[0, 0, 0, 0] == 1


def test_evaluator_inpainting_only_and_unconditional_completions(tmp_path: Path) -> None:
    """n_samples = 0 scores inpainting alone; completions are asked for without labels (like the Wiener fill)."""
    from diffkit.modalities.image.fashion_eval import FashionMNISTEvaluator

    prepare_fashion_mnist(tmp_path / "out", source=write_fake_source(tmp_path / "src"), val_per_class=3)
    evaluator = FashionMNISTEvaluator(
        str(tmp_path / "out"), n_samples=0, conditional=True, n_inpaint=6, regions=("bottom",), n_posterior=2
    )
    seen = []

    def oracle(known: torch.Tensor, mask: torch.Tensor, cond) -> torch.Tensor:  # returns the hidden truth
        seen.append(cond)
        return evaluator.test_images[:6].repeat(len(known) // 6, 1, 1, 1)

    def no_sampling(n, cond):
        raise AssertionError("n_samples=0 must not sample")

    metrics = evaluator.run(no_sampling, oracle)
    assert seen == [None] and "fd" not in metrics and "cond_acc" not in metrics
    assert metrics["inpaint_bottom_ssim"] > 0.999 and metrics["inpaint_bottom_mean_ssim"] > 0.999
    assert metrics["wiener_bottom_ssim"] < 0.999
    inpainting = [h for h in evaluator.headlines() if h.label.startswith("inpainting")]  # the summary's numbers
    keys = {h.key for h in inpainting} | {key for h in inpainting for _, key in h.baselines}
    assert len(inpainting) == 2 and keys <= set(metrics)
