"""Silence what a dependency prints that a diffkit user cannot act on; each filter matches one message only.

    quiet_dependencies()   # diffkit.train / diffkit.sample call it first thing in main()

Lightning 2.6 advertises its cloud services at every fit ("💡 Tip: ... litlogger", "... litmodels") through its
rank-zero logger, with no setting to turn that off; on torch 2.11 its `_pytree` helper builds `LeafSpec()`, which
torch has deprecated (a FutureWarning about `isinstance(treespec, LeafSpec)` at the first batch).
"""

from __future__ import annotations

import logging
import warnings

TIP_PREFIX = "💡 Tip:"  # Lightning's adverts start with this
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
LEAFSPEC_MESSAGE = r"`isinstance\(treespec, LeafSpec\)` is deprecated"  # torch.utils._pytree.LeafSpec


class DropTips(logging.Filter):
    """Drop log records whose message starts with Lightning's "💡 Tip:"."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


def quiet_dependencies() -> None:
    """Install the two filters (idempotent): Lightning's tips and torch's LeafSpec deprecation raised in Lightning."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropTips) for f in logger.filters):
            logger.addFilter(DropTips())
    warnings.filterwarnings("ignore", message=LEAFSPEC_MESSAGE, category=FutureWarning)
