"""Image metrics: a Fréchet distance on features of a classifier trained here ("digits-FD", not Inception FID),
classifier accuracy of conditional samples, and SSIM/PSNR for inpainting against a mean-fill baseline.

References:
    Heusel et al. 2017 (Fréchet Inception Distance); Wang et al. 2004 (SSIM); Lugmayr et al. 2022 (inpainting).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from diffkit.core.types import Cond
from diffkit.io import atomic_write, exclusive, write_json
from diffkit.modalities.base import Headline, InpaintFn, SampleFn
from diffkit.modalities.image.baselines import sample_class_gaussians
from diffkit.modalities.image.masks import half_mask

log = logging.getLogger(__name__)


class FeatureClassifier(nn.Module):
    """Small CNN for 1xSxS images (S = 8 digits, 28 Fashion-MNIST); its penultimate layer is the FD feature space."""

    def __init__(self, num_classes: int = 10, feature_dim: int = 64, size: int = 8) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, 32, 3, padding=1), nn.SiLU(), nn.Conv2d(32, 64, 3, padding=1)]
        layers += [nn.SiLU(), nn.MaxPool2d(2)]
        side = size // 2
        if size >= 16:  # a second stage for larger images: 28 -> 14 -> 7
            layers += [nn.Conv2d(64, 64, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2)]
            side //= 2
        layers += [nn.Flatten(), nn.Linear(64 * side * side, feature_dim), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(feature_dim, num_classes)
        self.config = {"num_classes": num_classes, "feature_dim": feature_dim, "size": size}

    @staticmethod
    def data_config(images: Tensor) -> dict[str, int]:
        """The config entries the data fixes (a cached classifier for other data is stale)."""
        return {"size": int(images.shape[-1])}

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features [B, feature_dim] of model-space images [B,1,S,S]."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def train_classifier(
    images: Tensor,
    labels: Tensor,
    val_images: Tensor,
    val_labels: Tensor,
    *,
    epochs: int = 30,
    seed: int = 0,
    feature_dim: int = 64,
    batch_size: int = 64,
    model_class: type[nn.Module] = FeatureClassifier,  # (num_classes, feature_dim, **data_config(images)), features()
) -> tuple[nn.Module, float]:
    """Train the feature classifier with AdamW and light pixel-noise augmentation; returns (model, val accuracy)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = model_class(int(labels.max()) + 1, feature_dim, **model_class.data_config(images))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    start = said = time.perf_counter()
    for epoch in range(epochs):
        if time.perf_counter() - said > 30:  # a long first training (Fashion-MNIST: ~30 min on 2 cores) says so
            said = time.perf_counter()
            left = (said - start) / epoch * (epochs - epoch)
            log.info("evaluator classifier: epoch %d/%d, about %.0f s left", epoch, epochs, left)
        model.train()
        for idx in torch.randperm(len(images), generator=generator).split(batch_size):
            x = images[idx] + 0.1 * torch.randn(images[idx].shape, generator=generator)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model, accuracy(model, val_images, val_labels)


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 2000) -> float:
    """Fraction of images whose argmax class equals the label."""
    preds = torch.cat([model(chunk).argmax(dim=1) for chunk in images.split(batch_size)])
    return float((preds == labels).float().mean())


def load_or_train_classifier(
    cache_dir: str | os.PathLike,
    images: Tensor,
    labels: Tensor,
    val_images: Tensor,
    val_labels: Tensor,
    model_class: type[nn.Module] = FeatureClassifier,  # see train_classifier
    **train_kwargs: int,  # epochs, feature_dim, batch_size of train_classifier
) -> tuple[nn.Module, float]:
    """Load cache_dir/classifier.safetensors (+ .json) or train and cache it; a damaged or stale cache is retrained."""
    with exclusive(cache_dir):  # trained once when several processes need it at the same time
        return _load_or_train_classifier(cache_dir, images, labels, val_images, val_labels, model_class, train_kwargs)


def _load_or_train_classifier(
    cache_dir: str | os.PathLike, images: Tensor, labels: Tensor, val_images: Tensor, val_labels: Tensor,
    model_class: type[nn.Module], train_kwargs: dict[str, int],
) -> tuple[nn.Module, float]:  # fmt: skip
    weights, info = Path(cache_dir) / "classifier.safetensors", Path(cache_dir) / "classifier.json"
    if weights.exists() and info.exists():
        try:
            meta = json.loads(info.read_text())
            data = model_class.data_config(images)
            model = model_class(meta["num_classes"], meta["feature_dim"], **{k: meta[k] for k in data})
            model.load_state_dict(load_file(weights))
            if all(meta[k] == v for k, v in data.items()) and meta["train"] == train_kwargs:
                return model.eval(), float(meta["val_accuracy"])
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError):
            pass  # damaged, stale or another kind of classifier: retrain below and overwrite it atomically
    log.info("training the evaluator's classifier on %d images (once; cached in %s)", len(images), cache_dir)
    model, val_acc = train_classifier(images, labels, val_images, val_labels, model_class=model_class, **train_kwargs)
    atomic_write(weights, lambda tmp: save_file(model.state_dict(), tmp))
    write_json({**model.config, "val_accuracy": val_acc, "train": train_kwargs}, info)
    return model, val_acc


