"""Experiment loggers: wandb that works offline by default, goes online when the environment says so, and keeps
one dashboard run per run folder (the run id lives in <run>/wandb_id.txt and is reused on resume); a resumed CSV
log keeps the rows written before the checkpoint."""

from __future__ import annotations

import csv
import os
import secrets
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from diffkit.io import atomic_write

WANDB_ID_FILE = "wandb_id.txt"


def wandb_mode() -> str:
    """WANDB_MODE if set; else "online" when WANDB_API_KEY is set; else "offline" (no network needed)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def run_id(folder: str | os.PathLike) -> str:
    """The wandb run id bound to a run folder: read from folder/wandb_id.txt, created there (rank 0) if absent."""
    path = Path(folder) / WANDB_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    new = secrets.token_hex(4)  # wandb ids are short [a-z0-9] strings
    if rank_zero_only.rank == 0:
        atomic_write(path, lambda tmp: Path(tmp).write_text(new + "\n"))
    return new


def wandb_logger(project: str = "diffkit", save_dir: str = ".", **kwargs: Any) -> WandbLogger:
    """A Lightning WandbLogger whose run lives in save_dir/wandb; sync offline runs with `wandb sync`."""
    os.makedirs(save_dir, exist_ok=True)
    kwargs.setdefault("mode", wandb_mode())
    kwargs.setdefault("id", run_id(save_dir))
    kwargs.setdefault("resume", "allow")  # the same id continues the same dashboard run
    logger = WandbLogger(project=project, save_dir=save_dir, **kwargs)
    # Lightning 2.6 always passes anonymous=None to wandb.init, which wandb 0.31 answers with a deprecation
    # warning ("The anonymous setting has no effect"); the setting does nothing, so it is not passed at all.
    if logger._wandb_init.get("anonymous") is None:
        logger._wandb_init.pop("anonymous", None)
    return logger


def finish_wandb(loggers: list[Logger]) -> None:
    """End this process's wandb runs now (wandb prints its sync hint then), so the run's summary comes last."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and rank_zero_only.rank == 0:
            logger.experiment.finish()


def keep_csv_history(loggers: list[Logger], resumed_step: int) -> None:
    """Keep the rows logged before step `resumed_step` in each CSVLogger's metrics.csv on resume.

    Lightning's CSV writer deletes an existing metrics.csv when it starts, so resuming in the same run folder would
    lose the history. The earlier rows are read first and written back at once; rows from after the checkpoint are
    dropped, since the resumed run logs those steps again.
    """
    for logger in loggers:
        if not isinstance(logger, CSVLogger) or rank_zero_only.rank != 0:
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        if not path.is_file():
            continue
        with path.open(newline="") as file:
            rows = [r for r in csv.DictReader(file) if (r.get("step") or "").isdigit()]
        rows = [r for r in rows if int(r["step"]) < resumed_step]
        writer = logger.experiment  # starting the writer deletes the file
        writer.metrics[:0] = [{k: v for k, v in row.items() if v != ""} for row in rows]
        writer.save()
