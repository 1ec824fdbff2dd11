"""Hydra <-> objects at the edge: build a run from a config, attach the config to checkpoints, load them back.

    module = diffkit.config.load("outputs/.../checkpoints/last.ckpt")   # no Hydra run needed
    x = module.sample(16, steps=18)

References:
    lightning-hydra-template (instantiate at the edge); diffusion_policy (checkpoints carry their config).
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from torch import Tensor

from diffkit.run_dir import register_unique_dir
from diffkit.security import CheckpointError, check_targets, refuse_interpolations
from diffkit.training.module import CONFIG_KEY, DiffusionModule

register_unique_dir()  # every entry point imports this module before Hydra composes conf/hydra/default.yaml
CONF_DIR = Path(__file__).resolve().parent / "conf"  # the packaged link to the repository's conf/ tree


def to_dict(cfg: DictConfig) -> dict[str, Any]:
    """The fully resolved config as plain Python containers (what goes into a checkpoint)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]


def build_module(cfg: DictConfig) -> L.LightningModule:
    """Instantiate `cfg.module` and attach the resolved config so checkpoints describe themselves."""
    module = instantiate(cfg.module)
    if not isinstance(module, L.LightningModule) or not callable(getattr(module, "sample", None)):
        raise TypeError(f"cfg.module must build a LightningModule with sample(), got {type(module).__name__}")
    module.resolved_config = to_dict(cfg)
    return module


def checked_config(stored: Any, source: object, trust: Sequence[str] = ()) -> dict[str, Any]:
    """A stored config resolved (plain references only) with every `_target_` checked (diffkit.security), before
    anything is built from it; `trust` names the user's own packages, e.g. ["mypkg."]."""
    if not isinstance(stored, dict):
        raise CheckpointError(f"{source}: the stored config is a {type(stored).__name__}, not a mapping")
    refuse_interpolations(stored, source)
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(stored), resolve=True)
    except (OmegaConfBaseException, ValueError, TypeError) as err:
        raise CheckpointError(f"{source}: the stored config does not resolve ({str(err).splitlines()[0]})") from None
    refuse_interpolations(resolved, source, references=False)
    check_targets(resolved, source, trust)
    return resolved  # type: ignore[return-value]


def read_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", *, trust: Sequence[str] = ()
) -> dict[str, Any]:
    """torch.load with weights_only=True (no code execution), its stored config checked, one error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        reason = f"damaged or not a torch checkpoint ({first_line})"
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or CONFIG_KEY not in checkpoint:
        raise CheckpointError(f"{path} is not a diffkit checkpoint (needs 'state_dict' and '{CONFIG_KEY}')")
    checkpoint[CONFIG_KEY] = checked_config(checkpoint[CONFIG_KEY], path, trust)
    return checkpoint


def checkpoint_step(path: str | os.PathLike) -> int:
    """The global step a (readable) checkpoint was saved at; memory-mapped, so the weights are not read."""
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", 0))


def load(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", *, trust: Sequence[str] = ()
) -> L.LightningModule:
    """Rebuild a DiffusionModule (with its EMA weights) from a checkpoint alone, in eval mode."""
    checkpoint = read_checkpoint(path, map_location, trust=trust)
    cfg = OmegaConf.create(checkpoint[CONFIG_KEY])
    module = build_module(cfg)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the model its config describes ({err})") from None
    return module.to(map_location).eval()


def _widen(key: str, old: Tensor, new: Tensor) -> Tensor:
    """old weights in a tensor of new's shape: equal shapes pass; extra input channels (dim 1) start at zero."""
    if old.shape == new.shape:
        return old
    if old.ndim == new.ndim >= 2 and old.shape[0] == new.shape[0] and old.shape[2:] == new.shape[2:]:
        if old.shape[1] < new.shape[1]:  # e.g. a stem conv that now also reads known entries and their mask
            widened = torch.zeros_like(new)
            widened[:, : old.shape[1]] = old
            return widened
    raise CheckpointError(f"weight {key} has shape {tuple(old.shape)} in the checkpoint, {tuple(new.shape)} here")


