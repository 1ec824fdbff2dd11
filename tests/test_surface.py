"""The extension surface: training/ and the entry points know no modality (names, keys, `kind` branches), the
conf tree ships inside the package, and per-data constants come from the modality by interpolation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch
from helpers import ROOT

from diffkit.modalities.conditioning import KnownInputs
from diffkit.modalities.image.adapter import ImageModality
from diffkit.modalities.text.adapter import TextModality

PKG = ROOT / "diffkit"
GENERIC = sorted([*(PKG / "training").glob("*.py"), *(PKG / n for n in ("train.py", "sample.py", "sweep.py",
                  "export.py", "config.py"))])  # fmt: skip
MODALITY_WORDS = re.compile(
    r"\b(images?|texts?|audio|waveforms?|trajector(y|ies)|digits|fashion|mnist|shakespeare|pixels?|mels?|prompts?"
    r"|infill(ing)?|grey[_ ]levels|num_classes|mask_id|vocab(ulary|_size)?)\b",
    re.IGNORECASE,
)


def _prose_and_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment, docstring and string literal in a file."""
    source = path.read_text()
    found = [(i + 1, line.split("#", 1)[1]) for i, line in enumerate(source.splitlines()) if "#" in line]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
    return found


def _declared_keys() -> set[str]:
    """Condition entries and request arguments of the in-tree modalities and conditioning components."""
    specs = [*ImageModality(num_classes=10).cond_specs(), *KnownInputs(lambda x, g: x).cond_specs((1, 8, 8))]
    keys = {spec.name for spec in specs}
    for modality in (ImageModality, TextModality):
        keys |= set(modality.request.__code__.co_varnames[2 : modality.request.__code__.co_argcount])
    return keys


@pytest.mark.parametrize("path", GENERIC, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_generic_code_names_no_modality(path: Path) -> None:
    hits = [f"{path.name}:{line}: {m.group(0)!r}" for line, text in _prose_and_strings(path)
            for m in MODALITY_WORDS.finditer(text)]  # fmt: skip
    assert not hits, hits


@pytest.mark.parametrize("path", GENERIC, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_generic_code_uses_no_modality_key_and_no_kind_branch(path: Path) -> None:
    keys = _declared_keys()
    assert {"label", "known", "mask", "prefix", "suffix"} <= keys
    tree = ast.parse(path.read_text())
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not literals & keys, sorted(literals & keys)
    kinds = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "kind"]
    assert not kinds and "kind ==" not in path.read_text(), kinds


def test_the_conf_tree_ships_inside_the_package() -> None:
    """diffkit/conf is the conf tree (package data, `pkg://diffkit.conf`); conf/ and recipes/ stay where they are."""
    conf = PKG / "conf"
    assert conf.resolve() == (ROOT / "conf").resolve() and (conf / "train.yaml").is_file()
    assert (conf / "recipe" / "image" / "digits.yaml").is_file()  # recipes reach the package through conf/recipe
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"diffkit.conf" = ["**/*.yaml"]' in pyproject


def test_sigma_data_comes_from_the_modality(tmp_path: Path) -> None:
    from helpers import compose_train

    from diffkit.config import build_module

    cfg = compose_train(["recipe=smoke/image", "modality.sigma_data=0.7"], tmp_path)
    module = build_module(cfg)
    assert module.denoiser.sigma_data == 0.7 == cfg.loss.weighting.sigma_data
    assert all("sigma_data: 0.5" not in p.read_text() for p in (ROOT / "conf").rglob("*.yaml")
               if p.parent.name != "modality")  # fmt: skip
    assert torch.is_tensor(module.sample(1, steps=1))
