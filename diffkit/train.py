"""Train a diffusion model from a Hydra recipe.

    python -m diffkit.train                                   # the default recipe (conf/train.yaml)
    python -m diffkit.train recipe=<group/name> trainer.max_steps=20   # any recipe under recipes/ (or a search path)
    python -m diffkit.train sampler=dpmpp_2m module.sample_steps=10 logger=csv
    python -m diffkit.train ckpt_path=last                    # continue the newest run of this task
    python -m diffkit.train trainer=ddp_sim                   # 2 CPU processes (gloo); trainer=ddp on GPUs

Outputs (checkpoints, sample grids, metrics.json, logs) go to the run folder printed at start,
`outputs/<task>/<date>_<time>/` by default; DDP ranks share it (Lightning passes hydra.run.dir to them).

References:
    lightning-hydra-template src/train.py (the entry script only instantiates and runs).
"""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from omegaconf import DictConfig, open_dict

from diffkit.cli import check_trainer_args, one_line_errors
from diffkit.config import (
    CheckpointError,
    build_module,
    check_resumable,
    checkpoint_step,
    init_weights,
    resolve_ckpt_path,
    to_dict,
)
from diffkit.io import write_json
from diffkit.modalities.base import DataError
from diffkit.security import targets
from diffkit.training.checkpoint import LastCheckpoint
from diffkit.training.evaluation import evaluate, showcase
from diffkit.training.loggers import WANDB_ID_FILE, finish_wandb, keep_csv_history
from diffkit.training.model_summary import with_model_summary
from diffkit.training.precision import resolve_precision
from diffkit.training.quiet import quiet_dependencies
from diffkit.training.summary import evaluator_headlines, final_checkpoint, process_seconds, run_summary

log = logging.getLogger(__name__)


def _warn_if_frozen(module: L.LightningModule) -> None:
    """Warn about modules left in eval mode before training, other than the EMA copy."""
    frozen = [name for name, m in module.named_modules() if not m.training and name.split(".")[0] != "ema"]
    if frozen:
        log.warning("%d module(s) besides the EMA copy are in eval mode before training: %s", len(frozen), frozen[:5])


def _recipe() -> str | None:
    """The recipe this run composed (`recipe=` choice), e.g. "<group>/<name>"; None outside a Hydra run."""
    return HydraConfig.get().runtime.choices.get("recipe") if HydraConfig.initialized() else None


