"""Build Fashion-MNIST from the IDX files of the Debian package `dataset-fashion-mnist` (no download).

sudo apt-get install -y dataset-fashion-mnist      # once: /usr/share/datasets/fashion-mnist/*.gz
python data/fashion_mnist/prepare.py               # -> data/fashion_mnist/out/fashion_mnist.npz
python data/fashion_mnist/prepare.py --classifier  # + train and cache the FMNIST-FD feature classifier
python data/fashion_mnist/prepare.py --source DIR  # any folder with the four MNIST-style IDX files (MNIST, KMNIST)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from diffkit.modalities.image.datasets import SPLITS
from diffkit.modalities.image.fashion_mnist import FASHION_SOURCE, load_fashion_split, prepare_fashion_mnist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder")
    parser.add_argument("--source", default=FASHION_SOURCE, help="folder holding the IDX files (.gz or raw)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    parser.add_argument("--classifier", action="store_true", help="also train and cache the feature classifier")
    args = parser.parse_args()
    path = prepare_fashion_mnist(args.out, source=args.source, seed=args.seed)
    for split in SPLITS:
        images, labels = load_fashion_split(path, split)
        print(f"{split:5s}: {len(images):5d} images {images.shape[1:]}, {len(set(labels.tolist()))} classes")
    print(f"wrote {path}")
    if args.classifier:
        from diffkit.modalities.image.fashion_eval import FashionMNISTEvaluator

        start = time.perf_counter()
        evaluator = FashionMNISTEvaluator(args.out, n_inpaint=0)
        metrics = evaluator.baseline_metrics()
        seconds = time.perf_counter() - start
        test_acc = metrics["classifier_test_acc"]
        print(f"classifier: val acc {evaluator.classifier_val_acc:.4f}, test acc {test_acc:.4f} ({seconds:.0f} s)")
        for key in sorted(metrics):
            print(f"  {key}: {metrics[key]:.4f}")


if __name__ == "__main__":
    main()
