"""Scale-out and fault tolerance on CPU: real 2-process DDP (gloo), kill -9 + exact resume, safe checkpoints,
NaN handling, bad inputs that end in one clear message, dashboards, export/load."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import ROOT, compose_train, subprocess_env, train_cmd
from hydra.utils import instantiate
from omegaconf import open_dict

import diffkit
from diffkit.config import CheckpointError, build_module, load, resolve_ckpt_path
from diffkit.modalities.base import DataError
from diffkit.modalities.image.adapter import ImageModality
from diffkit.train import run
from diffkit.training.checkpoint import AtomicCheckpointIO
from diffkit.training.loggers import WANDB_ID_FILE, wandb_logger

# 12 steps in epochs of 5 batches: resume mid-epoch and across epoch ends; last.ckpt after every step.
RESUME = ["recipe=smoke/image", "trainer.max_steps=12", "trainer.limit_train_batches=5", "trainer.deterministic=true",
          "callbacks.last_checkpoint.every_n_train_steps=1", "eval.before_training=false", "eval.after_training=false",
          "logger=[csv,tensorboard]"]  # fmt: skip


def _state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted 12-step run (in this process)."""
    out = tmp_path_factory.mktemp("reference")
    run(compose_train(RESUME, out))
    return out


# -- distributed ---------------------------------------------------------------------------------------------
def test_ddp_two_processes_match_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    common = ["recipe=smoke/image", "trainer.max_steps=5", "trainer.limit_train_batches=3", "data.batch_size=32",
              "trainer.deterministic=true", "eval.before_training=false", "eval.after_training=false",
              "~lr_scheduler", "optimizer.lr=2e-4"]  # fmt: skip
    root = tmp_path / "root"  # DIFFKIT_ROOT: outputs/ go here, so we can count run folders
    cmd = train_cmd(*common, "trainer=ddp_sim", f"paths.data_dir={ROOT / 'data'}")
    proc = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(DIFFKIT_ROOT=str(root)), capture_output=True, text=True,
                          timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((root / "outputs" / "train").iterdir())
    assert len(runs) == 1, runs  # one folder for both ranks, not one per rank
    assert (runs[0] / "train_ddp_process_1.log").is_file() and (runs[0] / "metrics.json").is_file()
    ddp = _state(runs[0])
    assert ddp["global_step"] == 5

    single_dir = tmp_path / "single"
    cfg = compose_train(common, single_dir)
    run(cfg)
    single = _state(single_dir)
    diff = _max_diff(ddp["state_dict"], single["state_dict"])
    torch.manual_seed(cfg.seed)
    init = build_module(cfg).state_dict()
    moved = _max_diff({k: single["state_dict"][k] for k in init}, init)
    m_ddp, m_single = ddp["optimizer_states"][0]["state"], single["optimizer_states"][0]["state"]
    grad_diff = max((m_ddp[i]["exp_avg"] - m_single[i]["exp_avg"]).abs().max().item() for i in m_single)
    print(f"DDP(2 x 16) vs 1 x 32: max |weight diff| {diff:.3g}, |Adam m diff| {grad_diff:.3g}; moved {moved:.3g}")
    # Adam divides by sqrt(v): float rounding of the all-reduce shows up ~1e-6 in weights with tiny gradients.
    assert moved > 5e-4 and diff < 1e-5 and grad_diff < 1e-6


def test_global_batch_must_divide_across_processes(tmp_path: Path) -> None:
    datamodule = instantiate(compose_train(["recipe=smoke/image", "data.batch_size=33"], tmp_path).data)
    datamodule.trainer = type("T", (), {"world_size": 2, "global_rank": 0})()
    with pytest.raises(ValueError, match=r"data.batch_size=33 .* not divisible by the 2 processes"):
        datamodule.setup("fit")


def test_slurm_launcher_and_distributed_trainers_compose(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", ["recipe=smoke/image", "hydra/launcher=submitit_slurm", "trainer=ddp"],
                      return_hydra_config=True)  # fmt: skip
    assert cfg.hydra.launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert cfg.hydra.launcher.nodes == cfg.trainer.num_nodes
    for name, strategy in [("ddp", "DDPStrategy"), ("ddp_sim", "DDPStrategy"), ("fsdp", "FSDPStrategy")]:
        trainer_cfg = compose_train(["recipe=smoke/image", f"trainer={name}"], tmp_path).trainer
        assert type(instantiate(trainer_cfg.strategy)).__name__ == strategy
        assert trainer_cfg.plugins[0]._target_.endswith("AtomicCheckpointIO")


