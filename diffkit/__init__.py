"""diffkit: one diffusion core, many modalities. Importing diffkit loads only the torch-only core."""

from diffkit.core import *  # noqa: F403
from diffkit.core import __all__ as _core_all

__version__ = "0.1.0"
__all__ = list(_core_all)
