"""diffkit: one diffusion core, many modalities. Importing diffkit loads only the torch-only core.

`diffkit.load(path)` (a checkpoint file or an exported folder) is imported lazily, on first use, so that
`import diffkit` pulls in neither Lightning nor Hydra.
"""

from diffkit.core import *  # noqa: F403
from diffkit.core import __all__ as _core_all

__version__ = "0.1.0"
__all__ = list(_core_all)


def __getattr__(name: str):
    if name == "load":
        from diffkit.config import load_any

        return load_any
    raise AttributeError(f"module 'diffkit' has no attribute {name!r}")