def test_multirun_sweep_writes_one_folder_per_job(tmp_path: Path) -> None:
    cmd = train_cmd("-m", "recipe=smoke/image", "optimizer.lr=1e-4,2e-4", "trainer.max_steps=1",
                    "eval.before_training=false", "eval.after_training=false",
                    f"paths.data_dir={ROOT / 'data'}")  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(DIFFKIT_ROOT=str(tmp_path)), capture_output=True,
                          text=True, timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpts = sorted((tmp_path / "outputs" / "train" / "multirun").glob("*/*/checkpoints/last.ckpt"))
    assert [c.parents[1].name for c in ckpts] == ["0", "1"]
    assert [load_config_lr(c) for c in ckpts] == [1e-4, 2e-4]


def load_config_lr(ckpt: Path) -> float:
    return torch.load(ckpt, weights_only=True)["diffkit_config"]["optimizer"]["lr"]


# -- resume --------------------------------------------------------------------------------------------------
def test_kill_9_at_a_random_step_then_resume_gives_the_uninterrupted_weights(reference: Path, tmp_path: Path) -> None:
    kill_at = random.randint(2, 10)
    run_dir = tmp_path / "run"
    cmd = train_cmd(*RESUME, "+callbacks.pace._target_=helpers.Pace", f"hydra.run.dir={run_dir}")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    for line in proc.stdout:
        if line.strip() == f"STEP {kill_at}":
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"not killed at step {kill_at}"
    killed_step = _state(run_dir)["global_step"]
    assert 1 <= killed_step <= kill_at < 12

    resume = [*RESUME, "ckpt_path=last", "trust=[helpers.]"]  # the checkpoint names Pace; this command does not
    resumed = subprocess.run(train_cmd(*resume, f"hydra.run.dir={run_dir}"), cwd=ROOT,
                             env=subprocess_env(), capture_output=True, text=True, timeout=240)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {run_dir / 'checkpoints' / 'last.ckpt'}" in resumed.stderr + resumed.stdout
    a, b = _state(reference), _state(run_dir)
    assert b["global_step"] == 12
    diff = _max_diff(a["state_dict"], b["state_dict"])
    print(f"killed at step {kill_at} (last.ckpt: step {killed_step}); resumed vs uninterrupted: {diff:.3g}")
    assert diff <= 1e-6
    opt_a, opt_b = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    assert all(torch.allclose(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"], atol=1e-9) for i in opt_a)
    assert a["lr_schedulers"] == b["lr_schedulers"]


def test_a_resume_keeps_one_best_checkpoint_tracked(tmp_path: Path) -> None:
    """last.ckpt written at a validation step records the best file that validation wrote, so after a resume the
    best-by-val/loss callback (save_top_k=1) replaces it instead of leaving it behind untracked."""
    args = ["recipe=smoke/text", "trainer.limit_train_batches=4", "callbacks.last_checkpoint.every_n_train_steps=4"]
    run(compose_train([*args, "trainer.max_steps=8"], tmp_path))  # last.ckpt at step 8, then validation at step 8
    run(compose_train([*args, "trainer.max_steps=16", "ckpt_path=last"], tmp_path))
    files = sorted((tmp_path / "checkpoints").glob("step_*.ckpt"))
    states = _state(tmp_path)["callbacks"]  # keyed by each callback's settings; the best-by-metric one monitors
    best = [s["best_model_path"] for key, s in states.items() if "'monitor': 'val/loss'" in key]
    assert len(files) == 1 and best == [str(files[0])], (files, best)


def test_ckpt_path_last_prefers_this_folder_then_the_newest_run(tmp_path: Path) -> None:
    logs = tmp_path / "outputs"
    for i, name in enumerate(["2026-01-01_00-00-00", "2026-01-02_00-00-00"]):
        ckpt = logs / "train" / name / "checkpoints" / "last.ckpt"
        ckpt.parent.mkdir(parents=True)
        ckpt.write_bytes(b"x")
        os.utime(ckpt, (1000 + i, 1000 + i))
    cfg = compose_train(["recipe=smoke/image", "ckpt_path=last", f"paths.log_dir={logs}"], tmp_path / "new")
    assert resolve_ckpt_path(cfg).endswith("2026-01-02_00-00-00/checkpoints/last.ckpt")
    own = tmp_path / "new" / "checkpoints" / "last.ckpt"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"x")
    assert resolve_ckpt_path(cfg) == str(own)
    empty = compose_train(["recipe=smoke/image", "ckpt_path=last", f"paths.log_dir={tmp_path / 'none'}"], tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoints/last.ckpt"):
        resolve_ckpt_path(empty)


def test_wandb_run_id_is_bound_to_the_run_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    first = wandb_logger(save_dir=str(tmp_path))
    assert (tmp_path / WANDB_ID_FILE).read_text().strip() == first.version
    assert wandb_logger(save_dir=str(tmp_path)).version == first.version  # a resumed run continues the same id
    assert "anonymous" not in first._wandb_init  # wandb warns about the setting whatever its value


# -- safe checkpoints and numerical faults -------------------------------------------------------------------
def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")  # fails after the tensors before it were written

    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(10_000)}, "x": Unpicklable()}, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))


