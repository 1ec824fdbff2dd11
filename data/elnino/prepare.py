"""Build a time series from a statsmodels data set or your own CSV (no download), split in time, scaled on train.

python data/elnino/prepare.py                                   # -> data/elnino/out/series.npz (monthly El Niño SST)
python data/elnino/prepare.py --source co2 --out data/co2/out   # another statsmodels set: co2, macrodata, sunspots
python data/elnino/prepare.py --source my.csv --time-column date --out data/mine/out   # your CSV
"""

from __future__ import annotations

import argparse
from pathlib import Path

from diffkit.modalities.timeseries.datasets import load_series, prepare_series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder")
    parser.add_argument("--source", default="elnino", help="statsmodels data set name, or a path to a .csv")
    parser.add_argument("--time-column", default="time", help="the CSV's time column")
    parser.add_argument("--fractions", type=float, nargs=2, default=(0.1, 0.2), help="val and test shares")
    args = parser.parse_args()
    path = prepare_series(args.out, args.source, time_column=args.time_column, fractions=tuple(args.fractions))
    series = load_series(args.out)
    for split in ("train", "val", "test"):
        start, end = series.bounds(split)
        print(f"{split:5s}: steps {start:5d}..{end - 1:5d} ({end - start} steps)")
    print(f"series {', '.join(series.names)}; mean {series.mean.round(3)}, std {series.std.round(3)} (train)")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
