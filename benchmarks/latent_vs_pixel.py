"""Latent vs pixel diffusion at equal training wall time (issue #25): training and sampling images/s, FMNIST-FD.

    python -m diffkit.train recipe=image/fashion_mnist_latent modality.autoencoder_ckpt=VAE.ckpt \
        +trainer.max_time=00:01:00:00 eval.after_training=false hydra.run.dir=outputs/lvp_latent  # fit time T
    python -m diffkit.train recipe=image/fashion_mnist_cond trainer.max_steps=100000 trainer.min_epochs=0 \
        +trainer.max_time=00:00:MM:SS eval.after_training=false hydra.run.dir=outputs/lvp_pixel   # stops at T
    python -m diffkit.train recipe=image/fashion_mnist_cond trainer.max_steps=100000 trainer.min_epochs=0 \
        +trainer.max_time=00:00:MM:SS eval.after_training=false ckpt_path=outputs/lvp_pixel/checkpoints/last.ckpt \
        hydra.run.dir=outputs/lvp_pixel_vae   # resumed to T + the autoencoder's training time
    python benchmarks/latent_vs_pixel.py --latent outputs/lvp_latent/checkpoints/last.ckpt \
        --pixel outputs/lvp_pixel/checkpoints/last.ckpt outputs/lvp_pixel_vae/checkpoints/last.ckpt \
        --json benchmarks/results/latent_vs_pixel.json

All models are scored by the same FashionMNISTEvaluator (the latent one through its decoder, LatentEvaluator):
--n class-conditional samples (labels 0..9 in turn) against the 10k test images, the same sampler,
steps, guidance scale and seed. Fit time (training plus its validation passes) is Lightning's Timer state stored in
each checkpoint (`+trainer.max_time` adds the Timer). Throughput is measured here, interleaved, one model after the
other in each repeat so machine load hits both alike: training = optimizer steps on real training batches through
`modality.encode` (the latent side pays its frozen encoder) under each recipe's precision; sampling = decoded
images per second (the latent side pays its decoder), float32 as `diffkit.sample` runs.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from contextlib import nullcontext

import torch
from hydra.utils import instantiate
from omegaconf import open_dict
from throughput import cpu_name

from diffkit.config import load, load_config, read_checkpoint
from diffkit.io import write_json
from diffkit.training.evaluation import evaluate


def fit_seconds(path: str) -> dict[str, float]:
    """Lightning Timer's elapsed seconds per stage (train includes its validation passes) and the step reached."""
    ckpt = read_checkpoint(path, "cpu")
    timer = next((v for k, v in ckpt.get("callbacks", {}).items() if k.startswith("Timer")), None)
    if timer is None:
        raise SystemExit(f"{path}: no Timer state; train with +trainer.max_time=... so the fit time is recorded")
    return {"fit_s": float(timer["time_elapsed"]["train"]), "steps": int(ckpt["global_step"])}


def autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision.startswith("bf16") else nullcontext()


def train_rate(module, batches, precision: str) -> float:
    """Training images per second: encode + EDM loss + backward + AdamW step on a copy of the denoiser."""
    denoiser = copy.deepcopy(module.denoiser).train()
    opt = torch.optim.AdamW(denoiser.parameters(), lr=1e-4)
    start, n = time.perf_counter(), 0
    for batch in batches:
        with autocast(precision):
            x0, cond = module.modality.encode(batch)
            loss = module.loss(denoiser, x0, cond).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += x0.shape[0]
    return n / (time.perf_counter() - start)


@torch.no_grad()
def sample_rate(module, n: int, steps: int, scale: float) -> float:
    """Decoded images per second: sampling (with guidance) plus the modality's decode to pixels."""
    cond = {"label": torch.arange(n) % 10}
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    module.modality.decode(module.sample(n, cond, steps=steps, generator=generator, guidance_scale=scale), cond)
    return n / (time.perf_counter() - start)


