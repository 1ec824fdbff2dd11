"""Fashion-MNIST evaluation: "FMNIST-FD" and improved precision/recall on features of a CNN trained here, against
the 10,000 test images, beside baselines built by the same code (a second set of real images, per-class and single
Gaussians), class-conditional accuracy, and inpainting scored against mean fill and the Wiener (Gaussian) fill.

FMNIST-FD is a Fréchet distance in the 128-d penultimate features of `FeatureClassifier`; it is not Inception FID.

References:
    Heusel et al. 2017 (FD); Kynkäänniemi et al. 2019 (precision/recall); Xiao et al. 2017 (Fashion-MNIST).
"""

from __future__ import annotations

import torch
from torch import Tensor

from diffkit.modalities.base import Headline, InpaintFn, SampleFn
from diffkit.modalities.image.baselines import fit_gaussian, sample_class_gaussians, sample_gaussian, wiener_fill
from diffkit.modalities.image.metrics import (
    accuracy,
    frechet_distance,
    half_mask,
    inpainting_scores,
    load_or_train_classifier,
    mean_fill,
    posterior_inpaint_scores,
    precision_recall,
)

CLASSIFIER = {"epochs": 8, "feature_dim": 128, "batch_size": 128}  # trained on the 55k training images only


class FashionMNISTEvaluator:
    """Scores a Fashion-MNIST model through sampling functions; reference = the 10k test images."""

    def __init__(
        self,
        data_dir: str,
        n_samples: int = 10_000,  # samples scored against the 10k test images
        conditional: bool = False,  # ask for labels 0..9 in turn and report class accuracy
        baselines: bool = True,  # also score real / Gaussian baselines (computed once per evaluator)
        n_inpaint: int = 1000,  # test images completed per inpainting region
        regions: tuple[str, ...] = ("bottom", "center"),  # hidden part of each image (see half_mask)
        n_posterior: int = 4,  # completions per image; their mean is the MMSE-style estimate
        seed: int = 0,
    ) -> None:
        from diffkit.modalities.image.data import FashionMNISTDataModule  # data loading lives in data.py

        data = FashionMNISTDataModule(data_dir=data_dir)
        data.prepare_data()
        self.train_images, self.train_labels = data.arrays("train")
        val_images, val_labels = data.arrays("val")
        self.test_images, self.test_labels = data.arrays("test")
        self.classifier, self.classifier_val_acc = load_or_train_classifier(
            data_dir, self.train_images, self.train_labels, val_images, val_labels, **CLASSIFIER
        )
        self.n_samples, self.conditional, self.baselines = n_samples, conditional, baselines
        self.n_inpaint, self.regions, self.seed, self.n_posterior = n_inpaint, tuple(regions), seed, n_posterior
        self._reference: Tensor | None = None
        self._baseline_metrics: dict[str, float] | None = None

    @torch.no_grad()
    def features(self, images: Tensor, batch_size: int = 2000) -> Tensor:
        return torch.cat([self.classifier.features(b.clamp(-1, 1)) for b in images.split(batch_size)])

    @property
    def reference(self) -> Tensor:
        if self._reference is None:
            self._reference = self.features(self.test_images)
        return self._reference

    def score(self, images: Tensor) -> dict[str, float]:
        """FD, precision and recall of images [N,1,28,28] against the test set."""
        feats = self.features(images)
        return {"fd": frechet_distance(feats, self.reference), **precision_recall(self.reference, feats)}

    def baseline_metrics(self) -> dict[str, float]:
        """The same scores for a second set of real images (the floor) and Gaussian pixel models."""
        if self._baseline_metrics is None:
            generator = torch.Generator().manual_seed(self.seed)
            n = min(self.n_samples, len(self.train_images))
            real = self.train_images[torch.randperm(len(self.train_images), generator=generator)[:n]]
            sets = {
                "real_train": real,
                "class_gauss": sample_class_gaussians(self.train_images, self.train_labels, n, generator=generator),
                "gauss": sample_gaussian(self.train_images, n, generator=generator),
            }
            self._baseline_metrics = {f"{k}_{name}": v for name, s in sets.items() for k, v in self.score(s).items()}
            test_acc = accuracy(self.classifier, self.test_images, self.test_labels)
            self._baseline_metrics["classifier_test_acc"] = test_acc
        return self._baseline_metrics

    def inpainting(self, inpaint_fn: InpaintFn) -> dict[str, float]:
        """SSIM/PSNR of the model's completions vs mean fill and the Wiener fill, per hidden region."""
        target = self.test_images[: self.n_inpaint]
        mean, cov = fit_gaussian(self.train_images)
        out: dict[str, float] = {}
        for region in self.regions:
            mask = half_mask(tuple(target.shape), side=region)
            known = target * mask
            cond = None  # unconditional completions, like the Wiener fill: the label is not given
            prefix = f"inpaint_{region}"
            out.update(posterior_inpaint_scores(inpaint_fn, known, mask, target, cond, self.n_posterior, prefix))
            fills = {
                "meanfill": mean_fill(known, mask, self.train_images.mean(0)),
                "wiener": wiener_fill(known, mask, mean, cov),
            }
            for name, filled in fills.items():
                out.update({f"{name}_{region}_{k}": v for k, v in inpainting_scores(filled, target).items()})
        return out

    def headlines(self) -> tuple[Headline, ...]:
        """The end-of-run summary's numbers: FD beside the real and Gaussian baselines, inpainting beside the fills."""
        real = ("real train images", "fd_real_train")
        gaussians = (("per-class Gaussians", "fd_class_gauss"), ("one Gaussian", "fd_gauss"))
        note = f"{self.n_samples} samples vs the test images"
        headlines = [Headline("FMNIST-FD", "fd", (real, *gaussians), note=note)]  # absent numbers are left out
        if self.conditional:
            acc = (("real test images", "classifier_test_acc"),)
            headlines.append(Headline("class accuracy", "cond_acc", acc, lower_is_better=False, note="of samples"))
        for region in self.regions:
            for metric, mean, unit in (("psnr", "_mean", " dB"), ("ssim", "", "")):  # PSNR: the MMSE-style mean
                fills = (("mean fill", f"meanfill_{region}_{metric}"), ("Wiener", f"wiener_{region}_{metric}"))
                how = f"mean of {self.n_posterior} completions" if mean else "one completion"
                key, label = f"inpaint_{region}{mean}_{metric}", f"inpainting {metric.upper()}"
                headlines.append(Headline(label, key, fills, False, unit, note=f"{region}, {how}"))
        return tuple(headlines)

    def run(self, sample_fn: SampleFn, inpaint_fn: InpaintFn | None = None) -> dict[str, float]:
        """Model scores, baselines, class accuracy (conditional models) and inpainting."""
        metrics: dict[str, float] = {}
        labels = torch.arange(self.n_samples) % 10 if self.conditional else None
        if self.n_samples > 0:  # n_samples = 0: inpainting scores only
            samples = sample_fn(self.n_samples, None if labels is None else {"label": labels})
            metrics.update(self.score(samples))
            if self.baselines:
                metrics.update(self.baseline_metrics())
            if labels is not None:
                metrics["cond_acc"] = accuracy(self.classifier, samples.clamp(-1, 1), labels)
                metrics["cond_acc_vs_real"] = metrics["cond_acc"] / accuracy(
                    self.classifier, self.test_images, self.test_labels
                )
        if inpaint_fn is not None and self.n_inpaint > 0:
            metrics.update(self.inpainting(inpaint_fn))
        return metrics