def run(cfg: DictConfig, *, started: float | None = None) -> dict[str, float]:
    """Fit the module on the data module; return the final metrics (also written to metrics.json) and print a
    summary. started: time.monotonic() when the command started (the summary's wall time); None = now."""
    started = time.monotonic() if started is None else started
    to_dict(cfg)  # every ??? and ${...} resolves before anything is built, so an error names its key
    check_trainer_args(cfg.trainer)
    L.seed_everything(cfg.seed, workers=True)
    with open_dict(cfg):  # before the config is recorded, so checkpoints and loggers show the precision used
        cfg.trainer.precision = resolve_precision(cfg.trainer.precision, cfg.trainer.get("accelerator", "auto"))
    out_dir, rank_zero = Path(cfg.paths.output_dir), rank_zero_only.rank == 0
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    ckpt_path = resolve_ckpt_path(cfg)
    trust = [*(cfg.get("trust") or ()), *targets(module.resolved_config)]  # this run's own targets are the user's
    if cfg.get("init_from") and ckpt_path is None:  # fine-tuning: weights only; a resume restores everything instead
        init_weights(module, cfg.init_from, trust=trust)
        log.info("initialised the weights from %s (EMA weights; new input channels at zero)", cfg.init_from)
    if ckpt_path is not None:
        for change in check_resumable(ckpt_path, module, trust=trust):  # e.g. more max_steps: the LR schedule stretches
            log.warning("resuming with a setting changed from the checkpoint's: %s", change)
        source_id = Path(ckpt_path).resolve().parents[1] / WANDB_ID_FILE  # the dashboard run follows the checkpoint
        if rank_zero and source_id.is_file() and not (out_dir / WANDB_ID_FILE).is_file():
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_id, out_dir / WANDB_ID_FILE)
        log.info("resuming from %s", ckpt_path)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks.sort(key=lambda c: isinstance(c, LastCheckpoint))  # last.ckpt after the others at a validation step
    if not cfg.trainer.get("enable_progress_bar", True):  # the flag means no bar, even where the callbacks list one
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    callbacks = with_model_summary(callbacks, enabled=cfg.trainer.get("enable_model_summary", True))
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values() if lg is not None]
    if ckpt_path is not None:
        keep_csv_history(loggers, checkpoint_step(ckpt_path))
    summary_off = {"enable_model_summary": False}  # the callbacks hold the summary: with_model_summary
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **summary_off)
    for logger in loggers:
        logger.log_hyperparams(to_dict(cfg))  # the resolved config; rank-zero only inside Lightning's loggers
    if rank_zero:  # the data exist before an evaluator or the untrained-model scores read them (fit checks again)
        datamodule.prepare_data()
    evaluator = build_evaluator(cfg.get("evaluator")) if rank_zero else None
    log.info("run folder: %s", out_dir)
    metrics: dict[str, float] = {}
    if evaluator is not None and cfg.eval.before_training and ckpt_path is None:
        metrics.update({f"init/{k}": v for k, v in evaluate(evaluator, module, steps=cfg.eval.steps).items()})
        log.debug("untrained model: %s", metrics)
    _warn_if_frozen(module)
    with warnings.catch_warnings():  # the EMA copy is in eval mode on purpose; _warn_if_frozen checks the rest
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode", category=PossibleUserWarning)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1})
    if cfg.eval.get("test_loss", False):  # the training loss on the test split under EMA weights (e.g. nats/token)
        results = trainer.test(module, datamodule=datamodule, verbose=False)
        metrics.update({k: float(v) for k, v in results[0].items()} if results else {})
    if not trainer.is_global_zero:
        return metrics
    if cfg.eval.after_training:
        showcase(module, str(out_dir / "samples"), n=cfg.eval.n_grid, steps=cfg.eval.steps)
    if evaluator is not None and cfg.eval.after_training:
        metrics.update({f"test/{k}": v for k, v in evaluate(evaluator, module, steps=cfg.eval.steps).items()})
    write_json(metrics, out_dir / "metrics.json")
    log.debug("metrics: %s", metrics)  # the log file only; the screen gets the summary
    finish_wandb(loggers)
    summary = run_summary(
        metrics,
        evaluator_headlines(evaluator),
        out_dir=out_dir,
        seconds=time.monotonic() - started,
        checkpoint=final_checkpoint(trainer.checkpoint_callbacks),
        recipe=_recipe(),
    )
    print(summary, flush=True)
    log.debug("summary:\n%s", summary)
    return metrics


def build_evaluator(node: Any) -> Any:
    """The evaluator of `evaluator`, or None without one: `~evaluator` removes the group, not a recipe's settings
    for it (e.g. evaluator.n_inpaint), which are then named and left unused instead of failing after training."""
    if not node:
        return None
    if "_target_" not in node:
        log.warning("no evaluator (the evaluator group is removed); its settings %s are not used", sorted(node))
        return None
    return instantiate(node)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point (console script `diffkit-train`); bad inputs end in one line naming them."""
    first_job = HydraConfig.get().job.get("num", 0) in (0, None)  # later jobs of a multirun share the process
    started = time.monotonic() - ((process_seconds() if first_job else None) or 0.0)  # imports count too
    quiet_dependencies()
    with one_line_errors("diffkit-train", CheckpointError, DataError, FloatingPointError):
        metrics = run(cfg, started=started)
    return metrics.get(cfg.get("optimized_metric", ""), None)


if __name__ == "__main__":
    main()
