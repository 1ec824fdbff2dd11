"""Experiment loggers: wandb that works offline by default and goes online when the environment says so."""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger


def wandb_mode() -> str:
    """WANDB_MODE if set; else "online" when WANDB_API_KEY is set; else "offline" (no network needed)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def wandb_logger(project: str = "diffkit", save_dir: str = ".", **kwargs: Any) -> WandbLogger:
    """A Lightning WandbLogger whose run lives in save_dir/wandb; sync offline runs with `wandb sync`."""
    os.makedirs(save_dir, exist_ok=True)
    kwargs.setdefault("mode", wandb_mode())
    return WandbLogger(project=project, save_dir=save_dir, **kwargs)
