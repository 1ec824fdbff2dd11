"""Progress of long batched work: a rich bar on a terminal and one INFO line per batch for log files."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

log = logging.getLogger(__name__)


def track_slices(slices: Sequence[slice], what: str) -> Iterator[slice]:
    """Yield `slices` (consecutive batches of one job) while showing items done, elapsed and remaining time."""
    total = slices[-1].stop if slices else 0
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    start = time.monotonic()
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(what, total=total)
        for sl in slices:
            yield sl
            bar.advance(task, sl.stop - sl.start)
            elapsed = time.monotonic() - start
            left = elapsed * (total - sl.stop) / max(sl.stop, 1)
            log.info("%s: %d/%d done in %.0f s, about %.0f s left", what, sl.stop, total, elapsed, left)
