"""Inpainting figure: test images with a region hidden, the Wiener fill, and each checkpoint's completion, one PNG.

    python benchmarks/inpaint_figure.py --ckpt outputs/fashion_mnist_bf16/checkpoints/last.ckpt \
        outputs/s19/finp/checkpoints/last.ckpt --region bottom --n 10 --out docs/fashion_inpaint_bottom.png

Rows, top to bottom: the test images, the input (hidden pixels grey), the Wiener (conditional Gaussian) fill fitted
to the training images, then one seeded completion per checkpoint (its own inpainting sampler, e.g. RePaint, as the
evaluator uses it). Columns: the n first test images. Scores of the same completions are printed per row.
"""

from __future__ import annotations

import argparse
import json

import torch

from diffkit.config import load, load_config
from diffkit.modalities.image.adapter import save_grid
from diffkit.modalities.image.baselines import fit_gaussian, wiener_fill
from diffkit.modalities.image.data import FashionMNISTDataModule
from diffkit.modalities.image.datasets import to_pixels
from diffkit.modalities.image.metrics import half_mask, inpainting_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", nargs="+", required=True, help="Fashion-MNIST checkpoints, one row each")
    parser.add_argument("--region", default="bottom", choices=["bottom", "center", "right"])
    parser.add_argument("--n", type=int, default=10, help="test images (columns)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="PNG path")
    args = parser.parse_args()

    data = FashionMNISTDataModule(data_dir=load_config(args.ckpt[0]).data.data_dir)
    data.prepare_data()
    train, _ = data.arrays("train")
    target = data.arrays("test")[0][: args.n]
    mask = half_mask(tuple(target.shape), side=args.region)
    known = target * mask
    rows = {"input": known}  # hidden pixels are 0: mid-grey in [-1, 1]
    rows["wiener"] = wiener_fill(known, mask, *fit_gaussian(train))
    for ckpt in args.ckpt:
        module = load(ckpt)
        generator = torch.Generator().manual_seed(args.seed)
        rows[ckpt] = module.sample(args.n, known=known, mask=mask, generator=generator).cpu()
    for name, images in rows.items():
        if name != "input":
            print(json.dumps({"row": name, **inpainting_scores(images, target)}))
    grid = torch.cat([target, *rows.values()])
    save_grid(to_pixels(grid), args.out, nrow=args.n)
    print(f"wrote {args.out}: rows = test images, {', '.join(rows)}")


if __name__ == "__main__":
    main()
