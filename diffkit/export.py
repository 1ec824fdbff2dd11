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
from torch import Tensor, nn

from diffkit.cli import one_line_errors
from diffkit.config import MODALITY_FILE, CheckpointError, load, load_config, to_dict
from diffkit.io import atomic_write
from diffkit.training.checkpoint import non_finite_tensors


def tensors(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict as contiguous CPU tensors (what safetensors writes)."""
    return {name: t.detach().cpu().contiguous() for name, t in state.items()}


def export(ckpt: str | os.PathLike, out: str | os.PathLike, *, trust: Sequence[str] = ()) -> Path:
    """Write out/config.json and out/denoiser.safetensors (the EMA denoiser's weights) from a checkpoint, plus
    out/modality.safetensors when the modality has state of its own (a fitted normalizer, a latent scale)."""
    module, config = load(ckpt, trust=trust), to_dict(load_config(ckpt, trust=trust))
    weights = tensors(module.ema.module.state_dict())
    modality = tensors(module.modality.state_dict()) if isinstance(module.modality, nn.Module) else {}
    if bad := non_finite_tensors(weights) + non_finite_tensors(modality):
        raise CheckpointError(f"{ckpt}: the EMA weights are not finite ({', '.join(bad[:3])}); nothing exported")
    out = Path(out)
    metadata = {"source": str(ckpt)}
    atomic_write(out / "denoiser.safetensors", lambda tmp: save_file(weights, tmp, metadata=metadata))
    if modality:
        atomic_write(out / MODALITY_FILE, lambda tmp: save_file(modality, tmp, metadata=metadata))
    atomic_write(out / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n"))
    return out


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (console script `diffkit-export`)."""
    with one_line_errors("diffkit-export", CheckpointError):
        print(f"exported {cfg.ckpt} -> {export(cfg.ckpt, cfg.out, trust=list(cfg.get('trust') or ()))}")


if __name__ == "__main__":
    main()
