"""`trainer.precision: bf16-if-native`: bfloat16 autocast where the hardware computes bfloat16 natively, else float32.

bf16 autocast pays off only on hardware with bfloat16 arithmetic: CUDA GPUs that support it, and x86 CPUs with
AVX512-BF16 or AMX (measured: a 1.7M-parameter UNet trains about 1.25x faster under bf16-mixed on such a CPU). On
other CPUs oneDNN emulates bfloat16 and a run gets slower, so recipes ask for it conditionally.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

IF_NATIVE = "bf16-if-native"


def cpu_has_native_bf16() -> bool:
    """True when the CPU has AVX512-BF16 or AMX tiles (torch's own CPU feature probes; False if they are absent)."""
    probes: list[Callable[[], bool]] = [
        getattr(torch.cpu, name, lambda: False) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return any(probe() for probe in probes)


def _accelerator(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if requested == "gpu" else requested


def resolve_precision(precision: str | int, accelerator: str = "auto") -> str | int:
    """Lightning's precision for `precision`; only the value `bf16-if-native` is decided here, others pass through."""
    if precision != IF_NATIVE:
        return precision
    device = _accelerator(str(accelerator))
    if device == "cuda":
        native = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    else:
        native = device == "cpu" and cpu_has_native_bf16()
    chosen = "bf16-mixed" if native else "32-true"
    log.info("trainer.precision=%s on %s: %s", IF_NATIVE, device, chosen)
    return chosen
