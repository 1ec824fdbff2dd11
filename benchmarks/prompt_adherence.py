"""Prompt adherence vs classifier-free guidance scale for a text-prompted Fashion-MNIST latent model.

    python benchmarks/prompt_adherence.py --ckpt outputs/text/checkpoints/last.ckpt --scales 0 1 2 3 5 \
        --json benchmarks/results/prompt_adherence.json --plot docs/results/latent_text_adherence.png

Prompts are the held-out test phrasings only ("a product shot of a dark coat", ...; never seen in training), every
(class, brightness) pair, `--per-prompt` samples each (--phrasings train: the training phrasings, to choose a
guidance scale without looking at the test prompts). Per guidance scale it reports: class accuracy (the project's
cached Fashion-MNIST classifier, argmax == prompted class), attribute accuracy (the decoded sample's mean pixel in
the prompted class's brightness terciles, fitted on the train split as in training), both at once, each for the
seen and the held-out (class, attribute) pairs (never captioned in training), and FMNIST-FD of all samples against
the 10k test images, beside real training images and Gaussians at the same sample count.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from diffkit.config import load
from diffkit.io import write_json
from diffkit.modalities.image.fashion_eval import FashionMNISTEvaluator
from diffkit.modalities.image.metrics import frechet_distance
from diffkit.modalities.latent.captions import HELD_OUT, attribute_of, fit_terciles, prompt_set


def sample_prompts(module, prompts: list[str], per_prompt: int, scale: float, steps: int, seed: int) -> torch.Tensor:
    """Decoded samples [len(prompts)·per_prompt,1,28,28] in [-1,1], prompts in turn, `per_prompt` each."""
    modality, out = module.modality, []
    generator = torch.Generator().manual_seed(seed)
    captions = [p for p in prompts for _ in range(per_prompt)]
    for start in range(0, len(captions), 250):
        chunk = captions[start : start + 250]
        z = module.sample(len(chunk), modality.embed(chunk), steps=steps, generator=generator, guidance_scale=scale)
        out.append(modality.from_latent(z).cpu())
    return torch.cat(out)


def rates(hit: torch.Tensor, held: torch.Tensor) -> dict[str, float]:
    """Mean of a bool [N] overall, on seen and on held-out pairs."""
    return {"all": float(hit.float().mean()), "seen": float(hit[~held].float().mean()),
            "held_out": float(hit[held].float().mean())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0, 5.0])
    parser.add_argument("--per-prompt", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--data-dir", default="data/fashion_mnist/out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phrasings", choices=["test", "train"], default="test",
                        help="test: the held-out phrasings (the reported numbers); train: the training phrasings, "
                        "to choose a guidance scale without looking at the test prompts")  # fmt: skip
    parser.add_argument("--json", default="benchmarks/results/prompt_adherence.json")
    parser.add_argument("--plot", default="docs/results/latent_text_adherence.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    module = load(args.ckpt).eval()
    prompts = [(p, c, a) for p, c, a in prompt_set(args.phrasings) if a is not None]
    n = len(prompts) * args.per_prompt  # baselines (real train images, Gaussians) scored at the same n: FD is biased
    evaluator = FashionMNISTEvaluator(data_dir=args.data_dir, n_samples=n, seed=args.seed)
    terciles = fit_terciles(evaluator.train_images, evaluator.train_labels)  # as the captioned data module
    labels = torch.tensor([c for _, c, _ in prompts]).repeat_interleave(args.per_prompt)
    attrs = torch.tensor([a for _, _, a in prompts]).repeat_interleave(args.per_prompt)
    held = torch.tensor([(int(c), int(a)) in set(HELD_OUT) for c, a in zip(labels, attrs, strict=True)])
    real_attr = attribute_of(evaluator.test_images, evaluator.test_labels, terciles)
    results: dict = {
        "ckpt": str(args.ckpt), "prompts": len(prompts), "per_prompt": args.per_prompt, "steps": args.steps,
        "phrasings": args.phrasings, "held_out_pairs": [list(p) for p in HELD_OUT],
        "baselines": {k: v for k, v in evaluator.baseline_metrics().items() if k.startswith(("fd_", "classifier"))},
        "real_test_attribute_shares": torch.bincount(real_attr, minlength=3).div(len(real_attr)).tolist(),
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "scales": {},
    }  # fmt: skip
    for scale in args.scales:
        start = time.perf_counter()
        images = sample_prompts(module, [p for p, _, _ in prompts], args.per_prompt, scale, args.steps, args.seed)
        with torch.no_grad():
            pred = torch.cat([evaluator.classifier(b).argmax(1) for b in images.split(2000)])
            fd = frechet_distance(evaluator.features(images), evaluator.reference)
        class_hit, attr_hit = pred == labels, attribute_of(images, labels, terciles) == attrs
        results["scales"][str(scale)] = {
            "class_acc": rates(class_hit, held), "attribute_acc": rates(attr_hit, held),
            "both_acc": rates(class_hit & attr_hit, held), "fd": fd, "n": len(images),
            "seconds": time.perf_counter() - start,
        }  # fmt: skip
        r = results["scales"][str(scale)]
        print(f"scale {scale}: class {r['class_acc']}, attribute {r['attribute_acc']}, FD {fd:.1f}", flush=True)
        write_json(results, args.json)
    plot(results, args.plot)


def plot(results: dict, path: str) -> None:
    """Adherence (class, attribute; seen and held-out pairs) and FD vs guidance scale, one small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = sorted(results["scales"], key=float)
    x = [float(s) for s in scales]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
    for key, label in (("class_acc", "class"), ("attribute_acc", "attribute")):
        for part, style in (("seen", "-o"), ("held_out", "--s")):
            left.plot(x, [100 * results["scales"][s][key][part] for s in scales], style, label=f"{label}, {part}")
    left.axhline(90, color="grey", lw=0.5)
    left.axhline(80, color="grey", lw=0.5, ls=":")
    left.set(xlabel="guidance scale", ylabel="accuracy (%)", title="prompt adherence (held-out phrasings)")
    left.legend(fontsize=7)
    right.plot(x, [results["scales"][s]["fd"] for s in scales], "-o", color="C3")
    right.set(xlabel="guidance scale", ylabel="FMNIST-FD", title=f"FD of {results['scales'][scales[0]]['n']} samples")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