@pytest.mark.parametrize("poison_step, every, message", [
    (2, 1, "refusing to write .*last.ckpt: non-finite weights at global step 2"),  # caught when saving
    (3, 2, r"non-finite training loss \(nan\) at global step 3"),  # caught by the next loss
])  # fmt: skip
def test_nan_stops_the_run_naming_the_step_and_keeps_the_good_checkpoint(
    tmp_path: Path, poison_step: int, every: int, message: str
) -> None:
    overrides = ["recipe=smoke/image", "trainer.max_steps=8", "eval.before_training=false",
                 f"callbacks.last_checkpoint.every_n_train_steps={every}",
                 "+callbacks.poison._target_=helpers.PoisonWeights",
                 f"+callbacks.poison.step={poison_step}"]  # fmt: skip
    with pytest.raises(FloatingPointError, match=message):
        run(compose_train(overrides, tmp_path))
    saved = _state(tmp_path)
    assert saved["global_step"] == 2 if every == 2 else saved["global_step"] == poison_step - 1
    assert all(t.isfinite().all() for t in saved["state_dict"].values() if t.is_floating_point())


# -- bad inputs ----------------------------------------------------------------------------------------------
def test_damaged_data_file_ends_the_cli_in_one_line_naming_it(tmp_path: Path) -> None:
    data = tmp_path / "digits"
    data.mkdir()
    (data / "digits.npz").write_bytes(b"PK\x03\x04 truncated archive")
    proc = subprocess.run(train_cmd("recipe=smoke/image", f"data.data_dir={data}", f"hydra.run.dir={tmp_path / 'r'}"),
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode != 0
    assert "digits.npz is damaged" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_wrong_batch_shape_is_a_data_error_naming_the_shape() -> None:
    with pytest.raises(DataError, match=r"\(4, 3, 8, 8\)"):
        ImageModality().encode({"image": torch.zeros(4, 3, 8, 8)})
    with pytest.raises(DataError, match="no 'image'"):
        ImageModality().encode({"pixels": torch.zeros(4, 1, 8, 8)})


def test_resuming_an_incompatible_checkpoint_names_what_differs(reference: Path, tmp_path: Path) -> None:
    ckpt = reference / "checkpoints" / "last.ckpt"
    cfg = compose_train(["recipe=smoke/image", "backbone.channels=8", f"ckpt_path={ckpt}"], tmp_path)
    with pytest.raises(CheckpointError, match=r"last.ckpt does not fit .*backbone.channels: 16 -> 8"):
        run(cfg)
    foreign = torch.load(ckpt, weights_only=True)
    foreign["diffkit_config"]["modality"]["_target_"] = "diffkit.modalities.text.adapter.TextModality"
    torch.save(foreign, tmp_path / "text.ckpt")
    with open_dict(cfg):
        cfg.ckpt_path, cfg.backbone.channels = str(tmp_path / "text.ckpt"), 16
    with pytest.raises(CheckpointError, match="text.ckpt is a checkpoint of modality .*TextModality"):
        run(cfg)


# -- dashboards and export -----------------------------------------------------------------------------------
def test_dashboards_get_losses_lr_grad_norm_throughput_samples_and_config(reference: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(reference / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/grad_norm", "val/loss", "train/device/samples_per_sec", "lr-AdamW"} <= tags, tags
    assert "samples/image" in events.Tags()["images"]
    hparams = (reference / "tensorboard" / "hparams.yaml").read_text()
    assert "_target_: diffkit.training.module.DiffusionModule" in hparams  # the resolved config
    assert "train/grad_norm" in (reference / "csv" / "metrics.csv").read_text().splitlines()[0]


def test_export_then_diffkit_load_gives_a_sampling_ready_module(reference: Path, tmp_path: Path) -> None:
    ckpt, out = reference / "checkpoints" / "last.ckpt", tmp_path / "exported"
    proc = subprocess.run([*train_cmd()[:2], "diffkit.export", f"ckpt={ckpt}", f"out={out}"], cwd=tmp_path,
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "denoiser.safetensors"]
    assert json.loads((out / "config.json").read_text())["module"]["sample_steps"] == 4

    module = diffkit.load(out)  # the README's three lines
    x = module.sample(4, steps=3, generator=torch.Generator().manual_seed(0))
    expected = load(ckpt).sample(4, steps=3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, 8, 8) and torch.equal(x, expected)
    with pytest.raises(CheckpointError, match="not an exported diffkit model"):
        diffkit.load(tmp_path)
    weights = out / "denoiser.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # a truncated download
    with pytest.raises(CheckpointError, match=f"cannot read {weights}"):
        diffkit.load(out)
