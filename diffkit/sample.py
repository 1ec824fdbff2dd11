"""Sample from a trained checkpoint; the model is rebuilt from the checkpoint alone.

    python -m diffkit.sample ckpt=PATH n=64                       # samples next to the checkpoint's run
    python -m diffkit.sample ckpt=PATH sampler=dpmpp_2m steps=10
    python -m diffkit.sample ckpt=PATH sampler=dpmpp_3m schedule=exponential steps=10
    python -m diffkit.sample ckpt=PATH sampler=heun steps=18 evaluate=true   # + the modality's evaluator
    python -m diffkit.sample ckpt=PATH evaluate=true hold=reconstruction      # ΠGDM for given entries in the scores
    python -m diffkit.sample ckpt=PATH evaluate=true evaluator.n_samples=0  # given-entry scores only
    python -m diffkit.sample ckpt=PATH guidance_scale=1.5                    # classifier-free guidance scale
    python -m diffkit.sample ckpt=PATH n=0 likelihood=true                     # bits/dim on the test split
    python -m diffkit.sample ckpt=PATH n=8 +request.<arg>=VALUE               # what to sample, in the modality's
                                                                              # terms (its request() arguments)
    python -m diffkit.sample ckpt=PATH n=16 KEY=VALUE                         # shorthand of +request.KEY=VALUE
                                                                              # for the keys listed in request_keys

References:
    k-diffusion sample.py; diffusion_policy eval.py (checkpoints carry their config).
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from diffkit.cli import one_line_errors
from diffkit.config import (
    CheckpointError,
    checkpoint_evaluator,
    checkpoint_step,
    instantiate_option,
    load,
    load_config,
)
from diffkit.io import write_json
from diffkit.modalities.base import DataError, Modality, Request
from diffkit.training.evaluation import evaluate, evaluate_likelihood

log = logging.getLogger(__name__)


def build_request(modality: Modality, n: int, args: dict[str, Any]) -> Request:
    """modality.request(n, **args), with one clear error naming the arguments the modality declares."""
    try:
        inspect.signature(modality.request).bind(n, **args)
    except TypeError:
        declared = [name for name in inspect.signature(modality.request).parameters if name != "n"]
        raise DataError(f"{type(modality).__name__} takes request arguments {declared}; got {sorted(args)}") from None
    return modality.request(n, **args)


def run(cfg: DictConfig) -> dict[str, float]:
    """Load `cfg.ckpt`, draw `cfg.n` samples, save them with the modality's logger, optionally evaluate."""
    trust = list(cfg.get("trust") or ())  # packages the user vouches for (README "Security")
    module = load(cfg.ckpt, trust=trust)
    train_cfg = load_config(cfg.ckpt, trust=trust)
    out_dir = Path(cfg.out_dir)
    sampler = instantiate_option(train_cfg, "sampler", cfg.sampler) if cfg.get("sampler") else None
    schedule = instantiate_option(train_cfg, "schedule", cfg.schedule) if cfg.get("schedule") else None
    hold = instantiate_option(train_cfg, "hold", cfg.hold) if cfg.get("hold") else None
    steps = cfg.steps or module.sample_steps
    if (cfg.get("guidance_scale") is not None or cfg.get("guidance_interval") is not None) and not module.guided:
        raise CheckpointError(f"guidance_scale and guidance_interval need a model trained with classifier-free "
                              f"guidance; {cfg.ckpt} is not")  # fmt: skip
    interval = cfg.get("guidance_interval")
    options = {"steps": steps, "sampler": sampler, "schedule": schedule, "guidance_scale": cfg.get("guidance_scale"),
               "guidance_interval": None if interval is None else tuple(interval)}  # fmt: skip
    generator = torch.Generator().manual_seed(cfg.seed)
    if cfg.n > 0:
        args = OmegaConf.to_container(cfg.request) if cfg.get("request") is not None else {}
        args.update({key: cfg[key] for key in cfg.get("request_keys") or () if cfg.get(key) is not None})
        request = build_request(module.modality, cfg.n, args)
        n = len(next(iter(request.cond.values()))) if request.cond else cfg.n  # a request may ask n per row
        samples = module.sample(n, request.cond, known=request.known, mask=request.mask, generator=generator,
                                hold=hold, guide=request.guide, **options)  # fmt: skip
        step = checkpoint_step(cfg.ckpt)  # files named after the model's training step, as the run's own grids are
        decoded = module.modality.decode(samples, request.cond)  # decoding may depend on the condition
        module.modality.log_samples(decoded, None, step=step, out_dir=str(out_dir))
        log.info("wrote %d samples to %s", n, out_dir)
    metrics: dict[str, float] = {}
    if cfg.likelihood:
        metrics.update(likelihood(cfg, module, train_cfg))
    if cfg.evaluate:
        overrides = {key: value for key, value in (cfg.get("evaluator") or {}).items() if value is not None}
        evaluator = checkpoint_evaluator(train_cfg, cfg.ckpt, overrides, cfg.get("evaluator_option"))
        metrics.update(evaluate(evaluator, module, seed=cfg.seed, hold=hold, **options))
        write_json({**metrics, "steps": steps, "ckpt": str(cfg.ckpt)}, out_dir / "metrics.json")
        log.info("metrics: %s", metrics)
    return metrics


def likelihood(cfg: DictConfig, module, train_cfg: DictConfig) -> dict[str, float]:
    """Bits/dim of the test split by the probability-flow ODE -> likelihood.json (dequantised if data is discrete)."""
    data = instantiate(train_cfg.data)
    data.prepare_data()
    data.setup("test")
    bin_width = cfg.bin_width if cfg.bin_width is not None else module.modality.bin_width
    result = evaluate_likelihood(module, data.test_dataloader(), bin_width=bin_width, steps=cfg.likelihood_steps,
                                 seed=cfg.seed, max_examples=cfg.likelihood_n)  # fmt: skip
    write_json({**result, "ckpt": str(cfg.ckpt), "split": "test"}, Path(cfg.out_dir) / "likelihood.json")
    log.info("likelihood: %s", result)
    return {f"likelihood/{k}": v for k, v in result.items()}


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (console script `diffkit-sample`)."""
    with one_line_errors("diffkit-sample", CheckpointError, DataError):  # user errors: one line, no traceback
        run(cfg)


if __name__ == "__main__":
    main()