def evaluator_for(cfg, n: int, baselines: bool):
    """The checkpoint's evaluator scoring n conditional samples, generation only (no inpainting)."""
    spec = copy.deepcopy(cfg.evaluator)
    inner = spec.inner if "inner" in spec else spec
    with open_dict(inner):
        inner.n_samples, inner.n_inpaint, inner.conditional, inner.baselines = n, 0, True, baselines
    return instantiate(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latent", required=True, help="checkpoint of recipe=image/fashion_mnist_latent")
    parser.add_argument("--pixel", required=True, nargs="+",
                        help="checkpoints of recipe=image/fashion_mnist_cond (e.g. stopped at T and at T + the "
                             "autoencoder's time); throughput is measured on the first")  # fmt: skip
    parser.add_argument("--n", type=int, default=1000, help="samples scored per model")
    parser.add_argument("--steps", type=int, default=20, help="sampler steps (the latent recipe's)")
    parser.add_argument("--scale", type=float, default=1.5, help="guidance scale (both recipes' default)")
    parser.add_argument("--train-batches", type=int, default=4, help="timed training batches per repeat")
    parser.add_argument("--sample-n", type=int, default=100, help="images per timed sampling call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    paths = {"latent": args.latent, **{f"pixel_{i}": path for i, path in enumerate(args.pixel)}}
    modules = {name: load(path) for name, path in paths.items()}
    cfgs = {name: load_config(path) for name, path in paths.items()}
    result: dict = {"n": args.n, "steps": args.steps, "scale": args.scale, "cpu": cpu_name(),
                    "threads": torch.get_num_threads()}  # fmt: skip
    for name, path in paths.items():
        row = {"ckpt": path, **fit_seconds(path), "trainer_precision": str(cfgs[name].trainer.precision),
               "batch_size": int(cfgs[name].data.batch_size),
               "params": sum(p.numel() for p in modules[name].denoiser.parameters())}  # fmt: skip
        row["run_train_images_per_s"] = row["steps"] * row["batch_size"] / row["fit_s"]  # validation included
        result[name] = row

    timed = ("latent", "pixel_0")
    data = instantiate(cfgs["pixel_0"].data)
    data.prepare_data()
    data.setup("fit")
    batches = [b for b, _ in zip(data.train_dataloader(), range(args.train_batches), strict=False)]
    raw = {name: {"train": [], "sample": []} for name in timed}
    for name in timed:  # warm-up
        train_rate(modules[name], batches[:1], result[name]["trainer_precision"])
        sample_rate(modules[name], 10, 2, args.scale)
    for rep in range(args.repeats):
        for name in timed if rep % 2 == 0 else timed[::-1]:
            raw[name]["train"].append(train_rate(modules[name], batches, result[name]["trainer_precision"]))
            raw[name]["sample"].append(sample_rate(modules[name], args.sample_n, args.steps, args.scale))
            train, sample = raw[name]["train"][-1], raw[name]["sample"][-1]
            print(f"repeat {rep} {name}: train {train:.1f} images/s, sample {sample:.1f} images/s")
    for name in timed:
        result[name]["train_images_per_s"] = statistics.median(raw[name]["train"])
        result[name]["sample_images_per_s"] = statistics.median(raw[name]["sample"])
        result[name]["raw"] = raw[name]
    result["ratio_latent_over_pixel"] = {
        k: result["latent"][k] / result["pixel_0"][k] for k in ("train_images_per_s", "sample_images_per_s")
    }
    print(result["ratio_latent_over_pixel"])
    for name in paths:
        scores = evaluate(evaluator_for(cfgs[name], args.n, baselines=name == "pixel_0"), modules[name],
                          steps=args.steps, seed=args.seed, inpaint=False, guidance_scale=args.scale)  # fmt: skip
        result[name].update(scores)
        write_json(result, args.json)  # after every model: a long run keeps what it has
        print(name, {k: round(v, 3) for k, v in scores.items()})


if __name__ == "__main__":
    main()
