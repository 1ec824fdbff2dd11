"""Latent-space inpainting: SSIM/PSNR of completions on the first test images against mean fill and the Wiener fill.

    python benchmarks/latent_inpaint.py --ckpt outputs/text4500/checkpoints/last.ckpt --n 1000 --k 2 \
        --json benchmarks/results/latent_inpaint.json

The pixel mask of each region maps to the latent (a 4x4-pixel cell is known when all its pixels are), those cells
are held by replacement (GivenEntries(replace), added when the checkpoint's conditioning has no given-entry holder),
the completion is decoded and the given pixels are put back (LatentEvaluator). No caption is given: like the Wiener
fill, the model sees only the visible pixels. Scores come from the unchanged FashionMNISTEvaluator.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

from diffkit.config import load, load_config
from diffkit.core.guidance import replace
from diffkit.core.samplers.gaussian import sample_euler_ancestral
from diffkit.io import write_json
from diffkit.modalities.conditioning import GivenEntries
from diffkit.modalities.image.fashion_eval import FashionMNISTEvaluator
from diffkit.modalities.latent.adapter import LatentEvaluator
from diffkit.training.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a latent diffusion checkpoint (modality latent or prompted)")
    parser.add_argument("--n", type=int, default=1000, help="first test images per region")
    parser.add_argument("--k", type=int, default=2, help="completions per image (their mean: the MMSE-style score)")
    parser.add_argument("--regions", nargs="+", default=["bottom", "center"])
    parser.add_argument("--steps", type=int, default=None, help="sampler steps; default the checkpoint's")
    parser.add_argument("--resample", type=int, default=1, help="> 1: RePaint resampling (Euler ancestral) U times")
    parser.add_argument("--split", default="test", choices=["test", "val"], help="val: for choosing settings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    started = time.monotonic()
    cfg, module = load_config(args.ckpt), load(args.ckpt)
    added = not any(isinstance(c, GivenEntries) for c in module.conditioning)
    sampler = partial(sample_euler_ancestral, resample=args.resample) if args.resample > 1 else None
    if added:  # a model trained without a holder: hold the given latent cells by replacement at sampling
        module.conditioning = (*module.conditioning, GivenEntries(replace, sampler=sampler))
    elif sampler is not None:
        raise SystemExit("--resample: this checkpoint has its own given-entry holder; its sampler is used")
    inner = FashionMNISTEvaluator(cfg.data.data_dir, n_samples=0, n_inpaint=args.n, regions=tuple(args.regions),
                                  n_posterior=args.k, seed=args.seed)  # fmt: skip
    if args.split == "val":  # the validation images stand in for the test images (never tune on the test split)
        from diffkit.modalities.image.data import FashionMNISTDataModule

        inner.test_images = FashionMNISTDataModule(data_dir=cfg.data.data_dir).arrays("val")[0]
    evaluator = LatentEvaluator(inner, cfg.modality.autoencoder_ckpt)
    metrics = evaluate(evaluator, module, steps=args.steps, seed=args.seed)
    result = {
        "ckpt": args.ckpt,
        "autoencoder_ckpt": cfg.modality.autoencoder_ckpt,
        "n_images": args.n,
        "k": args.k,
        "split": args.split,
        "steps": args.steps or int(cfg.module.sample_steps),
        "sampler": f"sample_euler_ancestral(resample={args.resample})" if sampler else cfg.sampler["_target_"],
        "given_entries_added": added,
        "wall_s": time.monotonic() - started,
        **metrics,
    }
    write_json(result, args.json)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
