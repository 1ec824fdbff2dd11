"""Generate a PointMaze data set the way D4RL's maze2d was made: the waypoint controller over shortest paths to
random goal cells, a new goal on arrival, one long stream in the D4RL field layout (npz).

python data/pointmaze/prepare.py                               # -> data/pointmaze/out/umaze_1000000_s0.npz
python data/pointmaze/prepare.py --layout large --steps 1000000 --seed 0
python data/pointmaze/prepare.py --check my_maze2d.hdf5        # check a D4RL/Minari-layout file of your own
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from diffkit.modalities.trajectory.adapter import write_normalizer
from diffkit.modalities.trajectory.dataset import generate_stream, load_stream, save_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder")
    parser.add_argument("--layout", default="umaze", choices=["umaze", "medium", "large"])
    parser.add_argument("--steps", type=int, default=1_000_000, help="stream length (D4RL: 1 M)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--action-noise", type=float, default=0.0, help="D4RL's --noisy used 0.5")
    parser.add_argument("--check", help="only check this file's fields and print them")
    args = parser.parse_args()
    if args.check:
        stream = load_stream(args.check)
        print({k: (v.shape, str(v.dtype)) for k, v in stream.items()})
        return
    noise = f"_noise{args.action_noise:g}" if args.action_noise else ""
    path = Path(args.out) / f"{args.layout}_{args.steps}_s{args.seed}{noise}.npz"
    # gymnasium-robotics writes the maze XML to the temp folder: keep it beside the data.
    tempfile.tempdir = str(Path(args.out) / "tmp")
    os.makedirs(tempfile.tempdir, exist_ok=True)
    started = time.monotonic()
    stream = generate_stream(args.layout, args.steps, args.seed, args.action_noise)
    seconds = time.monotonic() - started
    save_stream(stream, path)
    obs, goals = stream["observations"], stream["infos/goal"]
    arrivals = int(np.any(goals[1:] != goals[:-1], axis=1).sum())
    print(f"{args.steps} steps in {seconds:.0f} s ({args.steps / seconds:,.0f} steps/s), {arrivals} goals reached")
    print(f"x, y, vx, vy min {obs.min(0).round(2)} max {obs.max(0).round(2)}")
    print(f"wrote {path}")
    if args.action_noise == 0:  # the data module's normalizer (train split = the first 95% of the stream)
        n_train = int(len(obs) * 0.95)
        write_normalizer(obs[:n_train, :4], Path(args.out) / f"{args.layout}_{args.steps}_s{args.seed}.normalizer.json")


if __name__ == "__main__":
    main()
