"""Quality vs NFE of a trained checkpoint: sweep samplers x step counts through the modality's evaluator.

    python -m diffkit.sweep ckpt=PATH                                   # samplers/steps from conf/sweep.yaml
    python -m diffkit.sweep ckpt=PATH samplers=[euler,unipc] steps=[5,10] grid=exponential n_samples=500
    python -m diffkit.sweep ckpt=PATH samplers=[dpmpp_2m] steps=[20] guidance_scales=[1,1.5,2]   # CFG sweep

Writes sweep.json (one row per sampler x steps with its denoiser calls, its NFE = network evaluations, which
classifier-free guidance doubles, and every evaluator metric) and <metric>_vs_nfe.png.

References:
    Karras et al. 2022, Fig. 2 (FID vs NFE per sampler); diffusion_policy eval.py (checkpoints carry their config).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from diffkit.cli import one_line_errors
from diffkit.config import CheckpointError, checkpoint_evaluator, group_option, load, load_config
from diffkit.core.samplers import count_nfe
from diffkit.io import atomic_write, write_json
from diffkit.training.evaluation import evaluate

log = logging.getLogger(__name__)
POINT_LABELS = ("sampler", "steps", "denoiser_calls", "nfe", "guidance_scale", "guidance_interval")  # not metrics


def network_evaluations(module: Any, steps: int, **options: Any) -> int:
    """Calls of the network when sampling one showcase request (classifier-free guidance: two per denoiser call)."""
    calls = [0]
    hook = module.ema.module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    request = module.modality.request(1)
    try:
        module.sample(1, request.cond, steps=steps, generator=torch.Generator().manual_seed(0), **options)
    finally:
        hook.remove()
    return calls[0]


def _line_label(row: dict) -> str:
    scale, interval = row.get("guidance_scale"), row.get("guidance_interval")
    label = row["sampler"] if scale is None else f"{row['sampler']}, CFG {scale:g}"
    return label if interval is None else f"{label}, σ in ({interval[0]:g}, {interval[1]:g}]"


def plot(rows: list[dict], metric: str, path: Path) -> None:
    """One line per sampler (and guidance scale): `metric` against NFE (log x axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for line in dict.fromkeys(_line_label(r) for r in rows):
        pts = sorted((r["nfe"], r[metric]) for r in rows if _line_label(r) == line)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=line)
    ax.set_xscale("log")
    ax.set_xlabel("NFE (network evaluations)")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def run(cfg: DictConfig) -> list[dict]:
    """Evaluate every (sampler, steps) pair with a fixed seed; write sweep.json and the quality-vs-NFE plot."""
    trust = list(cfg.get("trust") or ())  # packages the user vouches for (README "Security")
    module = load(cfg.ckpt, trust=trust)
    train_cfg = load_config(cfg.ckpt, trust=trust)
    overrides = {"n_samples": cfg.n_samples} if cfg.n_samples is not None else {}
    evaluator = checkpoint_evaluator(train_cfg, cfg.ckpt, overrides, cfg.get("evaluator_option"))
    schedule = group_option("schedule", cfg.grid, train_cfg, cfg.get("grid_args")) if cfg.grid else module.schedule
    scales = cfg.get("guidance_scales") or [None]
    interval = None if cfg.get("guidance_interval") is None else tuple(cfg.guidance_interval)
    if (any(scale is not None for scale in scales) or interval is not None) and not module.guided:
        raise CheckpointError(f"guidance_scales and guidance_interval need a model trained with classifier-free "
                              f"guidance; {cfg.ckpt} is not")  # fmt: skip
    rows: list[dict] = []
    for scale in scales:
        for name in cfg.samplers:
            sampler = group_option("sampler", name, train_cfg)
            for steps in cfg.steps:
                options = {"sampler": sampler, "schedule": schedule, "guidance_scale": scale,
                           "guidance_interval": interval}  # fmt: skip
                calls = count_nfe(sampler, schedule(int(steps)))  # calls to the (guided) denoiser
                nfe = network_evaluations(module, int(steps), **options)  # network evaluations (CFG: 2 a call)
                metrics = evaluate(evaluator, module, steps=int(steps), seed=cfg.seed, inpaint=cfg.inpaint,
                                   **options)  # fmt: skip
                point = {"sampler": name, "steps": int(steps), "denoiser_calls": calls, "nfe": nfe}
                if scale is not None:
                    point["guidance_scale"] = float(scale)
                if interval is not None:
                    point["guidance_interval"] = list(interval)
                rows.append({**point, **metrics})
                log.info("%s steps=%d nfe=%d scale=%s %s", name, steps, nfe, scale, metrics)
    metric = cfg.metric or [k for k in rows[0] if k not in POINT_LABELS][0]
    out_dir = Path(cfg.out_dir)
    write_json({"ckpt": str(cfg.ckpt), "schedule": cfg.grid or "checkpoint", "seed": int(cfg.seed), "metric": metric,
                "rows": rows}, out_dir / "sweep.json")  # fmt: skip
    plot(rows, metric, out_dir / f"{metric}_vs_nfe.png")
    log.info("wrote %s and %s", out_dir / "sweep.json", out_dir / f"{metric}_vs_nfe.png")
    return rows


@hydra.main(version_base="1.3", config_path="conf", config_name="sweep")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (console script `diffkit-sweep`)."""
    with one_line_errors("diffkit-sweep", CheckpointError, ValueError):  # user errors: one line, no traceback
        run(cfg)


if __name__ == "__main__":
    main()
