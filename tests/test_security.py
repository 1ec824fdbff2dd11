"""Stored configs are data: checkpoints and exported folders whose config names code outside the allowlist are
refused with one error before anything is built, and every conf option and recipe stays inside the allowlist."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import CONF_DIR, RECIPES, REQUIRED, ROOT, compose_train, skip_without_text_extra, subprocess_env
from safetensors.torch import save_file

import diffkit
from diffkit.cli import check_trainer_args
from diffkit.config import CheckpointError, build_module, init_weights, load, to_dict
from diffkit.export import export
from diffkit.security import check_targets, permitted
from diffkit.training.module import CONFIG_KEY

SKIPPED_GROUPS = {"hydra", "paths", "recipe"}  # Hydra's own settings and plain paths never reach a checkpoint
SMOKE_RECIPES = [f"smoke/{p.stem}" for p in sorted((CONF_DIR / "recipe" / "smoke").glob("*.yaml"))]  # image first
SAMPLING_GROUPS = {"hold"}  # chosen by diffkit-sample only: added to the training config to resolve them


def _group_options() -> list[str]:
    groups = [p for p in sorted(CONF_DIR.iterdir()) if p.is_dir() and p.name not in SKIPPED_GROUPS]
    return [f"{g.name}/{option.stem}" for g in groups for option in sorted(g.glob("*.yaml"))]


# -- the allowlist covers the conf tree ---------------------------------------------------------------------------
@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_config_passes_and_its_checkpoint_loads(recipe: str, tmp_path: Path) -> None:
    cfg = compose_train([f"recipe={recipe}", *REQUIRED.get(recipe, [])], tmp_path)
    skip_without_text_extra(cfg)
    check_trainer_args(cfg.trainer)  # the recipes' trainer settings have the types Lightning expects
    module = build_module(cfg)
    path = tmp_path / "recipe.ckpt"
    torch.save({"state_dict": module.state_dict(), CONFIG_KEY: module.resolved_config}, path)
    assert type(load(path)) is type(module)


@pytest.mark.parametrize("option", _group_options())
def test_every_conf_group_option_passes_the_allowlist(option: str, tmp_path: Path) -> None:
    group, name = option.split("/")
    for base in SMOKE_RECIPES:  # the first smoke recipe the option composes and resolves with
        add = "+" if group in SAMPLING_GROUPS else ""
        overrides = [f"recipe={base}", f"{add}{group}={name}", *REQUIRED.get(option, [])]
        try:
            resolved = to_dict(compose_train(overrides, tmp_path))
        except Exception:
            continue
        check_targets(resolved, option)
        return
    pytest.fail(f"{option} resolves with no smoke recipe; add the overrides it needs to REQUIRED")


def test_targets_through_re_exported_modules_are_refused() -> None:
    assert permitted("diffkit.core.karras_sigmas")  # a re-export inside the namespace
    assert not permitted("diffkit.core.schedules.torch.save")  # `torch` as an attribute of a diffkit module
    assert not permitted("torch.optim.lr_scheduler.partial")  # functools.partial seen through torch.optim
    assert not permitted("lightning.pytorch.trainer.Trainer", "module")  # Lightning only where diffkit never builds
    assert permitted("lightning.pytorch.trainer.Trainer", "trainer")
    assert permitted("helpers.touch", trust=["helpers."]) and not permitted("os.system", trust=["os."])  # builtins


def test_a_target_missing_from_this_diffkit_is_named_as_such() -> None:
    cfg = {"modality": {"_target_": "diffkit.modalities.video.adapter.VideoModality"}}  # no video modality (yet)
    with pytest.raises(CheckpointError, match=r"_target_ = .* no public class .* version\?\)$"):
        check_targets(cfg, "old.ckpt")


# -- malicious stored configs -------------------------------------------------------------------------------------
def _cases(marker: Path) -> list[tuple[str, str, Any]]:
    """(id, where the node goes, node): each would create `marker` (a file or folder) if it were built."""
    m = str(marker)
    wrap = {"_target_": "pathlib.Path", "_args_": [m]}
    return [
        ("os.system", "module.denoiser.net", {"_target_": "os.system", "_args_": [f"touch {m}"]}),
        ("subprocess.run", "module.denoiser.net._args_[0]", {"_target_": "subprocess.run", "args": ["touch", m]}),
        ("exec", "module.denoiser.net", {"_target_": "builtins.exec", "_args_": [f"open({m!r}, 'w').close()"]}),
        ("eval", "module.process", {"_target_": "builtins.eval", "_args_": [f"open({m!r}, 'w').close()"]}),
        ("Path.write_text", "module.loss.weighting", {"_target_": "pathlib.Path.write_text", "_args_": [wrap, "x"]}),
        ("shutil.copy", "module.modality", {"_target_": "shutil.copy", "src": __file__, "dst": m}),
        ("torch.save", "module.denoiser.net.extra", {"_target_": "torch.save", "obj": [1], "f": m}),
        ("numpy.save", "module.conditioning[0]", {"_target_": "numpy.save", "file": m, "arr": [1]}),
        ("partial", "module.sampler", {"_target_": "functools.partial", "_args_": [{"_target_": "os.system"}, "ls"]}),
        ("_partial_", "module.schedule", {"_target_": "os.system", "_partial_": True}),
        ("get_method", "module.sampler", {"_target_": "hydra.utils.get_method", "path": "os.system"}),
        ("via diffkit module", "module.denoiser.net", {"_target_": "diffkit.config.os.system", "_args_": ["ls"]}),
        ("via core module", "module.process", {"_target_": "diffkit.core.schedules.torch.save", "_args_": [[1], m]}),
        ("diffkit mkdir", "module.denoiser.net", {"_target_": "diffkit.run_dir.unique_dir", "path": m}),
        ("diffkit write", "module.loss", {"_target_": "diffkit.io.write_json", "_args_": [{}, m]}),
        ("wandb_logger", "module.modality", {"_target_": "diffkit.training.loggers.wandb_logger", "save_dir": m}),
        (
            "evaluator",
            "module.denoiser.net",
            {"_target_": "diffkit.modalities.image.metrics.DigitsEvaluator", "data_dir": m},
        ),  # fmt: skip
        (
            "method",
            "module.denoiser",
            {"_target_": "diffkit.training.module.DiffusionModule.load_from_checkpoint", "checkpoint_path": m},
        ),  # fmt: skip
        ("private", "module.denoiser", {"_target_": "diffkit.core.precond._Precond"}),
        ("Trainer", "module.sampler", {"_target_": "lightning.pytorch.trainer.Trainer", "default_root_dir": m}),
        ("list element", "trainer.plugins[1]", {"_target_": "os.system", "_args_": [f"touch {m}"]}),
        ("callbacks", "callbacks.evil", {"_target_": "subprocess.run", "args": ["touch", m]}),
        ("not a string", "module.process", {"_target_": 7}),
    ]


def _put(cfg: dict, where: str, node: Any) -> None:
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", where)]
    parent: Any = cfg
    for key, nxt in zip(keys, keys[1:]):
        if isinstance(parent, dict) and not isinstance(parent.get(key), dict | list):
            parent[key] = [] if isinstance(nxt, int) else {}
        parent = parent[key]
    if isinstance(keys[-1], int) and keys[-1] == len(parent):
        parent.append(node)
    else:
        parent[keys[-1]] = node


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> dict:
    """The resolved config of the image smoke recipe, as a checkpoint stores it."""
    return to_dict(compose_train(["recipe=smoke/image"], tmp_path_factory.mktemp("cfg")))


def _save(cfg: dict, folder: Path, fmt: str) -> Path:
    if fmt == "ckpt":
        torch.save({"state_dict": {}, CONFIG_KEY: cfg}, folder / "evil.ckpt")
        return folder / "evil.ckpt"
    (folder / "evil").mkdir()
    (folder / "evil" / "config.json").write_text(json.dumps(cfg))
    save_file({"w": torch.zeros(1)}, str(folder / "evil" / "denoiser.safetensors"))
    return folder / "evil"


CASE_IDS = [case[0] for case in _cases(Path("m"))]


@pytest.mark.parametrize("fmt", ["ckpt", "exported"])
@pytest.mark.parametrize("case", CASE_IDS)
def test_a_malicious_stored_config_is_refused_before_anything_is_built(
    case: str, fmt: str, stored: dict, tmp_path: Path
) -> None:
    marker = tmp_path / "marker.npy"
    _, where, node = next(c for c in _cases(marker) if c[0] == case)
    cfg = copy.deepcopy(stored)
    _put(cfg, where, node)
    path = _save(cfg, tmp_path, fmt)
    with pytest.raises(CheckpointError) as err:
        diffkit.load(path)
    message = str(err.value)
    assert "\n" not in message and f"{where}._target_ = {node['_target_']!r}" in message
    assert str(path / "config.json" if fmt == "exported" else path) in message
    assert not marker.exists()


@pytest.mark.parametrize(
    "value", ["${unique_dir:MARKER}", "${oc.env:HOME}", "${oc.create:{_target_: os.system}}", "${a.${b}}"]
)
def test_resolvers_in_a_stored_config_are_refused(value: str, stored: dict, tmp_path: Path) -> None:
    cfg = copy.deepcopy(stored)
    cfg["module"]["sample_steps"] = value.replace("MARKER", str(tmp_path / "marker"))
    path = _save(cfg, tmp_path, "ckpt")
    with pytest.raises(CheckpointError, match=r"module.sample_steps = .* calls a resolver"):
        load(path)
    assert not (tmp_path / "marker").exists()


def test_a_target_produced_by_a_reference_is_checked_after_resolving(stored: dict, tmp_path: Path) -> None:
    cfg = copy.deepcopy(stored)
    cfg["evil"] = "os.system"
    cfg["module"]["denoiser"]["net"] = {"_target_": "${evil}", "_args_": [f"touch {tmp_path / 'marker'}"]}
    with pytest.raises(CheckpointError, match=r"module.denoiser.net._target_ = 'os.system'"):
        load(_save(cfg, tmp_path, "ckpt"))
    assert not (tmp_path / "marker").exists()


def test_trust_lets_the_users_own_package_build(stored: dict, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    cfg = copy.deepcopy(stored)
    cfg["module"]["denoiser"]["net"] = {"_target_": "helpers.touch", "path": str(marker)}
    path = _save(cfg, tmp_path, "ckpt")
    with pytest.raises(CheckpointError, match=r"trust=\['helpers.'\]"):
        load(path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="weights do not fit"):  # the net is a string now
        load(path, trust=["helpers."])
    assert marker.exists()  # so the refused cases above were refused before the code they name could run


# -- every entry point that reads a stored config -----------------------------------------------------------------
@pytest.fixture
def evil(stored: dict, tmp_path: Path) -> tuple[Path, Path]:
    """A smoke checkpoint whose net is `helpers.touch(marker)`, and the marker."""
    marker = tmp_path / "marker"
    cfg = copy.deepcopy(stored)
    cfg["module"]["denoiser"]["net"] = {"_target_": "helpers.touch", "path": str(marker)}
    return _save(cfg, tmp_path, "ckpt"), marker


def test_sample_cli_refuses_in_one_line(evil: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, marker = evil
    cmd = [sys.executable, "-m", "diffkit.sample", f"ckpt={ckpt}", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr[-2000:]
    assert "module.denoiser.net._target_ = 'helpers.touch'" in lines[0] and not marker.exists()


@pytest.mark.parametrize("entry", ["sample", "sweep"])
def test_sample_and_sweep_read_trust_from_the_command_line(entry: str, evil: tuple[Path, Path], tmp_path) -> None:
    from importlib import import_module

    ckpt, marker = evil
    cfg = compose_train([f"ckpt={ckpt}"], tmp_path / "run", config_name=entry)
    with pytest.raises(CheckpointError, match="helpers.touch"):
        import_module(f"diffkit.{entry}").run(cfg)
    assert not marker.exists()
    cfg = compose_train([f"ckpt={ckpt}", "trust=[helpers.]"], tmp_path / "run", config_name=entry)
    with pytest.raises(CheckpointError, match="weights do not fit"):  # built: the net is a string now
        import_module(f"diffkit.{entry}").run(cfg)
    assert marker.exists()


def test_export_refuses(evil: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, marker = evil
    with pytest.raises(CheckpointError, match="helpers.touch"):
        export(ckpt, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_resume_and_init_from_refuse(evil: tuple[Path, Path], tmp_path: Path) -> None:
    from diffkit.train import run

    ckpt, marker = evil
    cfg = compose_train(["recipe=smoke/image", f"ckpt_path={ckpt}"], tmp_path / "run")
    with pytest.raises(CheckpointError, match="module.denoiser.net._target_ = 'helpers.touch'"):
        run(cfg)
    with pytest.raises(CheckpointError, match="helpers.touch"):
        init_weights(build_module(cfg), ckpt)
    assert not marker.exists()
