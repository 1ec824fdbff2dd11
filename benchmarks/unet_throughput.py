"""diffkit's UNet vs diffusers' UNet2DModel on 28x28 images at equal parameter count (±5%), interleaved in one run.

    python benchmarks/unet_throughput.py                       # the Fashion-MNIST recipe's UNet, 2 CPU threads
    python benchmarks/unet_throughput.py --repeats 10 --train-batch 128 --json benchmarks/results/unet.json

Training = forward + MSE backward + AdamW step on a batch; sampling = a no-grad forward on a larger batch.
Each repeat times both nets back to back (alternating which goes first), so machine load hits both alike;
the table reports medians and the ratio diffkit / diffusers (> 1 = diffkit faster). diffusers is a
benchmark-only dependency (`pip install -e ".[bench]"`); the library never imports it.
"""

from __future__ import annotations

import argparse

import torch
from throughput import compare, n_params, save
from torch import nn

from diffkit.nets.unet import UNet


def diffusers_unet(target: int) -> nn.Module:
    """A UNet2DModel with the recipe's layout (3 levels, attention at 7x7) whose width best matches `target` params."""
    from diffusers import UNet2DModel

    best = None
    for base, deep in ((b, d) for b in range(24, 44, 4) for d in range(2 * b - 8, 2 * b + 12, 4)):
        widths = (base, deep, deep)
        net = UNet2DModel(
            sample_size=28, in_channels=1, out_channels=1, block_out_channels=widths, layers_per_block=2,
            down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"), norm_num_groups=4,
            attention_head_dim=widths[-1] // 4,
        )  # fmt: skip
        if best is None or abs(n_params(net) - target) < abs(n_params(best) - target):
            best = net
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--sample-batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="benchmarks/results/unet_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    # The UNet of recipes/image/fashion_mnist.yaml.
    ours = UNet(1, channels=32, channel_mult=(1, 2, 2), num_res_blocks=2, attn_levels=(2,))
    theirs = diffusers_unet(n_params(ours))
    ratio = n_params(theirs) / n_params(ours)
    print(f"params: diffkit {n_params(ours):,}  diffusers {n_params(theirs):,}  (diffusers/diffkit {ratio:.3f})")
    if abs(ratio - 1) > 0.05:
        raise SystemExit("parameter counts differ by more than 5%; widen the search in diffusers_unet()")
    nets = {
        "diffkit": (ours, lambda net, x: net(x, torch.zeros(len(x)))),
        "diffusers": (theirs, lambda net, x: net(x, torch.zeros(len(x))).sample),
    }
    x_train, x_sample = torch.randn(args.train_batch, 1, 28, 28), torch.randn(args.sample_batch, 1, 28, 28)
    result = compare(nets, x_train, x_sample, repeats=args.repeats, steps=args.steps, unit="img/s")
    save({"args": vars(args), **result}, args.json)


if __name__ == "__main__":
    main()