def init_weights(module: DiffusionModule, path: str | os.PathLike, *, trust: Sequence[str] = ()) -> None:
    """Start training from a checkpoint's EMA weights (fine-tuning); new input channels start at zero.

    The zero-initialised channels make the widened net compute exactly what the checkpoint's net did until training
    moves them (the Stable Diffusion inpainting recipe). Optimizer, step count and EMA history start fresh.
    """
    if not isinstance(module, DiffusionModule):
        raise TypeError(f"init_from fine-tunes diffusion models; this run builds a {type(module).__name__}")
    state = read_checkpoint(path, trust=trust)["state_dict"]
    target = module.state_dict()
    prefix = "denoiser."
    loaded: dict[str, Tensor] = {}
    for key, value in target.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        source = state.get(f"ema.module.{name}", state.get(key))
        if source is None:
            raise CheckpointError(f"{path} has no weight for {key}: it is a checkpoint of a different architecture")
        loaded[key] = loaded[f"ema.module.{name}"] = _widen(key, source, value)
    unused = sorted(k[len(prefix) :] for k in state if k.startswith(prefix) and k not in target)
    if unused:
        raise CheckpointError(f"{path} has weights this model lacks ({unused[:3]}): a different architecture")
    module.load_state_dict(loaded, strict=False)


def load_config(path: str | os.PathLike, *, trust: Sequence[str] = ()) -> DictConfig:
    """The resolved config stored in a checkpoint (checked like load's)."""
    return OmegaConf.create(read_checkpoint(path, trust=trust)[CONFIG_KEY])


def instantiate_option(train_cfg: DictConfig, group: str, node: Any) -> Any:
    """Instantiate a group option (e.g. a conf/schedule/*.yaml node) with its ${...} references resolved against a
    checkpoint's config, replacing the option the checkpoint was trained with."""
    merged = train_cfg.copy()
    raw = OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else node
    with open_dict(merged):
        merged[group] = OmegaConf.create(raw)
    return instantiate(merged[group])


