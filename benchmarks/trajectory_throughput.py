"""diffkit's temporal UNet (the U-maze recipe's) vs diffusers' UNet1DModel in its Diffuser TemporalUnet layout, at
equal parameter count (±5%), training and planning throughput interleaved in one run.

    python benchmarks/trajectory_throughput.py --threads 1 --json benchmarks/results/trajectory_throughput.json

Both read [B, 12, 128] (4 state channels + the given start/goal and their mask, as diffkit's KnownChannels feed
them) and write [B, 4, 128]. Training = forward + MSE backward + AdamW step; planning = a no-grad forward on the
evaluation's batch of 100 plans. Each repeat times both nets back to back (alternating which goes first), so
machine load hits both alike; the ratio is diffkit / diffusers (> 1 = diffkit faster). diffusers is a
benchmark-only dependency (`pip install -e ".[bench]"`).
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from throughput import compare, n_params, save
from torch import nn

from diffkit.nets.encoders import KnownChannels
from diffkit.nets.unet import UNet

HORIZON, STATE = 128, 4


def diffusers_temporal_unet(target: int) -> nn.Module:
    """UNet1DModel with the layout of Diffuser's TemporalUnet (diffusers' value-guided pipeline config), the widths
    chosen to best match `target` parameters."""
    from diffusers import UNet1DModel

    best = None
    grid = ((a, b, c) for a in (24, 32, 40) for b in range(48, 104, 8) for c in range(112, 184, 8))
    for widths in grid:  # multiples of 8 (its group norms), widening with depth like Diffuser's (1, 2, 4)
        net = UNet1DModel(
            in_channels=3 * STATE, out_channels=STATE, block_out_channels=widths, layers_per_block=1,
            down_block_types=("DownResnetBlock1D",) * 3, up_block_types=("UpResnetBlock1D",) * 2,
            mid_block_type="MidResTemporalBlock1D", out_block_type="OutConv1DBlock", act_fn="mish",
            time_embedding_type="positional", use_timestep_embedding=True, flip_sin_to_cos=False, freq_shift=1,
            norm_num_groups=8, downsample_each_block=False,
        )  # fmt: skip
        if best is None or abs(n_params(net) - target) < abs(n_params(best) - target):
            best = net
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--sample-batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default="benchmarks/results/trajectory_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    # The backbone of recipes/trajectory/pointmaze_umaze.yaml.
    ours = UNet(STATE, dims=1, channels=32, channel_mult=(1, 2, 4), num_res_blocks=1, inputs=partial(KnownChannels))
    theirs = diffusers_temporal_unet(n_params(ours))
    ratio = n_params(theirs) / n_params(ours)
    print(f"params: diffkit {n_params(ours):,}  diffusers {n_params(theirs):,}  (diffusers/diffkit {ratio:.3f})")
    if abs(ratio - 1) > 0.05:
        raise SystemExit("parameter counts differ by more than 5%; widen the search in diffusers_temporal_unet()")

    def call_ours(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        cond = {"known": x[:, STATE : 2 * STATE], "mask": x[:, 2 * STATE :]}
        return net(x[:, :STATE], torch.zeros(len(x)), cond)

    def call_theirs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net(x, torch.zeros(len(x))).sample

    nets = {"diffkit": (ours, call_ours), "diffusers": (theirs, call_theirs)}
    x_train = torch.randn(args.train_batch, 3 * STATE, HORIZON)
    x_sample = torch.randn(args.sample_batch, 3 * STATE, HORIZON)
    result = compare(nets, x_train, x_sample, repeats=args.repeats, steps=args.steps, unit="win/s")
    save({"args": vars(args), **result}, args.json)


if __name__ == "__main__":
    main()
