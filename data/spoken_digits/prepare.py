"""Synthesise the spoken-digits set (SC09-like, zero..nine) with espeak-ng: 16 kHz, 1 s, 16-bit WAV + manifest.

python data/spoken_digits/prepare.py                      # -> data/spoken_digits/out/ (1,100 speakers, 11,000 clips)
python data/spoken_digits/prepare.py --speakers 20 --out /tmp/digits   # a small set
Needs the Debian package espeak-ng (apt-get update && apt-get install -y espeak-ng).
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

from diffkit.modalities.audio.datasets import prepare_digits, read_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder")
    parser.add_argument("--speakers", type=int, default=1100, help="distinct speakers (10 clips each)")
    parser.add_argument("--fractions", type=float, nargs=2, default=(0.1, 0.1), help="val and test shares of voices")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.time()
    path = prepare_digits(args.out, args.speakers, fractions=tuple(args.fractions), seed=args.seed, log_every=100)
    rows = read_manifest(args.out)
    counts = collections.Counter(r["split"] for r in rows)
    voices = {s: len({r["speaker"].split("_s")[0] for r in rows if r["split"] == s}) for s in counts}
    for split in ("train", "val", "test"):
        print(f"{split:5s}: {counts[split]:6d} clips, {voices.get(split, 0)} voices")
    print(f"wrote {path} ({len(rows)} clips) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
