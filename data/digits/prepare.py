"""Build the digits data set from the real 8x8 scans that scikit-learn ships (no download).

python data/digits/prepare.py                 # -> data/digits/out/digits.npz
python data/digits/prepare.py --out DIR --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from diffkit.modalities.image.datasets import SPLITS, load_digits_split, prepare_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    args = parser.parse_args()
    path = prepare_digits(args.out, seed=args.seed)
    for split in SPLITS:
        images, labels = load_digits_split(path, split)
        print(f"{split:5s}: {len(images):4d} images {images.shape[1:]}, classes {sorted(set(labels.tolist()))}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
