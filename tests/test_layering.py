"""The import rules of DESIGN.md §1: core and nets need only torch; inside core, siblings import only types/utils.

Checked twice: by importing every module in a subprocess where the heavy dependencies are blocked, and by an
`ast` walk over the source (which also sees imports on code paths a plain import does not execute).
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import diffkit

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "diffkit"
BLOCKED = ["lightning", "pytorch_lightning", "hydra", "omegaconf", "wandb", "torchmetrics", "transformers"]
LAZY = ["torchdiffeq", "torchsde", "scipy"]  # allowed in core only inside the function that needs them
CORE_SHARED = {"diffkit.core.types", "diffkit.core.utils"}


def _modules(package: str) -> list[str]:
    """`package` and every module below it, found with pkgutil.walk_packages (no import needed)."""
    path = PKG / package.split(".", 1)[1].replace(".", "/")
    if not path.is_dir():
        return []
    return [package] + [m.name for m in pkgutil.walk_packages([str(path)], prefix=f"{package}.")]


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Absolute module names imported by a file (relative imports resolved); optionally only outside functions."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    nodes = ast.walk(tree)
    if top_level_only:
        functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
        skip = {id(n) for f in functions for n in ast.walk(f)}
        nodes = (n for n in ast.walk(tree) if id(n) not in skip)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
    return names


def _is_stdlib_or_torch(name: str) -> bool:
    top = name.split(".")[0]
    return top in {"torch", "__future__"} or top in sys.stdlib_module_names


def test_core_and_nets_import_with_heavy_dependencies_blocked() -> None:
    modules = ["diffkit", *_modules("diffkit.core"), *_modules("diffkit.nets")]
    code = "import sys\n" + "".join(f"sys.modules[{n!r}] = None\n" for n in BLOCKED + LAZY)
    code += "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += f"assert not [m for m in {BLOCKED + LAZY!r} if sys.modules.get(m) is not None]\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert {"diffkit.core.samplers.gaussian", "diffkit.core.precond", "diffkit.core.guidance"} <= set(modules)


def test_diffkit_re_exports_only_the_core() -> None:
    assert {"sample_heun", "karras_sigmas", "EDMPrecond", "DenoisingLoss", "cfg"} <= set(diffkit.__all__)
    assert _imports(PKG / "__init__.py", top_level_only=True) <= {"diffkit.core"}
    # diffkit.load is the one lazy exception: imported inside __getattr__, on first use only.
    assert _imports(PKG / "__init__.py") <= {"diffkit.core", "diffkit.config"}


def test_core_files_import_only_torch_stdlib_and_core_types_utils() -> None:
    files = sorted((PKG / "core").rglob("*.py"))
    assert len(files) >= 10
    for path in files:
        where = path.relative_to(ROOT)
        if path.name == "__init__.py":  # the re-exporting package files may import any core module
            assert all(n.startswith("diffkit.core") for n in _imports(path)), where
            continue
        for name in _imports(path, top_level_only=True):
            assert _is_stdlib_or_torch(name) or name in CORE_SHARED, f"{where} imports {name}"
        for name in _imports(path):  # inside functions: also the lazy optional dependencies
            top = name.split(".")[0]
            assert _is_stdlib_or_torch(name) or name in CORE_SHARED or top in LAZY, f"{where} imports {name}"


def test_nets_import_only_torch_einops_stdlib_and_nets() -> None:
    for path in sorted((PKG / "nets").rglob("*.py")):
        for name in _imports(path):
            ok = _is_stdlib_or_torch(name) or name.split(".")[0] == "einops" or name.startswith("diffkit.nets")
            assert ok, f"{path.relative_to(ROOT)} imports {name}"


def test_training_never_imports_hydra_and_modalities_never_import_training() -> None:
    for path in (PKG / "training").rglob("*.py"):
        assert not {n.split(".")[0] for n in _imports(path)} & {"hydra", "omegaconf"}, path
    for path in (PKG / "modalities").rglob("*.py"):
        names = _imports(path)
        assert not any(n.startswith(("diffkit.training", "diffkit.config")) for n in names), path
        if path.name not in ("data.py", "metrics.py"):
            assert not {n.split(".")[0] for n in names} & {"lightning", "torchmetrics"}, path
