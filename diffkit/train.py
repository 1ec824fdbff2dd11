"""Train a diffusion model from a Hydra recipe.

    python -m diffkit.train                                   # default recipe: image/digits
    python -m diffkit.train recipe=smoke/image trainer.max_steps=20
    python -m diffkit.train recipe=image/digits sampler=dpmpp_2m module.sample_steps=10 logger=csv

Outputs (checkpoints, sample grids, metrics.json, logs) go to the run folder printed at start,
`outputs/<recipe>/<date>_<time>/` by default.

References:
    lightning-hydra-template src/train.py (the entry script only instantiates and runs).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from diffkit.config import build_module, to_dict
from diffkit.io import write_json
from diffkit.modalities.base import DataError
from diffkit.training.evaluation import evaluate, showcase

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit the module on the data module; return the final metrics (also written to metrics.json)."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values() if lg is not None]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(to_dict(cfg))
    evaluator = instantiate(cfg.evaluator) if cfg.get("evaluator") else None
    out_dir = Path(cfg.paths.output_dir)
    log.info("run folder: %s", out_dir)
    metrics: dict[str, float] = {}
    if evaluator is not None and cfg.eval.before_training:
        metrics.update({f"init/{k}": v for k, v in evaluate(evaluator, module, steps=cfg.eval.steps).items()})
        log.info("untrained model: %s", metrics)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1})
    if cfg.eval.get("test_loss", False):  # the training loss on the test split under EMA weights (text: nats/token)
        results = trainer.test(module, datamodule=datamodule, verbose=False)
        metrics.update({k: float(v) for k, v in results[0].items()} if results else {})
    if trainer.is_global_zero:
        showcase(module, str(out_dir / "samples"), n=cfg.eval.n_grid, steps=cfg.eval.steps)
    if evaluator is not None:
        metrics.update({f"test/{k}": v for k, v in evaluate(evaluator, module, steps=cfg.eval.steps).items()})
    write_json(metrics, out_dir / "metrics.json")
    log.info("metrics: %s", metrics)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point (console script `diffkit-train`)."""
    try:
        metrics = run(cfg)
    except DataError as err:  # a user error (bad data file): one line, no traceback
        sys.exit(f"diffkit-train: {err}")
    return metrics.get(cfg.get("optimized_metric", ""), None)


if __name__ == "__main__":
    main()
