"""diffkit's DiffWave-class net vs lmnt's PyPI `diffwave` (diffwave.model.DiffWave) at equal parameters (±5%):
training and sampling (one network evaluation) examples per second (frames × 256 samples each), interleaved.

    python benchmarks/audio_throughput.py --threads 1 --json benchmarks/results/audio_throughput.json

Both are DiffWave BASE (C=64, 30 layers, dilation cycle 10, 80 mels, ×256 upsampler) on [B,1,T] with a log-mel
[B,80,T/256]. `diffwave` is a benchmark-only dependency (`pip install -e ".[bench]"`).
"""

from __future__ import annotations

import argparse

import torch
from throughput import compare, n_params, save

from diffkit.modalities.audio.nets import DiffWave


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per repeat")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8, help="mel frames per example (× 256 samples)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default="benchmarks/results/audio_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from diffwave.model import DiffWave as LmntDiffWave
    from diffwave.params import params

    ours = DiffWave(channels=64, layers=30, dilation_cycle=10, emb_dim=512, n_mels=80)
    theirs = LmntDiffWave(params)  # lmnt defaults: C=64, 30 layers, cycle 10, 80 mels, 50 steps
    ratio = n_params(theirs) / n_params(ours)
    print(f"params: diffkit {n_params(ours):,}  diffwave {n_params(theirs):,}  (diffwave/diffkit {ratio:.3f})")
    if abs(ratio - 1) > 0.05:
        raise SystemExit("parameter counts differ by more than 5%")
    mel = torch.randn(args.batch, 80, args.frames)
    step = torch.randint(0, len(params.noise_schedule), (args.batch,))
    nets = {
        "diffkit": (ours, lambda net, x: net(x, torch.zeros(len(x)), {"mel": mel})),
        "diffwave": (theirs, lambda net, x: net(x[:, 0], mel, step)),
    }
    x = torch.randn(args.batch, 1, args.frames * 256)
    result = compare(nets, x, x, repeats=args.repeats, steps=args.steps, unit="examples/s")
    save({"args": vars(args), **result}, args.json)


if __name__ == "__main__":
    main()
