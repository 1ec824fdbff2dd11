"""Few-step samplers on a real trained network: the distance to the exact PF-ODE solution falls with NFE.

The GMM suite (test_samplers.py) uses an exact, smooth denoiser; a trained net is neither, and a third-order
multistep method that is fine there can diverge here (UniPC order 3 at 6-12 steps, as diffusers' solver_order=3
does; benchmarks/README.md). The fixture is a tiny digits UNet trained by tests/fixtures/make_digits_tiny.py.
Every deterministic sampler option of conf/sampler/ runs from the same noise on the default Karras grid.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from diffkit.core.samplers import count_nfe, sample_heun
from diffkit.core.schedules import karras_sigmas

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
BUDGETS = (5, 6, 8, 10, 12, 20, 50)
STOCHASTIC = {"euler_ancestral", "ddpm", "repaint", "heun_churn", "masked_ancestral", "masked_cached", "tau_leaping"}
UNSTABLE = {  # third-order multistep on the Karras grid: not monotone below ~12 NFE on trained nets (conf comments)
    "unipc_3": "third-order UniPC on the Karras grid diverges at 6-12 steps on trained nets",
    "dpmpp_3m": "third-order DPM-Solver++(3M) on the Karras grid rises from NFE 5 to 6 on trained nets",
}
OPTIONS = sorted(p.stem for p in (ROOT / "conf" / "sampler").glob("*.yaml") if p.stem not in STOCHASTIC)


def grid(steps: int) -> torch.Tensor:
    return karras_sigmas(steps, sigma_min=0.002, sigma_max=80.0)


@pytest.fixture(scope="module")
def problem() -> tuple:
    """(tiny trained denoiser, initial noise at σ_max, 128-step Heun reference solution)."""
    from safetensors.torch import load_file

    spec = importlib.util.spec_from_file_location("make_digits_tiny", FIXTURES / "make_digits_tiny.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    denoiser = maker.tiny_denoiser().eval()
    denoiser.load_state_dict(load_file(str(FIXTURES / "digits_tiny.safetensors")))
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 80.0
    with torch.no_grad():
        reference = sample_heun(denoiser, x, grid(128))
    return denoiser, x, reference


def distances(sampler, problem: tuple) -> dict[int, float]:
    """RMSE to the reference for the largest grid whose NFE fits each budget."""
    denoiser, x, reference = problem
    out = {}
    for budget in BUDGETS:
        steps = max(s for s in range(1, budget + 1) if count_nfe(sampler, grid(s)) <= budget)
        with torch.no_grad():
            result = sampler(denoiser, x.clone(), grid(steps), generator=torch.Generator().manual_seed(0))
        out[budget] = float((result - reference).pow(2).mean().sqrt())
    return out


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=UNSTABLE[n], strict=True)) if n in UNSTABLE else n
        for n in OPTIONS
    ],  # fmt: skip
)
def test_distance_to_the_ode_solution_falls_with_nfe(name: str, problem: tuple) -> None:
    sampler = instantiate(OmegaConf.load(ROOT / "conf" / "sampler" / f"{name}.yaml"))
    d = distances(sampler, problem)
    rises = [(a, b) for a, b in zip(BUDGETS, BUDGETS[1:]) if d[b] > d[a] * 1.02]
    assert not rises, f"{name}: distance rises from NFE {rises}: {d}"
    assert d[20] < 0.12 and d[50] < 0.05, f"{name}: not converged at NFE 20 / 50: {d}"