def frechet_distance(feats_a: Tensor, feats_b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N,D], [M,D] (Heusel et al. 2017), float64."""
    a, b = feats_a.double(), feats_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # tr sqrt(Σa Σb) = tr sqrt(Σa^½ Σb Σa^½), computed with symmetric eigendecompositions.
    eval_a, evec_a = torch.linalg.eigh(cov_a)
    sqrt_a = evec_a @ torch.diag(eval_a.clamp(min=0).sqrt()) @ evec_a.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def mean_set_fd(feats: Tensor, reference: Tensor, n: int) -> float:
    """Mean Fréchet distance of the disjoint sets of n rows of feats [N,D] (N // n of them) to the reference."""
    sets = feats[: len(feats) // n * n].split(n)
    return sum(frechet_distance(part, reference) for part in sets) / len(sets)


def mean_fill(known: Tensor, mask: Tensor, pixel_mean: Tensor) -> Tensor:
    """Baseline inpainting: unknown pixels (mask = 0) take the per-pixel training mean [C,H,W]."""
    return torch.where(mask.bool(), known, pixel_mean.expand_as(known))


def inpainting_scores(pred: Tensor, target: Tensor) -> dict[str, float]:
    """SSIM (Gaussian window: 3x3 for 8x8 images, 7x7 from 16x16 on) and PSNR of model-space images in [-1, 1]."""
    pred = pred.clamp(-1, 1)
    small = target.shape[-1] < 16
    kernel, sigma = (3, 0.5) if small else (7, 1.0)
    ssim = structural_similarity_index_measure(pred, target, data_range=2.0, kernel_size=kernel, sigma=sigma)
    psnr = peak_signal_noise_ratio(pred, target, data_range=2.0)
    return {"ssim": float(ssim), "psnr": float(psnr)}


def posterior_inpaint_scores(
    inpaint_fn: InpaintFn, known: Tensor, mask: Tensor, target: Tensor, cond: Cond | None, k: int, prefix: str
) -> dict[str, float]:
    """Scores of one completion (`<prefix>_ssim/psnr`) and of the mean of k (`<prefix>_mean_*`, an MMSE estimate).

    A single posterior sample has about twice the squared error of the posterior mean, so PSNR against a
    mean-like baseline is fair only for the averaged completion; SSIM of single samples shows their sharpness.
    """
    repeat = (k,) + (1,) * (known.ndim - 1)
    cond_k = None if cond is None else {key: v.repeat(k, *([1] * (v.ndim - 1))) for key, v in cond.items()}
    filled = inpaint_fn(known.repeat(repeat), mask.repeat(repeat), cond_k).reshape(k, *known.shape)
    scores = {f"{prefix}_{m}": v for m, v in inpainting_scores(filled[0], target).items()}
    scores.update({f"{prefix}_mean_{m}": v for m, v in inpainting_scores(filled.mean(0), target).items()})
    return scores


class DigitsEvaluator:
    """Scores a digits model through sampling functions (diffusion_policy's runner.run(policy) -> dict)."""

    def __init__(
        self,
        data_dir: str,
        n_samples: int | None = None,
        conditional: bool = False,
        n_posterior: int = 8,  # completions per masked test image; their mean is the MMSE-style estimate
    ) -> None:
        from diffkit.modalities.image.data import DigitsDataModule  # data loading lives in data.py

        data = DigitsDataModule(data_dir=data_dir)
        data.prepare_data()
        self.train_images, self.train_labels = data.arrays("train")
        val_images, val_labels = data.arrays("val")
        self.test_images, self.test_labels = data.arrays("test")
        self.classifier, self.classifier_val_acc = load_or_train_classifier(
            data_dir, self.train_images, self.train_labels, val_images, val_labels
        )
        self.n_samples = n_samples or len(self.train_images)
        self.conditional, self.n_posterior = conditional, n_posterior
        self._fd_class_gauss: dict[int, float] = {}

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        return self.classifier.features(images.clamp(-1, 1))

    def fd_class_gauss(self, reference: Tensor, sets: int = 1) -> float:
        """digits-FD of one full-covariance Gaussian per class (fit to the train split), as many as test images;
        the mean over `sets` disjoint draws of that size."""
        if sets not in self._fd_class_gauss:
            generator, n = torch.Generator().manual_seed(0), len(self.test_images)
            fake = sample_class_gaussians(self.train_images, self.train_labels, n * sets, generator=generator)
            self._fd_class_gauss[sets] = mean_set_fd(self.features(fake), reference, n)
        return self._fd_class_gauss[sets]

    def headlines(self) -> tuple[Headline, ...]:
        """The end-of-run summary's numbers; FD at the test split's size, as its baselines, when samples suffice."""
        n_test, k = len(self.test_images), self.n_posterior
        fd_baselines = (("real test images", "fd_real_test"), ("per-class Gaussians", "fd_class_gauss"))
        if self.n_samples >= n_test:  # the mean over disjoint sets: one set of 179 moves by up to ±20 between seeds
            sets = self.n_samples // n_test
            fd_baselines = (("real test images", "fd_real_test"), ("per-class Gaussians", "fd_class_gauss_sets"))
            note = f"{n_test} samples, mean of {sets} sets" if sets > 1 else f"{n_test} samples"
            headlines = [Headline("digits-FD", "fd_test_size_sets", fd_baselines, note=note)]
        else:  # FD is biased upwards at small n: the model's number is not comparable with the baselines'
            note = f"{self.n_samples} samples, the baselines {n_test}: not comparable"
            headlines = [Headline("digits-FD", "fd", fd_baselines, note=note)]
        if self.conditional:
            real = (("real test images", "classifier_test_acc"),)
            headlines.append(Headline("class accuracy", "cond_acc", real, lower_is_better=False, note="of samples"))
        headlines += [
            Headline("inpainting PSNR", "inpaint_mean_psnr", (("mean fill", "meanfill_psnr"),), lower_is_better=False,
                     unit=" dB", note=f"bottom half, mean of {k} completions"),
            Headline("inpainting SSIM", "inpaint_ssim", (("mean fill", "meanfill_ssim"),), lower_is_better=False,
                     note="bottom half, one completion"),
        ]  # fmt: skip
        return tuple(headlines)

    def run(self, sample_fn: SampleFn, inpaint_fn: InpaintFn | None = None) -> dict[str, float]:
        """digits-FD of samples vs the train split (real-test floor, per-class Gaussians); inpainting vs mean fill."""
        reference = self.features(self.train_images)
        labels = torch.arange(self.n_samples) % 10 if self.conditional else None
        samples = sample_fn(self.n_samples, None if labels is None else {"label": labels})
        feats, n_test = self.features(samples), len(self.test_images)
        metrics = {
            "fd": frechet_distance(feats, reference),
            "fd_real_test": frechet_distance(self.features(self.test_images), reference),
            "fd_class_gauss": self.fd_class_gauss(reference),
            "classifier_test_acc": accuracy(self.classifier, self.test_images, self.test_labels),
        }
        if len(feats) >= n_test:  # FD is biased upwards at small n: the real test images' FD at equal n
            metrics["fd_test_size"] = frechet_distance(feats[:n_test], reference)
            sets = len(feats) // n_test  # the same FD averaged over disjoint sets, for the run's summary
            metrics["fd_test_size_sets"] = mean_set_fd(feats, reference, n_test)
            metrics["fd_class_gauss_sets"] = self.fd_class_gauss(reference, sets)
        if labels is not None:
            metrics["cond_acc"] = accuracy(self.classifier, samples.clamp(-1, 1), labels)
        if inpaint_fn is not None:
            mask = half_mask(tuple(self.test_images.shape))
            known = self.test_images * mask
            cond = {"label": self.test_labels} if self.conditional else None
            metrics.update(
                posterior_inpaint_scores(inpaint_fn, known, mask, self.test_images, cond, self.n_posterior, "inpaint")
            )
            baseline = mean_fill(known, mask, self.train_images.mean(0))
            metrics.update({f"meanfill_{k}": v for k, v in inpainting_scores(baseline, self.test_images).items()})
        return metrics


def _kth_neighbour_radii(feats: Tensor, k: int, chunk: int) -> Tensor:
    """Distance from each row of feats [N,D] to its k-th nearest other row [N]."""
    radii = []
    for block in feats.split(chunk):
        dist = torch.cdist(block, feats)
        radii.append(dist.kthvalue(k + 1, dim=1).values)  # +1: the row itself is at distance 0
    return torch.cat(radii)


def _covered(queries: Tensor, centres: Tensor, radii: Tensor, chunk: int) -> Tensor:
    """Boolean [Q]: query inside at least one ball (centre, radius)."""
    hits = [(torch.cdist(block, centres) <= radii[None, :]).any(dim=1) for block in queries.split(chunk)]
    return torch.cat(hits)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, chunk: int = 1000) -> dict[str, float]:
    """Improved precision and recall of k-NN feature manifolds (Kynkäänniemi et al. 2019), features [N,D], [M,D]."""
    real, fake = real.double(), fake.double()
    precision = _covered(fake, real, _kth_neighbour_radii(real, k, chunk), chunk).double().mean()
    recall = _covered(real, fake, _kth_neighbour_radii(fake, k, chunk), chunk).double().mean()
    return {"precision": float(precision), "recall": float(recall)}
