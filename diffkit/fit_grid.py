"""Fit few-step σ grids to a trained checkpoint: the grid that makes a sampler track the exact probability-flow ODE.

    python -m diffkit.fit_grid ckpt=PATH samplers=[dpmpp_2m,unipc] steps=[5,10]
    python -m diffkit.sample ckpt=PATH sampler=dpmpp_2m steps=10 schedule=fitted schedule.path=<run>/dpmpp_2m_10.json

The objective (optimize_grid) is the mean distance, over `n` noise draws, between the sampler's solution on the
candidate grid and a `reference_steps`-step Heun solution from the same noise, through the model's own sampling
path (conditioning components, guidance). References: Sabour et al. 2024 (Align Your Steps); Xue et al. 2024.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from diffkit.cli import one_line_errors
from diffkit.config import CheckpointError, instantiate_option, load, load_config
from diffkit.core.samplers import count_nfe, optimize_grid, sample_heun
from diffkit.io import write_json
from diffkit.modalities.base import DataError

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, list[float]]:
    """Fit one grid per (sampler, steps); write <sampler>_<steps>.json into out_dir; return the grids by file stem."""
    trust = list(cfg.get("trust") or ())
    module = load(cfg.ckpt, trust=trust)
    train_cfg = load_config(cfg.ckpt, trust=trust)
    conf_dir = Path(__file__).with_name("conf") / "sampler"
    request = module.modality.request(cfg.n)

    def solve(sampler, grid: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(cfg.seed)  # the same noise for every candidate grid
        return module.sample(cfg.n, request.cond, known=request.known, mask=request.mask, sampler=sampler,
                             schedule=lambda _: grid, generator=generator)  # fmt: skip

    reference_grid = module.schedule(cfg.reference_steps)
    reference = solve(sample_heun, reference_grid)
    sigma_max, sigma_min = float(reference_grid[0]), float(reference_grid[-2])
    grids: dict[str, list[float]] = {}
    for name in cfg.samplers:
        path = conf_dir / f"{name}.yaml"
        if not path.is_file():
            options = sorted(p.stem for p in conf_dir.glob("*.yaml"))
            raise DataError(f"unknown sampler {name!r}; choose one of {options}")
        sampler = instantiate_option(train_cfg, "sampler", OmegaConf.load(path))
        for steps in cfg.steps:
            start = module.schedule(int(steps))
            fitted = optimize_grid(functools.partial(solve, sampler), reference, int(steps), sigma_max=sigma_max,
                                   sigma_min=sigma_min, init=start.double(), sweeps=cfg.sweeps)  # fmt: skip
            before, after = (distance(solve(sampler, g), reference) for g in (start, fitted))
            stem = f"{name}_{steps}"
            grids[stem] = fitted.tolist()
            write_json({"sampler": name, "steps": int(steps), "nfe": count_nfe(sampler, fitted), "sigmas": grids[stem],
                        "ckpt": str(cfg.ckpt), "n": cfg.n, "seed": cfg.seed, "reference_steps": cfg.reference_steps,
                        "distance_checkpoint_grid": before, "distance_fitted": after},
                       Path(cfg.out_dir) / f"{stem}.json")  # fmt: skip
            log.info("%s: distance to the reference %.4f -> %.4f (%s)", stem, before, after, Path(cfg.out_dir) / stem)
    return grids


def distance(x: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean per-example L2 distance (the objective of optimize_grid)."""
    return float((x - reference).flatten(1).double().norm(dim=1).mean())


@hydra.main(version_base="1.3", config_path="conf", config_name="fit_grid")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (console script `diffkit-fit-grid`)."""
    with one_line_errors("diffkit-fit-grid", CheckpointError, DataError):
        run(cfg)


if __name__ == "__main__":
    main()
