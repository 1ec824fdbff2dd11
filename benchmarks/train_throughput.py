"""Training throughput: DiffusionModule under a Lightning Trainer vs a plain PyTorch loop, interleaved in one run.

    python benchmarks/train_throughput.py                       # recipe image/digits, batch 128, CPU
    python benchmarks/train_throughput.py --recipe smoke/image --repeats 8

Both sides train the same network (the recipe's EDM-preconditioned UNet) with the same loss, optimizer, gradient
clipping, EMA update and data loader (the DataModule's sharded, shuffled loader), one optimizer step per batch.
The Trainer runs with what the recipe sets minus logger, progress bar, checkpointing and validation
(logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0); the module still does
its own per-step work (seeded global-batch noise draws, rank-mean loss, finite checks, grad-norm, self.log).
After one untimed round of each, repeats alternate Lightning / plain so machine load hits both alike; each repeat
times `--steps` steps after `--warmup` untimed ones, from the start of the first timed batch to the end of the
last (data loading included), all inside the full-size batches of one epoch. Wall and process-CPU clocks are both
reported, as best-of-N (the least disturbed repeat, as `timeit` does) and median.

References:
    lightning-hydra-template (the Trainer setup); PyTorch `torch.optim` training loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import open_dict  # noqa: E402

from diffkit.config import build_module  # noqa: E402


def compose_cfg(recipe: str, batch_size: int, out: Path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", [f"recipe={recipe}", f"data.batch_size={batch_size}"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir, cfg.hydra.runtime.cwd, cfg.hydra.job.num = str(out), str(ROOT), 0
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


class Timer(L.Callback):
    """Wall time from the start of batch `warmup` to the end of the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, (0.0, 0.0), (0.0, 0.0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:  # a fresh Trainer counts from 0
            self.start = clocks()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = clocks()


def clocks() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time is what other jobs on a shared machine distort least."""
    return time.perf_counter(), time.process_time()


def rates(n: int, start: tuple[float, float], end: tuple[float, float]) -> tuple[float, float]:
    return n / (end[0] - start[0]), n / (end[1] - start[1])


def lightning_run(module, datamodule, cfg, steps: int, warmup: int) -> tuple[float, float]:
    timer = Timer(warmup)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=warmup + steps, max_epochs=-1,
        gradient_clip_val=cfg.trainer.gradient_clip_val, precision=cfg.trainer.precision, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        num_sanity_val_steps=0, callbacks=[timer],
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    return rates(steps * datamodule.batch_size, timer.start, timer.end)


def plain_run(module, loader_fn, optimizer, clip: float, steps: int, warmup: int) -> tuple[float, float]:
    denoiser, loss_fn, modality = module.denoiser, module.loss, module.modality
    denoiser.train()
    done, start, batch_size = 0, (0.0, 0.0), 0
    while done < warmup + steps:
        for batch in loader_fn():
            if done == warmup:
                start = clocks()
            x0, cond = modality.encode(batch)
            loss = loss_fn(denoiser, x0, cond).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(denoiser.parameters(), clip)
            optimizer.step()
            module.ema.update(denoiser)
            batch_size, done = x0.shape[0], done + 1
            if done == warmup + steps:
                break
    return rates(steps * batch_size, start, clocks())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="image/digits")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)  # warmup + steps <= full batches of one epoch (11 here)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)  # 1: least sensitive to other jobs on a shared CPU
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = compose_cfg(args.recipe, args.batch_size, ROOT / "outputs" / "bench")
    L.seed_everything(cfg.seed, verbose=False)
    module_l, module_p = build_module(cfg), build_module(cfg)
    module_p.load_state_dict(module_l.state_dict())
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    optimizer = module_p.optimizer_factory(params=module_p.denoiser.parameters())
    clip = float(cfg.trainer.gradient_clip_val)
    if args.warmup + args.steps > len(datamodule.splits["train"]) // args.batch_size:
        parser.error("--warmup + --steps must fit in the full batches of one epoch (no odd-sized last batch)")
    lightning_run(module_l, datamodule, cfg, args.steps, args.warmup)  # untimed: kernels and caches warm up
    plain_run(module_p, datamodule.train_dataloader, optimizer, clip, args.steps, args.warmup)
    results: dict[str, list[tuple[float, float]]] = {"lightning": [], "plain": []}
    for r in range(args.repeats):  # alternate, so drifting machine load hits both sides alike
        results["lightning"].append(lightning_run(module_l, datamodule, cfg, args.steps, args.warmup))
        results["plain"].append(
            plain_run(module_p, datamodule.train_dataloader, optimizer, clip, args.steps, args.warmup)
        )
        (lw, lc), (pw, pc) = results["lightning"][-1], results["plain"][-1]
        print(f"repeat {r}: samples/s wall lightning {lw:.1f} plain {pw:.1f}; per CPU-second {lc:.1f} / {pc:.1f}")
    for i, clock in enumerate(["wall", "CPU"]):
        for name, stat in [("best", max), ("median", statistics.median)]:  # best-of-N: the least disturbed repeat
            lm, pm = stat(x[i] for x in results["lightning"]), stat(x[i] for x in results["plain"])
            print(f"{name} samples/s ({clock} clock): lightning {lm:.1f}, plain {pm:.1f}, ratio {lm / pm:.3f}")
    print(f"recipe {args.recipe}, batch {args.batch_size}, {args.repeats} x {args.steps} steps; "
          f"torch {torch.__version__}, lightning {L.__version__}, {torch.get_num_threads()} threads")  # fmt: skip


if __name__ == "__main__":
    main()
