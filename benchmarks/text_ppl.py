"""Test-set perplexity: masked diffusion NELBO bound vs the AR baseline, from their checkpoints, in one table.

    python benchmarks/text_ppl.py --mdlm outputs/bench/mdlm/checkpoints/last.ckpt \
        --ar outputs/bench/ar/checkpoints/last.ckpt --n-t 4 --out benchmarks/text_ppl.json

Several --ar checkpoints (an overfitting AR's best-validation one and its last) are each compared with the MDLM; each
ratio comes with a 95% interval from the paired per-block differences (paired_ratio_interval).

MDLM: NELBO in nats/char averaged over n_t stratified times per test block (MaskedNELBO.evaluate); exp(NELBO) is an
upper bound on its perplexity. AR: exact next-character NLL over the same blocks, first character from the start
token. Both use their EMA weights and the same test split (held-out plays, data/shakespeare/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from diffkit.config import load, load_config
from diffkit.modalities.text.data import BlockDataset
from diffkit.training.ar import ARModule


@torch.no_grad()
def score(ckpt: str, n_t: int, batch: int, seed: int) -> tuple[dict, torch.Tensor]:
    """One table row and the per-block nats/char [N] (for the paired interval of the ratio)."""
    module, cfg = load(ckpt), load_config(ckpt)
    blocks = BlockDataset(torch.load(Path(cfg.data.data_dir) / "test.pt", weights_only=True), cfg.modality.seq_len)
    generator = torch.Generator().manual_seed(seed)
    per_block, start = [], time.perf_counter()
    for i in range(0, len(blocks), batch):
        x0 = blocks.blocks[i : i + batch]
        if isinstance(module, ARModule):
            per_block.append(module.nll(module.ema.module, x0).double())
        else:
            per_block.append(module.loss.evaluate(module.ema.module, x0, n_t=n_t, generator=generator).double())
    nll = torch.cat(per_block)
    params = sum(p.numel() for p in (module.net if isinstance(module, ARModule) else module.denoiser).parameters())
    nats = float(nll.mean())
    row = {"ckpt": ckpt, "kind": "ar" if isinstance(module, ARModule) else "mdlm", "nats_per_char": round(nats, 4),
           "ppl": round(math.exp(nats), 4), "bits_per_char": round(nats / math.log(2), 4), "test_blocks": len(nll),
           "params": params, "steps": int(torch.load(ckpt, weights_only=True)["global_step"]),
           "eval_s": round(time.perf_counter() - start, 1)}  # fmt: skip
    return row, nll


def paired_ratio_interval(mdlm: torch.Tensor, ar: torch.Tensor) -> tuple[float, float]:
    """95% interval of exp(mean(mdlm - ar)) from the per-block differences (normal approximation, paired blocks).

    Pairing removes the blocks' own difficulty, so the interval covers the MDLM's Monte-Carlo noise (t and masks)
    and which blocks the test split happens to hold, not the spread of text difficulty.
    """
    if mdlm.shape != ar.shape:
        raise ValueError(f"the MDLM and AR rows cover different blocks ({len(mdlm)} vs {len(ar)}): same data needed")
    diff = mdlm - ar
    half = 1.96 * float(diff.std()) / math.sqrt(len(diff))
    return math.exp(float(diff.mean()) - half), math.exp(float(diff.mean()) + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mdlm", required=True)
    parser.add_argument("--ar", required=True, nargs="+", help="one or more AR checkpoints (e.g. best-val and last)")
    parser.add_argument("--n-t", type=int, default=4, help="stratified times per block for the NELBO")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    mdlm, mdlm_blocks = score(args.mdlm, args.n_t, args.batch, args.seed)
    ars = []
    for ckpt in args.ar:
        row, ar_blocks = score(ckpt, args.n_t, args.batch, args.seed)
        row["mdlm_ppl_ratio"] = round(mdlm["ppl"] / row["ppl"], 4)
        row["mdlm_ppl_ratio_ci95"] = [round(v, 4) for v in paired_ratio_interval(mdlm_blocks, ar_blocks)]
        ars.append(row)
    for row in [mdlm, *ars]:
        print(json.dumps(row))
    for row in ars:
        lo, hi = row["mdlm_ppl_ratio_ci95"]
        print(f"MDLM bound / AR perplexity ({row['ckpt']}, step {row['steps']}) = {row['mdlm_ppl_ratio']:.3f} "
              f"(95% paired interval {lo:.3f}-{hi:.3f})")  # fmt: skip
    if args.out:
        result = {"rows": [mdlm, *ars], "ppl_ratio": ars[0]["mdlm_ppl_ratio"]}  # against the first --ar
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
