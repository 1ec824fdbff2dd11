"""The end of a training run in a few lines: where its outputs are, the headline numbers beside their baselines,
and what to run next. diffkit.train prints it; every number stays in metrics.json.

    print(run_summary(metrics, evaluator_headlines(evaluator), out_dir=out, seconds=492.0, checkpoint=ckpt))

The numbers come from the evaluator's `headlines()` (diffkit.modalities.base.Headline): its keys are looked up
under `test/` (the final model) and `init/` (the untrained model, a baseline too); an evaluator without them, or
a run without one, gets the losses instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from diffkit.modalities.base import Headline

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
LOSSES = (("validation loss", "val/loss"), ("test loss", "test/loss"))  # the generic summary's numbers
LOG_FILE = "train.log"  # Hydra's <job name>.log in the run folder
MAX_RECIPES = 3  # other recipes named in the last line


def evaluator_headlines(evaluator: Any) -> tuple[Headline, ...]:
    """The evaluator's headlines() (none when it has no such method or there is no evaluator)."""
    headlines = getattr(evaluator, "headlines", None)
    return tuple(headlines()) if callable(headlines) else ()


def final_checkpoint(checkpoint_callbacks: Sequence[Any]) -> str | None:
    """The file with the final weights (last.ckpt), else the best-by-metric one, else None (no checkpointing)."""
    paths = [getattr(cb, "last_model_path", "") for cb in checkpoint_callbacks]
    paths += [getattr(cb, "best_model_path", "") for cb in checkpoint_callbacks]
    return next((p for p in paths if p and Path(p).is_file()), None)


def process_seconds() -> float | None:
    """Seconds since this process started (Linux /proc: imports and config composition included), else None."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def format_seconds(seconds: float) -> str:
    """42 s, 8 min 11 s, 1 h 03 min."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_number(value: float) -> str:
    """Four significant figures, thousands with separators: 13.38, 0.507, 767.7, 1,234; rounding noise (|v| < 1e-12,
    e.g. a reference's own normalized score) is 0."""
    if abs(value) < 1e-12:
        return "0"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def headline_line(metrics: Mapping[str, float], headline: Headline) -> str | None:
    """`<label> <value> (<lower|higher> is better; <baseline> <value>, ..., untrained model <value>; <note>)`, or
    None when the final model has no such number."""
    value = metrics.get(f"test/{headline.key}")
    if value is None:
        return None
    refs = [(label, metrics.get(f"test/{key}")) for label, key in headline.baselines]
    refs.append(("untrained model", metrics.get(f"init/{headline.key}")))
    shown = [f"{label} {format_number(v)}{headline.unit}" for label, v in refs if v is not None]
    better = f"{'lower' if headline.lower_is_better else 'higher'} is better"
    inside = "; ".join(part for part in (better, ", ".join(shown), headline.note) if part)
    return f"{headline.label} {format_number(value)}{headline.unit} ({inside})"


def _path(path: str | os.PathLike) -> str:
    """The path relative to the working directory when it lies below it (shorter to read and to paste)."""
    path = Path(path).resolve()
    cwd = Path.cwd().resolve()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def _other_recipes(recipe: str | None, recipes_dir: Path) -> str | None:
    """`python -m diffkit.train recipe=<group>/<name>` with a few of the recipe's siblings and their README."""
    if not recipe or "/" not in recipe:
        return None
    group, name = recipe.rsplit("/", 1)
    others = sorted(p.stem for p in (recipes_dir / group).glob("*.yaml") if p.stem != name)
    if not others:
        return None
    names = ", ".join(others[:MAX_RECIPES]) + (", ..." if len(others) > MAX_RECIPES else "")
    readme = recipes_dir / group / "README.md"
    where = f" (recipes/{group}/README.md)" if readme.is_file() else ""
    return f"python -m diffkit.train recipe={group}/<name>   # <name>: {names}{where}"


def run_summary(
    metrics: Mapping[str, float],
    headlines: Sequence[Headline],
    *,
    out_dir: str | os.PathLike,
    seconds: float,  # wall time of the whole command
    checkpoint: str | os.PathLike | None = None,  # the final weights (final_checkpoint)
    recipe: str | None = None,  # "<group>/<name>": its sibling recipes are suggested
    recipes_dir: Path = RECIPES_DIR,
) -> str:
    """The summary, one string of lines (no trailing newline); files are named relative to the run folder."""
    out = Path(out_dir)
    files = [(p, "the final model's samples") for p in sorted((out / "samples" / "final").glob("*"))[:1]]
    files.append((out / "metrics.json", "every number"))
    files.append((out / LOG_FILE, "the log"))
    if checkpoint is not None:
        files.append((Path(checkpoint), "the final weights"))
    files = [(p.relative_to(out) if p.is_relative_to(out) else p, what) for p, what in files if p.is_file()]
    width = max((len(str(p)) for p, _ in files), default=0)
    lines = [f"Done in {format_seconds(seconds)}. Run folder: {_path(out)}"]
    lines += [f"  {str(p):<{width}}  {what}" for p, what in files]
    results = [line for h in headlines if (line := headline_line(metrics, h)) is not None]
    if results:
        lines.append("Results of the final model (EMA weights, test split):")
    else:
        results = [f"{label} {format_number(metrics[k])} (lower is better)" for label, k in LOSSES if k in metrics]
        lines.append("Results of the final model:" if results else "No results: nothing was evaluated.")
    lines += [f"  {line}" for line in results]
    commands = []
    if checkpoint is not None:
        commands.append(f"python -m diffkit.sample ckpt={_path(checkpoint)} n=64   # new samples from this model")
    if (others := _other_recipes(recipe, recipes_dir)) is not None:
        commands.append(others)
    if commands:
        lines.append("Next:")
        lines += [f"  {command}" for command in commands]
    return "\n".join(lines)
