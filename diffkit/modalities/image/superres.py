"""Super-resolution evaluation: SSIM/PSNR of upscalings of the first test images against bicubic and nearest.

The low-resolution input is `downsample(target, factor)`, the function the image modality uses for its "low_res"
condition, so the scored input is exactly what the model was trained to read. One sample per image is scored, and
the mean of k samples (an MMSE-style estimate, which a single posterior sample is not); `consistency_psnr` checks
that a sample, pooled again, reproduces its input.

References:
    Saharia et al. 2021 (SR3: PSNR/SSIM against bicubic; samples score lower PSNR than a regression mean);
    Wang et al. 2004 (SSIM).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from diffkit.modalities.base import Headline, InpaintFn, SampleFn
from diffkit.modalities.image.metrics import inpainting_scores
from diffkit.modalities.image.resize import downsample, upsample


class SuperResolutionEvaluator:
    """Scores a "low_res"-conditioned image model on the first n_images of a split (model space [-1, 1])."""

    def __init__(
        self,
        data: Any,  # a data module with prepare_data() and arrays(split) -> (images [N,C,H,W], labels)
        factor: int,  # the modality's low_res_factor
        n_images: int = 1000,  # the first test images, upscaled
        k: int = 4,  # samples per image; their mean is the MMSE-style estimate
        split: str = "test",
        key: str = "low_res",  # the condition entry
    ) -> None:
        if int(k) < 1 or int(n_images) < 1:
            raise ValueError(f"SuperResolutionEvaluator: n_images and k must be >= 1, got {n_images}, {k}")
        data.prepare_data()
        self.target = data.arrays(split)[0][: int(n_images)]
        self.factor, self.k, self.key, self.split = int(factor), int(k), key, split

    def low_res(self) -> Tensor:
        """The model's condition for the scored images: [N,C,H/f,W/f]."""
        return downsample(self.target, self.factor)

    def headlines(self) -> tuple[Headline, ...]:
        """SSIM and PSNR of one sample and of the mean of k, beside bicubic and nearest upsampling."""
        n, out = len(self.target), []
        for metric, unit in (("ssim", ""), ("psnr", " dB")):
            base = (("bicubic", f"bicubic_{metric}"), ("nearest", f"nearest_{metric}"))
            label, where = f"SR {metric.upper()}", f"{n} {self.split} images"
            out.append(Headline(label, f"sr_{metric}", base, False, unit, f"{where}, one sample"))
            out.append(Headline(label, f"sr_mean_{metric}", base, False, unit, f"{where}, mean of {self.k} samples"))
        return tuple(out)

    def run(self, sample_fn: SampleFn, inpaint_fn: InpaintFn | None = None) -> dict[str, float]:
        """Scores of the model (one sample, mean of k, consistency) and of the bicubic and nearest baselines."""
        low, size = self.low_res(), tuple(self.target.shape[-2:])
        cond = {self.key: low.repeat(self.k, *([1] * (low.ndim - 1)))}
        samples = sample_fn(self.k * len(low), cond).reshape(self.k, *self.target.shape).clamp(-1, 1)
        out = {f"sr_{m}": v for m, v in inpainting_scores(samples[0], self.target).items()}
        out.update({f"sr_mean_{m}": v for m, v in inpainting_scores(samples.mean(0), self.target).items()})
        out["consistency_psnr"] = inpainting_scores(downsample(samples[0], self.factor), low)["psnr"]
        for mode in ("bicubic", "nearest"):
            out.update({f"{mode}_{m}": v for m, v in inpainting_scores(upsample(low, size, mode), self.target).items()})
        out["sr_k"] = float(self.k)
        return out
