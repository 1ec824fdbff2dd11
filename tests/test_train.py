"""End-to-end training on the smoke recipe: outputs on disk, checkpoint round-trip, resume, sample CLI, errors."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from helpers import ROOT, compose_train
from omegaconf import DictConfig, open_dict

from diffkit.config import CheckpointError, instantiate_option, load, load_config
from diffkit.core.guidance import reconstruction_guidance
from diffkit.train import build_evaluator, run
from diffkit.training.precision import resolve_precision


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """One smoke run shared by the tests below (a few seconds on CPU)."""
    out = tmp_path_factory.mktemp("run")
    cfg = compose_train(["recipe=smoke/image"], out)
    return out, run(cfg)


def test_run_writes_checkpoint_samples_and_metrics(trained) -> None:
    out, metrics = trained
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert list((out / "samples").glob("samples_step*.png"))
    assert list((out / "samples" / "final").glob("*.png"))
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == pytest.approx(metrics)
    for key in ("train/loss", "val/loss", "init/fd", "test/fd", "test/inpaint_ssim", "test/meanfill_ssim"):
        assert key in metrics and metrics[key] == metrics[key], key  # present and not NaN
    assert metrics["test/classifier_test_acc"] >= 0.93  # the evaluator's digits classifier (30 epochs, cached)
    assert (out / "csv" / "metrics.csv").is_file()


def test_checkpoint_rebuilds_the_module_alone(trained) -> None:
    out, _ = trained
    ckpt = out / "checkpoints" / "last.ckpt"
    module = load(ckpt)
    assert load_config(ckpt).module.sample_steps == module.sample_steps
    a = module.sample(4, steps=3, generator=torch.Generator().manual_seed(0))
    again = load(ckpt).sample(4, steps=3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (4, 1, 8, 8) and torch.equal(a, again)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, tensor in module.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_inpainting_methods_keep_known_pixels_and_differ(trained) -> None:
    """sample(known, mask, hold=...) uses the given method; both keep the known pixels exactly."""
    out, _ = trained
    module = load(out / "checkpoints" / "last.ckpt")
    known = torch.rand(4, 1, 8, 8) * 2 - 1
    mask = torch.zeros(4, 1, 8, 8)
    mask[..., :4, :] = 1  # the top half is known
    results = {}
    for name, method in {"replace": None, "reconstruction": partial(reconstruction_guidance, sigma_data=0.5)}.items():
        g = torch.Generator().manual_seed(0)
        results[name] = module.sample(4, steps=4, generator=g, known=known, mask=mask, hold=method)
        assert torch.equal(results[name][..., :4, :], known[..., :4, :]), name
    assert not torch.allclose(results["replace"][..., 4:, :], results["reconstruction"][..., 4:, :])


def test_inpaint_sampler_is_used_only_when_known_entries_are_given(trained) -> None:
    """The given-entry component's sampler (e.g. RePaint) serves inpainting; plain and explicit sampling do not."""
    from diffkit.core.samplers.gaussian import sample_euler_ancestral

    out, _ = trained
    module = load(out / "checkpoints" / "last.ckpt")
    used: list[str] = []

    def spy(name: str, sampler):
        def wrapped(*args, **kwargs):
            used.append(name)
            return sampler(*args, **kwargs)

        return wrapped

    module.sampler = spy("sampler", module.sampler)
    (given,) = module.conditioning  # GivenEntries (conditioning=replace)
    given.sampler = spy("repaint", partial(sample_euler_ancestral, resample=2))
    known, mask = torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)
    mask[..., 4:, :] = 0
    module.sample(2, steps=3)
    filled = module.sample(2, steps=3, known=known, mask=mask)
    module.sample(2, steps=3, known=known, mask=mask, sampler=spy("explicit", module.sampler))
    assert used == ["sampler", "repaint", "explicit", "sampler"]
    assert torch.equal(filled[..., :4, :], known[..., :4, :])


