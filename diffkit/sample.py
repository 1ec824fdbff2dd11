"""Sample from a trained checkpoint; the model is rebuilt from the checkpoint alone.

    python -m diffkit.sample ckpt=PATH n=64                       # grid PNG next to the checkpoint's run
    python -m diffkit.sample ckpt=PATH sampler=dpmpp_2m steps=10
    python -m diffkit.sample ckpt=PATH sampler=dpmpp_3m schedule=exponential steps=10
    python -m diffkit.sample ckpt=PATH sampler=heun steps=18 evaluate=true   # + metrics (FD, inpainting)
    python -m diffkit.sample ckpt=PATH evaluate=true inpaint=reconstruction   # ΠGDM inpainting in the scores
    python -m diffkit.sample ckpt=PATH evaluate=true evaluator.n_samples=0  # inpainting scores only
    python -m diffkit.sample ckpt=PATH guidance_scale=1.5                    # classifier-free guidance scale
    python -m diffkit.sample ckpt=PATH n=0 likelihood=true                     # bits/dim on the test split
    python -m diffkit.sample ckpt=TEXT.ckpt n=8 prompt="ROMEO:"             # text continuation of a prefix
    python -m diffkit.sample ckpt=TEXT.ckpt infill.prefix="ROMEO:" infill.suffix="love."   # text infilling

References:
    k-diffusion sample.py; diffusion_policy eval.py (checkpoints carry their config).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from diffkit.cli import one_line_errors
from diffkit.config import CheckpointError, guidance_with_scale, instantiate_option, load, load_config
from diffkit.io import write_json
from diffkit.training.evaluation import evaluate, evaluate_likelihood

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, float]:
    """Load `cfg.ckpt`, draw `cfg.n` samples, save them with the modality's logger, optionally evaluate."""
    trust = list(cfg.get("trust") or ())  # packages the user vouches for (README "Security")
    module = load(cfg.ckpt, trust=trust)
    train_cfg = load_config(cfg.ckpt, trust=trust)
    out_dir = Path(cfg.out_dir)
    sampler = instantiate(cfg.sampler) if cfg.get("sampler") else None
    schedule = instantiate_option(train_cfg, "schedule", cfg.schedule) if cfg.get("schedule") else None
    steps = cfg.steps or module.sample_steps
    if cfg.get("guidance_scale") is not None:
        module.guidance = guidance_with_scale(train_cfg, cfg.guidance_scale, cfg.ckpt)
    generator = torch.Generator().manual_seed(cfg.seed)
    cond = module.modality.example_cond(cfg.n, device=module.device)
    if cfg.n > 0:
        known = mask = None
        prefix, suffix = cfg.get("prompt") or cfg.infill.prefix or "", cfg.infill.suffix or ""
        if prefix or suffix:  # given tokens stay exactly as written (replace_tokens / forced AR tokens)
            if not hasattr(module.modality, "infill"):
                raise CheckpointError(f"prompt/infill need a text checkpoint; {cfg.ckpt} is {module.modality.kind}")
            known, mask = module.modality.infill(cfg.n, prefix=str(prefix), suffix=str(suffix))
        samples = module.sample(
            cfg.n, cond, steps=steps, generator=generator, sampler=sampler, schedule=schedule, known=known, mask=mask
        )
        module.modality.log_samples(module.modality.decode(samples), None, step=0, out_dir=str(out_dir))
        log.info("wrote %d samples to %s", cfg.n, out_dir)
    metrics: dict[str, float] = {}
    if cfg.likelihood:
        metrics.update(likelihood(cfg, module, train_cfg))
    if cfg.evaluate:
        overrides = {key: value for key, value in (cfg.get("evaluator") or {}).items() if value is not None}
        evaluator = instantiate(OmegaConf.merge(train_cfg.evaluator, overrides))
        inpaint = instantiate(cfg.inpaint) if cfg.get("inpaint") else None
        metrics.update(evaluate(evaluator, module, steps=steps, sampler=sampler, schedule=schedule, seed=cfg.seed,
                                inpaint_method=inpaint))  # fmt: skip
        write_json({**metrics, "steps": steps, "ckpt": str(cfg.ckpt)}, out_dir / "metrics.json")
        log.info("metrics: %s", metrics)
    return metrics


def likelihood(cfg: DictConfig, module, train_cfg: DictConfig) -> dict[str, float]:
    """Bits/dim of the test split by the probability-flow ODE -> likelihood.json (dequantised if data is discrete)."""
    data = instantiate(train_cfg.data)
    data.prepare_data()
    data.setup("test")
    bin_width = cfg.bin_width
    if bin_width is None and getattr(module.modality, "grey_levels", None):
        bin_width = 2.0 / module.modality.grey_levels  # grey_levels + 1 levels mapped to [-1, 1]
    result = evaluate_likelihood(module, data.test_dataloader(), bin_width=bin_width, steps=cfg.likelihood_steps,
                                 seed=cfg.seed, max_examples=cfg.likelihood_n)  # fmt: skip
    write_json({**result, "ckpt": str(cfg.ckpt), "split": "test"}, Path(cfg.out_dir) / "likelihood.json")
    log.info("likelihood: %s", result)
    return {f"likelihood/{k}": v for k, v in result.items()}


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (console script `diffkit-sample`)."""
    with one_line_errors("diffkit-sample", CheckpointError):  # user errors: one line, no traceback
        run(cfg)


if __name__ == "__main__":
    main()