def group_option(group: str, name: str, train_cfg: DictConfig, args: Any = None) -> Any:
    """Instantiate conf/<group>/<name>.yaml (with `args` merged in), resolving its references against the
    checkpoint's config."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        raise ValueError(f"unknown {group} {name!r}; choose one of {options}")
    return instantiate_option(train_cfg, group, OmegaConf.merge(OmegaConf.load(path), args or {}))


def checkpoint_evaluator(train_cfg: DictConfig, ckpt: Any, overrides: Any = None, option: str | None = None) -> Any:
    """The evaluator that scores a checkpoint: conf/evaluator/<option>.yaml when named, else the one it was trained
    with, `overrides` merged in; one error naming the checkpoint when it was trained without one (`~evaluator`)."""
    if option:
        return group_option("evaluator", option, train_cfg, overrides)
    node = train_cfg.get("evaluator") or {}
    if "_target_" not in node:
        options = sorted(p.stem for p in (CONF_DIR / "evaluator").glob("*.yaml"))
        raise CheckpointError(f"{ckpt} was trained without an evaluator (`~evaluator`); name one with "
                              f"evaluator_option=NAME, one of {options}")  # fmt: skip
    return instantiate(OmegaConf.merge(node, overrides or {}))


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    return {k: v for key, value in d.items() for k, v in _flat(value, f"{prefix}{key}.").items()}


TRAINING_SECTIONS = ("trainer", "optimizer", "lr_scheduler", "loss", "data")


def config_changes(stored: dict[str, Any], current: dict[str, Any], sections: tuple[str, ...]) -> list[str]:
    """`key: old -> new` for every leaf of the given config sections that differs between two resolved configs."""
    a = _flat({k: stored.get(k) for k in sections})
    b = _flat({k: current.get(k) for k in sections})
    return [f"{k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_resumable(path: str | os.PathLike, module: DiffusionModule, *, trust: Sequence[str] = ()) -> list[str]:
    """Raise CheckpointError naming the file and what differs when `path` cannot continue this run's model;
    return the training settings that differ from the checkpoint's (a resume may change them on purpose)."""
    checkpoint = read_checkpoint(path, trust=trust)
    stored, current = checkpoint[CONFIG_KEY], module.resolved_config or {}
    old, new = stored.get("modality", {}).get("_target_"), current.get("modality", {}).get("_target_")
    if old != new:
        raise CheckpointError(f"{path} is a checkpoint of modality {old}; this run trains {new}")
    theirs, ours = checkpoint["state_dict"], module.state_dict()
    shapes = [
        f"{k} {tuple(theirs[k].shape)} vs {tuple(v.shape)}"
        for k, v in ours.items()
        if k in theirs and theirs[k].shape != v.shape
    ]
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    if shapes or missing or extra:
        changed = config_changes(stored, current, ("modality", "backbone"))
        raise CheckpointError(
            f"{path} does not fit this run's model (config changes: {'; '.join(changed[:4]) or 'none'}; "
            f"{len(shapes)} shape mismatches, e.g. {shapes[:1]}; missing {missing[:2]}; unexpected {extra[:2]})"
        )
    return config_changes(stored, current, TRAINING_SECTIONS)


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """`ckpt_path=last`: this run folder's checkpoints/last.ckpt if it exists (a folder reused with
    `hydra.run.dir=<old run>`), else the newest <paths.log_dir>/<task_name>/*/checkpoints/last.ckpt."""
    ckpt = cfg.get("ckpt_path")
    if ckpt != "last":
        return ckpt
    own = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    runs = sorted(Path(cfg.paths.log_dir, cfg.task_name).glob("*/checkpoints/last.ckpt"), key=os.path.getmtime)
    if own.is_file() or runs:
        return str(own if own.is_file() else runs[-1])
    raise CheckpointError(
        f"ckpt_path=last: no checkpoints/last.ckpt in any run under {cfg.paths.log_dir}/{cfg.task_name}"
    )


MODALITY_FILE = "modality.safetensors"  # an exported folder's modality state (buffers such as a normalizer)


def load_exported(
    folder: str | os.PathLike, map_location: str | torch.device = "cpu", *, trust: Sequence[str] = ()
) -> DiffusionModule:
    """Rebuild a sampling-ready module (eval mode, EMA weights) from a `python -m diffkit.export` folder."""
    from safetensors.torch import load_file  # lazy: only exported folders need safetensors

    folder = Path(folder)
    config, weights = folder / "config.json", folder / "denoiser.safetensors"
    if not config.is_file() or not weights.is_file():
        raise CheckpointError(f"{folder} is not an exported diffkit model (needs config.json and denoiser.safetensors)")
    try:
        stored = json.loads(config.read_text())
    except (ValueError, OSError) as err:
        raise CheckpointError(f"cannot read {config}: {err}") from None
    module = build_module(OmegaConf.create(checked_config(stored, config, trust)))
    parts = [(weights, (module.denoiser, module.ema.module))]
    if (modality := folder / MODALITY_FILE).is_file():  # a fitted normalizer etc.; older exports have none
        parts.append((modality, (module.modality,)))
    for path, targets in parts:
        try:
            state = load_file(str(path))
        except Exception as err:  # safetensors' SafetensorError: a damaged or truncated file
            raise CheckpointError(f"cannot read {path}: {err}") from None
        try:
            for target in targets:
                target.load_state_dict(state)
        except RuntimeError as err:
            raise CheckpointError(f"{path}: tensors do not fit the model config.json describes ({err})") from None
    return module.to(map_location).eval()


def load_any(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", *, trust: Sequence[str] = ()
) -> DiffusionModule:
    """`diffkit.load`: an exported folder (config.json + denoiser.safetensors) or a training checkpoint file; the
    stored config may build diffkit's building blocks only, plus the packages in `trust` (README "Security")."""
    load_from = load_exported if Path(path).is_dir() else load
    return load_from(path, map_location, trust=trust)
