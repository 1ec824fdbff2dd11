"""Super-resolution result: the evaluator's numbers as JSON and a figure (low-res | bicubic | diffusion | real).

    python benchmarks/super_resolution.py --ckpt outputs/fashion_sr/checkpoints/last.ckpt \
        --metrics outputs/fashion_sr/metrics.json --json benchmarks/results/fashion_sr.json \
        --png docs/results/fashion_sr.png

With --metrics the scores are the training run's final evaluation (its `test/*` keys: SuperResolutionEvaluator on
the first 1,000 test images); without it the evaluator of the checkpoint's config is run again (minutes on a CPU).
The figure's rows are the first --rows test images: the low-res input (nearest-upscaled for display), bicubic
upsampling of it, one seeded diffusion sample conditioned on it, and the real image.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from hydra.utils import instantiate
from throughput import cpu_name

from diffkit.config import load, load_config
from diffkit.io import write_json
from diffkit.modalities.image.adapter import save_grid
from diffkit.modalities.image.datasets import to_pixels
from diffkit.modalities.image.resize import downsample, upsample
from diffkit.training.evaluation import evaluate

KEYS = ("sr_ssim", "sr_psnr", "sr_mean_ssim", "sr_mean_psnr", "bicubic_ssim", "bicubic_psnr", "nearest_ssim",
        "nearest_psnr", "consistency_psnr", "sr_k")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a super-resolution checkpoint (recipe image/fashion_mnist_sr)")
    parser.add_argument("--metrics", help="the run's metrics.json (its test/* keys); default: evaluate again")
    parser.add_argument("--wall-s", type=float, help="the run's measured wall time in seconds, recorded as given")
    parser.add_argument("--rows", type=int, default=6, help="test images in the figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", required=True, help="result JSON path")
    parser.add_argument("--png", required=True, help="figure PNG path")
    args = parser.parse_args()

    module, cfg = load(args.ckpt), load_config(args.ckpt)
    if args.metrics:
        run = json.loads(Path(args.metrics).read_text())
        scores = {k: run[f"test/{k}"] for k in KEYS if f"test/{k}" in run}
        extra = {k: run[k] for k in ("train/loss", "val/loss") if k in run}
    else:
        scores = {k: v for k, v in evaluate(instantiate(cfg.evaluator), module, seed=args.seed).items() if k in KEYS}
        extra = {}
    factor = int(cfg.modality.low_res_factor)
    result = {
        "ckpt": args.ckpt,
        "tags": list(cfg.get("tags", [])),
        "n_images": int(cfg.evaluator.n_images),
        "factor": factor,
        "max_steps": int(cfg.trainer.max_steps),
        "batch_size": int(cfg.data.batch_size),
        "sample_steps": int(cfg.module.sample_steps),
        "sampler": cfg.sampler.get("_target_"),
        "cpu": cpu_name(),
        "wall_s": args.wall_s,
        **scores,
        **extra,
    }
    write_json(result, args.json)
    print(json.dumps(result, indent=1))

    # Figure: one row per test image, columns low-res | bicubic | diffusion | real.
    target = instantiate(cfg.data).arrays("test")[0][: args.rows]
    low, size = downsample(target, factor), tuple(target.shape[-2:])
    generator = torch.Generator().manual_seed(args.seed)
    sample = module.sample(len(target), {"low_res": low}, generator=generator).cpu().clamp(-1, 1)
    cells = torch.stack([upsample(low, size, "nearest"), upsample(low, size, "bicubic"), sample, target], dim=1)
    save_grid(to_pixels(cells.flatten(0, 1)), args.png, nrow=4)
    print(f"wrote {args.json} and {args.png}: rows = the first {len(target)} test images")


if __name__ == "__main__":
    main()