def test_resume_continues_from_the_checkpoint(trained, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out, _ = trained
    stored_steps = load_config(out / "checkpoints" / "last.ckpt").trainer.max_steps
    cfg: DictConfig = compose_train(
        ["recipe=smoke/image", "trainer.max_steps=9", "eval.before_training=false", "trainer.precision=bf16-if-native"],
        tmp_path,
    )
    with open_dict(cfg):
        cfg.ckpt_path = str(out / "checkpoints" / "last.ckpt")
    run(cfg)
    # the longer budget is allowed (it also stretches the LR schedule) but said out loud
    assert f"changed from the checkpoint's: trainer.max_steps: {stored_steps} -> 9" in caplog.text
    resumed = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == 9
    assert int(resumed["state_dict"]["ema.num_updates"]) == 9  # EMA state continued, not restarted
    # The checkpoint records the precision this machine resolved, not the conditional request.
    assert load_config(tmp_path / "checkpoints" / "last.ckpt").trainer.precision == resolve_precision("bf16-if-native")


def test_resuming_in_the_same_folder_keeps_the_csv_history(tmp_path: Path) -> None:
    """Lightning's CSV writer deletes metrics.csv on start; a resume keeps the rows from before the checkpoint."""
    common = ["recipe=smoke/image", "eval.before_training=false", "eval.after_training=false"]
    common.append("trainer.log_every_n_steps=1")
    metrics_csv = tmp_path / "csv" / "metrics.csv"

    def logged_steps() -> list[int]:
        with metrics_csv.open(newline="") as file:
            return [int(row["step"]) for row in csv.DictReader(file) if row.get("train/loss")]

    run(compose_train([*common, "trainer.max_steps=4"], tmp_path))
    assert logged_steps() == [0, 1, 2, 3]
    fields = metrics_csv.read_text().splitlines()[0].split(",")
    with metrics_csv.open("a", newline="") as file:  # a row logged after the checkpoint, as if killed then
        csv.DictWriter(file, fieldnames=fields).writerow({"step": 5, "train/loss": 999.0})
    cfg = compose_train([*common, "trainer.max_steps=7"], tmp_path)
    with open_dict(cfg):
        cfg.ckpt_path = "last"  # this folder's checkpoints/last.ckpt
    run(cfg)
    assert logged_steps() == [0, 1, 2, 3, 4, 5, 6]  # the stale step-5 row is gone, the rest kept once


@pytest.mark.parametrize(
    "sampler, steps, extra",
    [
        ("dpmpp_2m", 10, ["+evaluator.n_posterior=1"]),  # one completion per image: the sampler is what is tested
        ("heun", 18, ["+evaluator.n_posterior=1", "evaluator.n_samples=32"]),
        ("dpmpp_2m", 4, ["hold=reconstruction", "+evaluator.n_posterior=2"]),
    ],
)
def test_sample_cli(trained, tmp_path: Path, sampler: str, steps: int, extra: list[str]) -> None:
    out, _ = trained
    cmd = [sys.executable, "-m", "diffkit.sample", f"ckpt={out / 'checkpoints' / 'last.ckpt'}", "n=16",
           f"sampler={sampler}", f"steps={steps}", "evaluate=true", f"hydra.run.dir={tmp_path}", *extra]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(tmp_path.glob("samples_step*.png"))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == steps and metrics["fd"] > 0 and "inpaint_psnr" in metrics


def test_fit_grid_cli_fits_a_closer_grid_that_sample_uses(trained, tmp_path: Path) -> None:
    """diffkit.fit_grid: the fitted grid is no further from the reference than the checkpoint's; sample uses it."""
    ckpt = trained[0] / "checkpoints" / "last.ckpt"
    cmd = [sys.executable, "-m", "diffkit.fit_grid", f"ckpt={ckpt}", "samplers=[dpmpp_2m]", "steps=[4]", "n=16",
           "reference_steps=32", "sweeps=1", f"hydra.run.dir={tmp_path / 'fit'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    fitted = json.loads((tmp_path / "fit" / "dpmpp_2m_4.json").read_text())
    assert len(fitted["sigmas"]) == 5 and fitted["sigmas"][-1] == 0 and fitted["nfe"] == 4
    assert fitted["distance_fitted"] <= fitted["distance_checkpoint_grid"]
    cmd = [sys.executable, "-m", "diffkit.sample", f"ckpt={ckpt}", "n=8", "sampler=dpmpp_2m", "steps=4",
           "schedule=fitted", f"schedule.path={tmp_path / 'fit' / 'dpmpp_2m_4.json'}",
           f"hydra.run.dir={tmp_path / 'sample'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "sample").glob("samples_step*.png"))


def test_corrupt_or_foreign_checkpoints_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load(tmp_path / "missing.ckpt")
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="broken.ckpt"):
        load(broken)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a diffkit checkpoint"):
        load(foreign)


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "diffkit_config": {}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        load(path)
    assert not (tmp_path / "pwned").exists()


def test_sample_cli_reports_a_corrupt_checkpoint_in_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    proc = subprocess.run(
        [sys.executable, "-m", "diffkit.sample", f"ckpt={broken}", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "broken.ckpt" in proc.stderr and "Traceback" not in proc.stderr


def test_sample_cli_reports_bits_per_dim(trained, tmp_path: Path) -> None:
    """`likelihood=true` writes the test-split bits/dim of the dequantised digits (17 levels, bin 1/8)."""
    out, _ = trained
    cmd = [sys.executable, "-m", "diffkit.sample", f"ckpt={out / 'checkpoints' / 'last.ckpt'}", "n=0",
           "likelihood=true", "likelihood_n=16", "likelihood_steps=3", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "likelihood.json").read_text())
    assert result["n_examples"] == 16 and result["bin_width"] == 0.125 and result["ode_steps"] == 3
    assert 0 < result["bpd"] < 50 and result["nll_nats"] == pytest.approx(
        result["bpd"] * 64 * math.log(2) + 64 * math.log(0.125), rel=1e-6
    )


def test_sweep_writes_quality_vs_nfe(trained, tmp_path: Path) -> None:
    """2 samplers x 2 step counts through the digits evaluator: JSON rows with counted NFE, and a PNG plot."""
    from diffkit.sweep import run as sweep

    out, _ = trained
    cfg = compose_train([f"ckpt={out / 'checkpoints' / 'last.ckpt'}", "samplers=[euler,heun]", "steps=[2,3]",
                         "n_samples=32", "grid=exponential"], tmp_path, config_name="sweep")  # fmt: skip
    rows = sweep(cfg)
    assert [(r["sampler"], r["steps"], r["nfe"]) for r in rows] == [
        ("euler", 2, 2), ("euler", 3, 3), ("heun", 2, 3), ("heun", 3, 5)
    ]  # fmt: skip
    assert all(r["fd"] > 0 for r in rows)
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["metric"] == "fd" and saved["rows"] == rows  # JSON floats round-trip exactly
    png = (tmp_path / "fd_vs_nfe.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


def test_sample_with_another_sampler_and_grid(trained, tmp_path: Path) -> None:
    """`sampler=dpmpp_3m schedule=exponential`: the grid resolves against the checkpoint's process (σ range)."""
    from diffkit.sample import run as sample

    out, _ = trained
    ckpt = out / "checkpoints" / "last.ckpt"
    cfg = compose_train([f"ckpt={ckpt}", "n=4", "steps=5", "sampler=dpmpp_3m", "schedule=exponential"], tmp_path,
                        config_name="sample")  # fmt: skip
    grid = instantiate_option(load_config(ckpt), "schedule", cfg.schedule)(5)
    assert grid.shape == (6,) and float(grid[0]) == pytest.approx(80.0) and float(grid[-2]) == pytest.approx(0.002)
    sample(cfg)
    assert list(tmp_path.glob("samples_step*.png"))


COND = ["recipe=smoke/image", "conditioning=[cfg,replace]", "conditioning.cfg.p=0.2", "modality.num_classes=10",
        "+backbone.embeddings.label={_target_: diffkit.nets.encoders.LabelEmbedding, _partial_: true, num_classes: 10}",
        "evaluator.conditional=true"]  # fmt: skip


@pytest.fixture(scope="module")
def trained_cfg(tmp_path_factory) -> Path:
    """A class-conditional smoke run with classifier-free guidance (label dropout 0.2)."""
    out = tmp_path_factory.mktemp("run_cfg")
    run(compose_train([*COND, "eval.before_training=false"], out))
    return out / "checkpoints" / "last.ckpt"


def test_guidance_scale_override(trained_cfg: Path, trained, tmp_path: Path) -> None:
    """guidance_scale=1 is the plain conditional model; 0 and 3 differ; an unguided checkpoint refuses it."""
    module = load(trained_cfg)
    request = module.modality.request(6)

    def draw(scale: float) -> torch.Tensor:
        return module.sample(6, request.cond, steps=3, generator=torch.Generator().manual_seed(0), guidance_scale=scale)

    plain = draw(1.0)
    trained_scale = module.sample(6, request.cond, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(trained_scale, draw(2.0))  # conf/conditioning/cfg.yaml: scale 2
    unconditional, guided = draw(0.0), draw(3.0)
    assert not torch.equal(unconditional, plain) and not torch.equal(guided, plain)
    unguided = load(trained[0] / "checkpoints" / "last.ckpt")
    with pytest.raises(ValueError, match="classifier-free guidance"):
        unguided.sample(2, steps=2, guidance_scale=2.0)
    cmd = [sys.executable, "-m", "diffkit.sample", f"ckpt={trained[0] / 'checkpoints' / 'last.ckpt'}", "n=2",
           "steps=2", "guidance_scale=2", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "classifier-free guidance" in proc.stderr and "Traceback" not in proc.stderr


def test_sweep_over_guidance_scales(trained_cfg: Path, tmp_path: Path) -> None:
    from diffkit.sweep import run as sweep

    cfg = compose_train([f"ckpt={trained_cfg}", "samplers=[euler]", "steps=[2]", "n_samples=32",
                         "guidance_scales=[0,1,2]"], tmp_path, config_name="sweep")  # fmt: skip
    rows = sweep(cfg)
    # scales 0 and 1 need one network branch, any other scale two: NFE counts network evaluations, not calls
    counts = [(r["guidance_scale"], r["denoiser_calls"], r["nfe"]) for r in rows]
    assert counts == [(0.0, 2, 2), (1.0, 2, 2), (2.0, 2, 4)]
    assert rows[0]["fd"] != rows[1]["fd"] and "cond_acc" in rows[0]  # conditional samples, guided differently
    assert (tmp_path / "fd_vs_nfe.png").is_file()


def test_guidance_interval_guides_only_its_sigmas(trained_cfg: Path, tmp_path: Path) -> None:
    """guidance_interval (lo, hi]: all of the grid inside = full guidance, none inside = the conditional model; the
    sweep counts one network evaluation for each unguided step."""
    from diffkit.sweep import run as sweep

    module = load(trained_cfg)
    request = module.modality.request(4)

    def draw(**options) -> torch.Tensor:
        return module.sample(4, request.cond, steps=3, generator=torch.Generator().manual_seed(0), **options)

    assert torch.equal(draw(guidance_interval=(0.0, 1e9)), draw())
    assert torch.equal(draw(guidance_interval=(1e8, 1e9)), draw(guidance_scale=1.0))
    sigmas = module.schedule(3).tolist()  # 3 Euler steps evaluate at sigmas[0..2]; guide at sigmas[1] only
    cfg = compose_train([f"ckpt={trained_cfg}", "samplers=[euler]", "steps=[3]", "n_samples=32",
                         f"guidance_interval=[{sigmas[2]},{sigmas[1]}]"], tmp_path, config_name="sweep")  # fmt: skip
    (row,) = sweep(cfg)
    assert (row["denoiser_calls"], row["nfe"], row["guidance_interval"]) == (3, 4, [sigmas[2], sigmas[1]])


def test_only_modules_besides_the_ema_copy_in_eval_mode_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    import lightning as L

    from diffkit.train import _warn_if_frozen

    module = L.LightningModule()
    module.net, module.ema = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout()), torch.nn.Linear(2, 2)
    module.ema.eval()
    _warn_if_frozen(module)
    assert not caplog.records
    module.net[1].eval()
    _warn_if_frozen(module)
    assert "1 module(s)" in caplog.text and "net.1" in caplog.text


KNOWN = ["+backbone.inputs={_target_: diffkit.nets.encoders.KnownChannels, _partial_: true}",
         "conditioning=[known,replace]",
         "conditioning.known.masks={_target_: diffkit.modalities.image.masks.RandomImageMasks, p: 0.5}"]  # fmt: skip


def test_fine_tuning_for_learned_inpainting_starts_from_the_checkpoints_model(trained, tmp_path: Path) -> None:
    """init_from + KnownChannels: the widened net equals the checkpoint's at step 0; training then reads the mask."""
    from diffkit.config import build_module, init_weights

    out, _ = trained
    ckpt = out / "checkpoints" / "last.ckpt"
    overrides = ["recipe=smoke/image", *KNOWN, "eval.before_training=false"]
    module = build_module(compose_train(overrides, tmp_path))
    init_weights(module, ckpt)
    base = load(ckpt)
    x, sigma = torch.randn(3, 1, 8, 8), torch.full((3,), 1.5)
    known, mask = torch.randn(3, 1, 8, 8), (torch.rand(3, 1, 8, 8) < 0.5).float()
    reference = base.ema.module(x, sigma)
    for net in (module.denoiser, module.ema.module):  # zero-initialised new channels: the same function
        torch.testing.assert_close(net(x, sigma, {"known": known, "mask": mask}), reference)

    seen: list[set] = []  # the net receives known/mask when sampling with known entries, not otherwise
    inner = module.ema.module.net.forward
    module.ema.module.net.forward = lambda x, c, cond=None: seen.append(set(cond or {})) or inner(x, c, cond)
    module.sample(2, steps=2)
    filled = module.sample(2, steps=2, known=known[:2], mask=mask[:2])
    assert seen[0] == set() and all(keys == {"known", "mask"} for keys in seen[len(seen) // 2 :])
    assert torch.equal(filled[mask[:2].bool()], known[:2][mask[:2].bool()])

    run_cfg = compose_train([*overrides, f"init_from={ckpt}", "evaluator.n_samples=16"], tmp_path / "ft")
    metrics = run(run_cfg)
    assert metrics["train/loss"] == metrics["train/loss"] and "test/inpaint_ssim" in metrics


def test_init_from_refuses_another_architecture_and_masks_without_known_channels(trained, tmp_path: Path) -> None:
    from diffkit.config import build_module, init_weights

    out, _ = trained
    wider = build_module(compose_train(["recipe=smoke/image", "backbone.channels=24"], tmp_path))
    with pytest.raises(CheckpointError, match="has shape"):
        init_weights(wider, out / "checkpoints" / "last.ckpt")
    with pytest.raises(Exception, match=r"no encoder for the condition entries \['known', 'mask'\]"):  # via Hydra
        build_module(compose_train(["recipe=smoke/image", *KNOWN[1:]], tmp_path))  # masks, but no input encoder


def test_a_removed_evaluator_group_leaves_its_recipe_settings_unused(caplog) -> None:
    """`~evaluator` on a recipe that sets evaluator.* keys: no evaluator, the keys named (it failed after training)."""
    assert build_evaluator(None) is None
    with caplog.at_level("WARNING"):
        assert build_evaluator(DictConfig({"n_inpaint": 150, "n_posterior": 2})) is None
    assert "['n_inpaint', 'n_posterior'] are not used" in caplog.text
    node = DictConfig({"_target_": "collections.Counter", "a": 1})
    assert build_evaluator(node) == {"a": 1}


def test_a_checkpoint_trained_without_an_evaluator_is_scored_by_a_named_one(trained, tmp_path: Path) -> None:
    """sweep on a `~evaluator` checkpoint: one error naming it and the way out; `evaluator_option=digits` scores it."""
    from diffkit.sweep import run as sweep
    from diffkit.training.module import CONFIG_KEY

    out, _ = trained
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    del ckpt[CONFIG_KEY]["evaluator"]  # what `~evaluator` stores
    bare = tmp_path / "bare.ckpt"
    torch.save(ckpt, bare)
    args = [f"ckpt={bare}", "samplers=[euler]", "steps=[2]", "n_samples=32"]
    with pytest.raises(CheckpointError, match=r"bare.ckpt was trained without an evaluator.*evaluator_option=NAME"):
        sweep(compose_train(args, tmp_path / "a", config_name="sweep"))
    rows = sweep(compose_train([*args, "evaluator_option=digits"], tmp_path / "b", config_name="sweep"))
    assert [(r["sampler"], r["steps"]) for r in rows] == [("euler", 2)] and rows[0]["fd"] > 0
