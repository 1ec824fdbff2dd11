"""Interleaved throughput of two nets (training and no-grad forward), medians, ratio printed and saved as JSON.

Each repeat times every net back to back, alternating which goes first, so machine load hits them alike. Shared by
the throughput benchmarks (unet_throughput.py, trajectory_throughput.py, audio_throughput.py); cpu_name() by every
benchmark that records timings.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


def cpu_name() -> str:
    """The CPU's model name as lscpu prints it, with the cores this process sees (platform.processor() is empty on
    Linux); every benchmark records it beside its timings."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return platform.processor() or "unknown"


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def time_train(net: nn.Module, call, x: torch.Tensor, opt: torch.optim.Optimizer, steps: int) -> float:
    """Examples per second of forward + backward + optimizer step."""
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        call(net, x).square().mean().backward()
        opt.step()
    return steps * len(x) / (time.perf_counter() - start)


@torch.no_grad()
def time_sample(net: nn.Module, call, x: torch.Tensor, steps: int) -> float:
    """Examples per second of a no-grad forward pass (one sampler network evaluation)."""
    start = time.perf_counter()
    for _ in range(steps):
        call(net, x)
    return steps * len(x) / (time.perf_counter() - start)


def compare(
    nets: dict[str, tuple[nn.Module, Callable]],  # name -> (net, call(net, x) -> output); the first is ours
    x_train: torch.Tensor,
    x_sample: torch.Tensor,
    *,
    repeats: int,
    steps: int,
    unit: str = "samples/s",
) -> dict:
    """Median training and sampling throughput per net and the ratio first / second (> 1 = the first is faster)."""
    opts = {name: torch.optim.AdamW(net.parameters(), lr=1e-4) for name, (net, _) in nets.items()}
    for name, (net, call) in nets.items():  # warm-up
        time_train(net, call, x_train, opts[name], 1)
        time_sample(net, call, x_sample, 1)
    raw: dict[str, dict[str, list[float]]] = {name: {"train": [], "sample": []} for name in nets}
    for rep in range(repeats):
        for name in list(nets) if rep % 2 == 0 else list(reversed(nets)):
            net, call = nets[name]
            raw[name]["train"].append(time_train(net, call, x_train, opts[name], steps))
            raw[name]["sample"].append(time_sample(net, call, x_sample, steps))
    summary = {name: {kind: statistics.median(v) for kind, v in kinds.items()} for name, kinds in raw.items()}
    ours, theirs = list(nets)
    ratio = {kind: summary[ours][kind] / summary[theirs][kind] for kind in ("train", "sample")}
    print(f"{'':10s} {'train ' + unit:>18s} {'sample ' + unit:>18s}")
    for name, row in summary.items():
        print(f"{name:10s} {row['train']:18.2f} {row['sample']:18.2f}")
    print(f"{'ratio':10s} {ratio['train']:18.3f} {ratio['sample']:18.3f}   ({ours} / {theirs}, > 1 = faster)")
    params = {name: n_params(net) for name, (net, _) in nets.items()}
    return {"params": params, "median": summary, "ratio": ratio, "raw": raw}


def save(result: dict, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
