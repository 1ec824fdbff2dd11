"""trainer.precision=bf16-if-native: bf16 autocast only where bfloat16 is native (CUDA bf16, AVX512-BF16, AMX)."""

from __future__ import annotations

import pytest
import torch

from diffkit.training import precision
from diffkit.training.precision import resolve_precision


@pytest.mark.parametrize("value", ["32-true", "bf16-mixed", "16-mixed", 32, 64])
def test_other_values_pass_through(value) -> None:
    assert resolve_precision(value, "cpu") == value


@pytest.mark.parametrize(
    "avx512_bf16, amx, expected", [(True, False, "bf16-mixed"), (False, True, "bf16-mixed"), (False, False, "32-true")]
)
def test_cpu_gets_bf16_only_with_native_support(monkeypatch, avx512_bf16: bool, amx: bool, expected: str) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert resolve_precision("bf16-if-native", "cpu") == expected


def test_cpu_without_torchs_feature_probes_falls_back_to_float32(monkeypatch) -> None:
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert not precision.cpu_has_native_bf16()
    assert resolve_precision("bf16-if-native", "cpu") == "32-true"


@pytest.mark.parametrize("bf16, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_gpu_follows_cuda_bf16_support(monkeypatch, bf16: bool, expected: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: not bf16)  # the CPU must not decide for the GPU
    assert resolve_precision("bf16-if-native", "gpu") == expected
    assert resolve_precision("bf16-if-native", "auto") == expected


def test_other_accelerators_stay_in_float32(monkeypatch) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("bf16-if-native", "mps") == "32-true"
