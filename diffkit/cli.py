"""Entry-point plumbing: a user's bad input ends the program in one line naming the key, not in a traceback.

    with one_line_errors("diffkit-sample", CheckpointError):   # `python -m diffkit.sample` without ckpt=:
        run(cfg)                                              # "diffkit-sample: ckpt is required: ..."

References:
    lightning-hydra-template src/utils (task wrapper around the entry script).
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue


class ConfigValueError(ValueError):
    """A command-line value of the wrong type, e.g. trainer.max_steps=abc."""


@contextmanager
def one_line_errors(prog: str, *errors: type[BaseException]) -> Iterator[None]:
    """Turn missing values (`???`), unresolvable references and the given error types into `prog: message` exits."""
    try:
        yield
    except MissingMandatoryValue as err:
        key = err.full_key or err.key
        sys.exit(f"{prog}: {key} is required but has no value (??? in the config); give it as {key}=VALUE")
    except InterpolationResolutionError as err:  # e.g. ${modality.seq_len} with an image modality
        key, reason = err.full_key or "the config", str(err.msg or err).splitlines()[0]
        sys.exit(f"{prog}: {key} does not resolve: {reason} (check the config groups chosen together)")
    except (ConfigValueError, *errors) as err:
        sys.exit(f"{prog}: {type(err).__name__}: {err}")


def _simple_types(hint: Any) -> tuple[type, ...] | None:
    """The types a hint allows when it is built only of int, float, bool and None; None for any other hint."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if not args or not all(a in (int, float, bool, type(None)) for a in args):
        return None
    return (*args, int) if float in args else args  # an int is a valid float


def check_trainer_args(trainer: Mapping[str, Any]) -> None:
    """ConfigValueError naming the key, value and expected type for numeric Trainer arguments (max_steps=abc),
    checked against lightning.Trainer's own type hints before Lightning compares a str with an int."""
    import lightning as L

    hints = typing.get_type_hints(L.Trainer.__init__)
    for key, value in trainer.items():
        allowed = _simple_types(hints.get(key))
        if allowed is not None and not isinstance(value, allowed):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in dict.fromkeys(allowed))
            raise ConfigValueError(f"trainer.{key}={value!r} ({type(value).__name__}); expected {names}")
