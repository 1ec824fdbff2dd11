"""The bars a class-conditional spoken-digit model has to clear, measured by the evaluator it is scored with.

    python benchmarks/audio_digit_baselines.py --json benchmarks/results/audio_digit_baselines.json

Builds evaluator=spoken_digits on the prepared spoken digits (data/spoken_digits/prepare.py): trains (or loads) the
project's digit classifier on the train split, then scores at n samples against the test split (voices never heard
in training): the real test clips' accuracy, the Fréchet distance of as many real training clips (the floor) and of
a full-covariance Gaussian per class fitted to the training log-mels (the bar), and, rendered by Griffin-Lim 100,
what a listener hears of those Gaussians beside DNSMOS of the real clips and of Griffin-Lim from their log-mels.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from diffkit.modalities.audio.digits_eval import SpokenDigitsEvaluator
from diffkit.modalities.audio.mel import MelModality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data/spoken_digits/out")
    parser.add_argument("--n", type=int, default=1000, help="samples per FD (the evaluator's n_samples)")
    parser.add_argument("--n-render", type=int, default=100, help="clips rendered and judged by DNSMOS")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    modality = MelModality(num_classes=10, data_dir=args.data_dir)
    evaluator = SpokenDigitsEvaluator(modality, n_samples=args.n, n_render=args.n_render)
    results = {"classifier_val_acc": evaluator.classifier_val_acc, **evaluator.baselines(args.n)}
    results = {key: round(value, 4) for key, value in results.items()}
    for key, value in results.items():
        print(f"{key:36s} {value}")
    if args.json is not None:
        meta = {"n": args.n, "n_render": args.n_render, "seconds": round(time.perf_counter() - start),
                "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                "command": "python benchmarks/audio_digit_baselines.py --json " + str(args.json)}  # fmt: skip
        args.json.write_text(json.dumps({"results": results, "meta": meta}, indent=2) + "\n")


if __name__ == "__main__":
    main()
