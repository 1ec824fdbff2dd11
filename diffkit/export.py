"""Export a training checkpoint to a self-contained folder that loads without Lightning state or Hydra runs.

    python -m diffkit.export ckpt=outputs/train/<run>/checkpoints/last.ckpt out=exported/model
    module = diffkit.load("exported/model")      # config.json + denoiser.safetensors (EMA weights)

References:
    safetensors (no pickle); diffusion_policy (checkpoints carry their config).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig
from safetensors.torch import save_file

from diffkit.cli import one_line_errors
from diffkit.config import CheckpointError, load, load_config, to_dict
from diffkit.io import atomic_write
from diffkit.training.checkpoint import non_finite_tensors


def export(ckpt: str | os.PathLike, out: str | os.PathLike, *, trust: Sequence[str] = ()) -> Path:
    """Write out/config.json and out/denoiser.safetensors (the EMA denoiser's weights) from a checkpoint."""
    module, config = load(ckpt, trust=trust), to_dict(load_config(ckpt, trust=trust))
    weights = {name: t.detach().cpu().contiguous() for name, t in module.ema.module.state_dict().items()}
    if bad := non_finite_tensors(weights):
        raise CheckpointError(f"{ckpt}: the EMA weights are not finite ({', '.join(bad[:3])}); nothing exported")
    out = Path(out)
    atomic_write(out / "denoiser.safetensors", lambda tmp: save_file(weights, tmp, metadata={"source": str(ckpt)}))
    atomic_write(out / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n"))
    return out


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (console script `diffkit-export`)."""
    with one_line_errors("diffkit-export", CheckpointError):
        print(f"exported {cfg.ckpt} -> {export(cfg.ckpt, cfg.out, trust=list(cfg.get('trust') or ()))}")


if __name__ == "__main__":
    main()
