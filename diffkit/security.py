"""Stored configs are data: every `_target_` in a checkpoint's or exported folder's config is checked before anything
is built from it, so that loading a file can only construct diffkit's building blocks.

    check_targets(stored, "last.ckpt")                  # CheckpointError naming the key path and the target
    check_targets(stored, "last.ckpt", trust=["mypkg."])  # the user vouches for their own package

A target passes when it names, inside an allowed namespace, a class or function whose home (`__module__` +
`__qualname__`) is in that namespace too. Names are resolved by importing and walking modules only, and a module
reached under another name ends the walk, so `diffkit.config.os.system` is refused without importing anything.

References:
    torch.load(weights_only=True) and safetensors (load as data, never code); Hydra `_target_`/`_args_`/`_partial_`.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

CLASS, FUNCTION, EVALUATOR = "class", "function", "evaluator"  # evaluators prepare data when built
ANY = (CLASS, FUNCTION, EVALUATOR)

# (namespace, kinds) a stored config may build anywhere: models, processes, losses, samplers, data, optimizers.
ANYWHERE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("diffkit.core", (CLASS, FUNCTION)),  # torch-only math (tests/test_layering.py): no file system access
    ("diffkit.nets", (CLASS, FUNCTION)),
    ("diffkit.modalities", (CLASS,)),  # adapters, data modules, masks; their functions prepare and save data
    ("diffkit.training", (CLASS,)),  # modules, EMA, callbacks; its functions write files (showcase, loggers)
    ("diffkit.training.lr.warmup_cosine", (FUNCTION,)),
    ("torch.optim", (CLASS,)),  # optimizers and lr_scheduler classes
)
# Sections diffkit builds from a recipe only, never from a stored config: Lightning's trainer, its callbacks, loggers.
TRAINING_ONLY = (
    ("lightning.pytorch.trainer", (CLASS,)),
    ("lightning.pytorch.strategies", (CLASS,)),
    ("lightning.pytorch.callbacks", (CLASS,)),
    ("lightning.pytorch.loggers", (CLASS,)),
    ("diffkit.training.callbacks.batch_size", (FUNCTION,)),
    ("diffkit.training.loggers.wandb_logger", (FUNCTION,)),  # creates save_dir and its wandb_id.txt
    ("diffkit.modalities", (EVALUATOR,)),
)
SECTIONS = {
    "evaluator": (("diffkit.modalities", (EVALUATOR,)),),  # built by `diffkit-sample evaluate=true` and the sweep
    "trainer": TRAINING_ONLY,
    "callbacks": TRAINING_ONLY,
    "logger": TRAINING_ONLY,
}
REFERENCE = re.compile(r"\$\{\.*[A-Za-z_][\w\-]*(?:\.[\w\-]+|\[\d+\])*\}")  # ${a.b}, ${..a}, ${a[0]}


class CheckpointError(ValueError):
    """A checkpoint path that is missing, damaged, untrusted or not a diffkit checkpoint."""


def _within(name: str, namespace: str) -> bool:
    return name == namespace or name.startswith(namespace + ".")


def _resolve(target: str) -> Any:
    """The object a dotted name denotes, found by importing and walking modules only; None if there is none."""
    parts = target.split(".")
    if not all(p.isidentifier() and not p.startswith("_") for p in parts):
        return None  # private names and dunders (`__globals__`, `__builtins__`) are never building blocks
    obj: Any = None
    for i, part in enumerate(parts):
        if obj is not None and not (inspect.ismodule(obj) and obj.__name__ == ".".join(parts[:i])):
            return None  # a class attribute (Class.method) or a module re-exported under another name
        child = getattr(obj, part, None) if obj is not None else None
        if child is None:
            try:
                child = importlib.import_module(".".join(parts[: i + 1]))
            except ImportError:
                return None
        obj = child
    return obj


def _kind(obj: Any) -> str | None:
    if inspect.isclass(obj):
        return EVALUATOR if obj.__name__.endswith("Evaluator") else CLASS
    return FUNCTION if inspect.isfunction(obj) else None


def _home(obj: Any) -> str | None:
    """`module.name` where obj is defined, if it is a top-level class or function of a loaded module."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or name != getattr(obj, "__name__", None):
        return None  # nested functions, lambdas, methods
    return f"{module}.{name}" if getattr(sys.modules.get(module), name, None) is obj else None


def _rules(section: str, trust: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (*ANYWHERE, *SECTIONS.get(section, ()), *((ns.rstrip("."), ANY) for ns in trust if ns.rstrip(".")))


def permitted(target: str, section: str = "", trust: Sequence[str] = ()) -> bool:
    """Whether a stored config may build `target` in top-level `section`; `trust` adds the user's namespaces."""
    for namespace, kinds in _rules(section, trust):
        if not _within(target, namespace):
            continue  # nothing outside an allowed namespace is ever imported
        obj = _resolve(target)
        home = _home(obj)
        if home is not None and _within(home, namespace) and _kind(obj) in kinds:
            return True
    return False


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(key path, value) for every node of a plain container, depth first: `module.net._args_[0]`."""
    yield path, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list | tuple) else ()
    for key, value in items:
        child = f"{path}[{key}]" if isinstance(node, list | tuple) else f"{path}.{key}" if path else str(key)
        yield from _walk(value, child)


def targets(config: Any) -> set[str]:
    """Every `_target_` string a plain config names."""
    return {n["_target_"] for _, n in _walk(config) if isinstance(n, dict) and isinstance(n.get("_target_"), str)}


def refuse_interpolations(config: Any, source: object, *, references: bool = True) -> None:
    """CheckpointError if a string calls a resolver (`${oc.env:..}`, `${unique_dir:..}`) or, with references=False
    (a config already resolved), holds any `${`; plain references such as `${modality.vocab_size}` may stay."""
    for path, node in _walk(config):
        if isinstance(node, str) and "${" in (REFERENCE.sub("", node) if references else node):
            what = "calls a resolver" if references else "still holds an interpolation after resolving"
            raise CheckpointError(f"{source}: {path or 'the config'} = {node!r} {what}; stored configs are data")


def check_targets(config: Any, source: object, trust: Sequence[str] = ()) -> None:
    """CheckpointError naming the file, key path and target of the first `_target_` a stored config may not build."""
    for path, node in _walk(config):
        if not isinstance(node, dict) or "_target_" not in node:
            continue
        target, section = node["_target_"], re.split(r"[.\[]", path, maxsplit=1)[0]
        if isinstance(target, str) and permitted(target, section, trust):
            continue
        package, where = str(target).split(".")[0], f"{path}._target_" if path else "_target_"
        allowed_namespace = isinstance(target, str) and any(_within(target, ns) for ns, _ in _rules(section, trust))
        if allowed_namespace and _resolve(target) is None:
            reason = "is no public class or function defined at that name here (another diffkit version?)"
        else:
            reason = "is not a diffkit building block a stored config may build (README 'Security')"
        if package != "diffkit":
            reason += f"; if you trust this file and that code, allow it with trust=['{package}.']"
        raise CheckpointError(f"{source}: {where} = {target!r} {reason}")
