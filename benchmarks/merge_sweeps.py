"""Merge `diffkit.sweep` runs of several evaluation seeds into one table: every metric's mean ± sd per point.

    python benchmarks/merge_sweeps.py RUN_DIR [RUN_DIR ...] --out benchmarks/results/x.json [--command "how"]

A point is (grid, sampler, steps, guidance scale, guidance interval); a run's seed is read from its sweep.json (or,
for older runs, from the run folder's .hydra/config.yaml). Prints the headline metric as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from omegaconf import OmegaConf

from diffkit.sweep import POINT_LABELS as LABELS


def read_run(run_dir: Path) -> tuple[int, dict]:
    """(seed, sweep.json) of one run folder."""
    sweep = json.loads((run_dir / "sweep.json").read_text())
    seed = sweep.get("seed")
    if seed is None:
        seed = OmegaConf.load(run_dir / ".hydra" / "config.yaml").seed
    return int(seed), sweep


def merge(runs: list[tuple[int, dict]]) -> list[dict]:
    """One row per point with each seed's metrics and the mean and sd (None for one seed) of every metric."""
    points: dict[tuple, dict] = {}
    for seed, sweep in runs:
        for row in sweep["rows"]:
            interval = row.get("guidance_interval")
            key = (sweep["schedule"], row["sampler"], row["steps"], row.get("guidance_scale"), str(interval))
            point = points.setdefault(key, {"grid": sweep["schedule"], **{k: row.get(k) for k in LABELS}, "seeds": {}})
            if seed in point["seeds"]:
                raise ValueError(f"seed {seed} appears twice for {key}")
            point["seeds"][seed] = {k: v for k, v in row.items() if k not in LABELS}
    rows = []
    for point in points.values():
        metrics = sorted({k for values in point["seeds"].values() for k in values})
        for metric in metrics:
            values = [v[metric] for v in point["seeds"].values() if isinstance(v.get(metric), int | float)]
            point[f"{metric}_mean"] = statistics.fmean(values) if values else None
            point[f"{metric}_sd"] = statistics.stdev(values) if len(values) > 1 else None
        rows.append(point)
    return sorted(rows, key=lambda r: (r["grid"], r["sampler"], str(r["guidance_interval"]), r["nfe"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--command", default="", help="how the runs were made (stored in the JSON)")
    parser.add_argument("--metric", default="fd")
    args = parser.parse_args()
    rows = merge([read_run(run) for run in args.runs])
    args.out.write_text(json.dumps({"command": args.command, "rows": rows}, indent=1) + "\n")
    print(f"| grid | sampler | guidance | NFE | {args.metric} mean ± sd | seeds |\n|---|---|---|---|---|---|")
    for r in rows:
        guidance = "checkpoint's" if r["guidance_scale"] is None else f"{r['guidance_scale']:g}"
        if r["guidance_interval"] is not None:
            guidance += " in ({:g}, {:g}]".format(*r["guidance_interval"])
        sd = r.get(f"{args.metric}_sd")
        spread = "" if sd is None else f" ± {sd:.2g}"
        print(
            f"| {r['grid']} | {r['sampler']} | {guidance} | {r['nfe']} | {r[f'{args.metric}_mean']:.4g}{spread} "
            f"| {sorted(r['seeds'])} |"
        )


if __name__ == "__main__":
    main()
