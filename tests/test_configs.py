"""Every recipe composes with train.yaml and instantiates on CPU; bad configs fail with a clear message."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import RECIPES, REQUIRED, ROOT, compose_train, skip_without_text_extra
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf.errors import ConfigAttributeError

from diffkit.cli import ConfigValueError, check_trainer_args
from diffkit.config import build_module, to_dict
from diffkit.training.ar import ARModule
from diffkit.training.autoencoder import AutoencoderModule
from diffkit.training.module import DiffusionModule


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_composes_and_instantiates(recipe: str, tmp_path: Path) -> None:
    cfg = compose_train([f"recipe={recipe}", *REQUIRED.get(recipe, [])], tmp_path)
    skip_without_text_extra(cfg)
    resolved = to_dict(cfg)  # every interpolation resolves
    assert resolved["paths"]["output_dir"] == str(tmp_path)
    module = build_module(cfg)
    name = recipe.split("/")[-1]
    expected = ARModule if name.startswith("ar_") else AutoencoderModule if name.endswith("vae") else DiffusionModule
    assert isinstance(module, expected)
    assert module.resolved_config == resolved
    datamodule = instantiate(cfg.data)
    assert hasattr(datamodule, "train_dataloader")
    trainer_cfg = cfg.trainer
    assert trainer_cfg.default_root_dir == str(tmp_path)


@pytest.mark.parametrize(
    "sampler",
    ["euler", "euler_ancestral", "repaint", "heun", "heun_churn", "ddim", "ddpm"]
    + ["dpmpp_2m", "dpmpp_3m", "dpmpp_2s", "unipc", "lms"],
)
def test_every_sampler_option_builds(sampler: str, tmp_path: Path) -> None:
    cfg = compose_train(["recipe=smoke/image", f"sampler={sampler}"], tmp_path)
    module = build_module(cfg)
    function = {"heun_churn": "heun", "repaint": "euler_ancestral"}.get(sampler, sampler)
    assert module.sampler.func.__name__ == f"sample_{function}"


@pytest.mark.parametrize("schedule", ["karras", "exponential", "uniform_lambda", "interpolated", "ddpm", "linear_t"])
def test_every_schedule_option_builds_a_grid(schedule: str, tmp_path: Path) -> None:
    cfg = compose_train(["recipe=smoke/image", f"schedule={schedule}", "sampler=dpmpp_3m"], tmp_path)
    module = build_module(cfg)
    sigmas = module.schedule(5)
    assert sigmas.shape == (6,) and float(sigmas[-1]) == 0.0 and bool((sigmas[1:] < sigmas[:-1]).all())
    assert module.sample(2, steps=5).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("precond", ["edm", "eps", "vp", "v_pred", "flow"])
def test_every_precond_option_builds(precond: str, tmp_path: Path) -> None:
    cfg = compose_train(["recipe=smoke/image", f"precond={precond}"], tmp_path)
    module = build_module(cfg)
    x = module.sample(2, steps=2)
    assert x.shape == (2, 1, 8, 8) and bool(x.isfinite().all())


def test_unknown_group_option_is_a_composition_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="sampler"):
        compose_train(["recipe=smoke/image", "sampler=not_a_sampler"], tmp_path)


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises((ConfigCompositionException, ConfigAttributeError), match="not_a_key"):
        compose_train(["recipe=smoke/image", "module.not_a_key=1"], tmp_path)


def test_wrong_type_fails_with_a_message_naming_the_argument(tmp_path: Path) -> None:
    cfg = compose_train(["recipe=smoke/image", "module.sample_steps=abc"], tmp_path)
    with pytest.raises(Exception, match="sample_steps"):
        build_module(cfg)


def test_cli_reports_unknown_recipe_in_one_clear_message(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "diffkit.train", "recipe=image/no_such_recipe", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "no_such_recipe" in proc.stderr and "Traceback" not in proc.stderr


BAD_INPUTS = [
    (["diffkit.sample"], "ckpt is required"),
    (["diffkit.sweep"], "ckpt is required"),
    (["diffkit.export", "ckpt=x.ckpt"], "out is required"),
    (["diffkit.train", "trainer.max_steps=abc"], "trainer.max_steps='abc' (str); expected int"),
    (["diffkit.train", "trainer.max_epochs=[1]"], "trainer.max_epochs=[1] (ListConfig); expected int or null"),
    (["diffkit.train", "recipe=text/mdlm_shakespeare", "data=text_files"], "data.text_files is required"),
    (["diffkit.train", "data=text_files"], "data.seq_len does not resolve: Interpolation key 'modality.seq_len'"),
]


def test_cli_bad_input_prints_one_line_from_a_fresh_process(tmp_path: Path) -> None:
    """The whole process (imports, Hydra, the error) writes exactly one stderr line; the cases below run in-process."""
    argv, expected = BAD_INPUTS[3]
    proc = subprocess.run([sys.executable, "-m", *argv, f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]


@pytest.mark.parametrize(("argv", "expected"), BAD_INPUTS)
def test_cli_bad_input_is_one_line_naming_the_key(
    argv: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    entry = importlib.import_module(argv[0])
    monkeypatch.setattr(sys, "argv", [argv[0], *argv[1:], f"hydra.run.dir={tmp_path}"])
    with pytest.raises(SystemExit) as exit_info:
        entry.main()
    message = str(exit_info.value.code)
    assert len(message.splitlines()) == 1 and expected in message, message
    assert capsys.readouterr().err.strip() == ""  # nothing else on stderr besides the exit line


@pytest.mark.parametrize(
    ("key", "value"), [("max_steps", 1.5), ("min_epochs", "2"), ("limit_train_batches", "half"), ("inference_mode", 1)]
)
def test_trainer_arguments_of_the_wrong_type_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigValueError, match=rf"trainer\.{key}="):
        check_trainer_args({key: value})
    check_trainer_args({"max_steps": 10, "max_epochs": None, "limit_val_batches": 0.5, "gradient_clip_val": 1})


@pytest.mark.parametrize("sampler", ["masked_ancestral", "masked_cached", "tau_leaping"])
def test_every_discrete_sampler_option_builds_and_samples(sampler: str, tmp_path: Path) -> None:
    cfg = compose_train(["recipe=smoke/text", f"sampler={sampler}"], tmp_path)
    module = build_module(cfg)
    assert module.sampler.func.__name__ == f"sample_{sampler}"
    x = module.sample(2, steps=4)
    assert x.shape == (2, cfg.modality.seq_len) and bool((x != cfg.modality.mask_id).all())
