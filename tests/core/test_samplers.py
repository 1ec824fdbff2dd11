"""One contract suite for every Gaussian sampler (the SchedulerCommonTest idea, without a class hierarchy).

On Gaussian data the optimal denoiser is known in closed form (tests/core/gmm.py), so each sampler is checked
against exact answers: data statistics, the exact probability-flow map, convergence to mixtures, and the
bookkeeping contract (shapes, dtypes, seeds, NFE, callback, grid validation).
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from gmm import DiagGaussian, gaussian_denoiser, grid_mixture, sliced_w1, two_mode_mixture, w1_to_cdf

from diffkit.core.samplers.gaussian import (
    count_nfe,
    nfe_per_grid,
    repaint_path,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
)
from diffkit.core.samplers.multistep import sample_dpmpp_2s, sample_dpmpp_3m, sample_lms, sample_unipc
from diffkit.core.samplers.optimize import interpolated_sigmas, optimize_sigmas
from diffkit.core.schedules import exponential_sigmas, karras_sigmas

SAMPLERS = {
    "euler": sample_euler,
    "euler_ancestral": sample_euler_ancestral,
    "heun": sample_heun,
    "heun_churn": partial(sample_heun, s_churn=5.0),
    "ddim_eta0": partial(sample_ddim, eta=0.0),
    "ddim_eta1": partial(sample_ddim, eta=1.0),
    "ddpm_small": partial(sample_ddpm, variance="small"),
    "ddpm_large": partial(sample_ddpm, variance="large"),
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_3m": sample_dpmpp_3m,
    "dpmpp_2s": sample_dpmpp_2s,
    "unipc": sample_unipc,
    "unipc_3": partial(sample_unipc, order=3),
    "lms": sample_lms,
}
STOCHASTIC = {"euler_ancestral", "heun_churn", "ddim_eta1", "ddpm_small", "ddpm_large"}
# Convergence order of the deterministic (ODE) samplers on the exact flow map. UniPC's corrector and variable-step
# LMS on a Karras grid converge at least this fast (observed ratios 10-16), so only a lower bound is checked.
ORDER = {"euler": 1, "ddim_eta0": 1, "heun": 2, "dpmpp_2m": 2, "dpmpp_2s": 2, "dpmpp_3m": 3, "unipc": 3}
AT_LEAST = {"unipc_3": 3, "lms": 3}
SIGMA_MAX = 80.0


def _fn_name(name: str) -> str:
    sampler = SAMPLERS[name]
    return (sampler.func if isinstance(sampler, partial) else sampler).__name__


def run(name, denoiser, x, steps: int, *, seed: int = 0, sigma_min: float = 0.002, **kw) -> torch.Tensor:
    """Run sampler `name` from x on a Karras grid (cast to x's dtype) with a seeded generator."""
    sigmas = karras_sigmas(steps, sigma_min, SIGMA_MAX).to(x.dtype)
    return SAMPLERS[name](denoiser, x, sigmas, generator=torch.Generator().manual_seed(seed), **kw)


def prior(shape, *, seed: int = 1, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * SIGMA_MAX


# ----------------------------------------------------------------------------------------------------------
# Exact answers on Gaussian data.


@pytest.mark.parametrize("name", SAMPLERS)
def test_gaussian_data_mean_and_variance(name: str) -> None:
    """Started from the exact marginal N(μ, s² + σ_max²), 500 steps reproduce N(μ, diag(s²)) (40k samples)."""
    mu = torch.tensor([1.0, -2.0], dtype=torch.float64)
    s = torch.tensor([0.5, 2.0], dtype=torch.float64)
    n = 40_000
    z = torch.randn(n, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = mu + (s**2 + SIGMA_MAX**2).sqrt() * z
    out = run(name, DiagGaussian(mu, s), x, 500)
    assert bool(((out.mean(0) - mu).abs() < 4.5 * s / math.sqrt(n) + 0.01 * s).all()), out.mean(0)
    assert bool(((out.var(0) / s**2 - 1).abs() < 0.05).all()), out.var(0) / s**2


@pytest.mark.parametrize("name", [*ORDER, *AT_LEAST])
def test_ode_samplers_follow_the_exact_flow_map_at_their_order(name: str) -> None:
    """For N(μ, s²) data the probability-flow ODE maps x(σ_max) to μ + s / sqrt(s² + σ_max²)·(x - μ) exactly.

    Doubling the steps must shrink the error by 2^order (Euler 1st order, Heun and DPM++(2M) 2nd order,
    DPM++(3M) 3rd order, UniPC-2 with its corrector 3rd order).
    """
    mu = torch.tensor([1.0, -2.0], dtype=torch.float64)
    s = torch.tensor([0.5, 2.0], dtype=torch.float64)
    x = prior((64, 2))
    exact = mu + s / (s**2 + SIGMA_MAX**2).sqrt() * (x - mu)
    errs = [float(((run(name, DiagGaussian(mu, s), x, n) - exact).abs() / s).max()) for n in (32, 64, 128)]
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    order = ORDER.get(name) or AT_LEAST[name]
    expected, upper = 2**order, (1.3 * 2**order if name in ORDER else 2.1 * 2**order)
    assert all(0.85 * expected < r < upper for r in ratios), (errs, ratios)
    assert errs[-1] < (0.08 if order == 1 else 0.004), errs


def test_ddim_eta0_is_euler_and_ddpm_small_is_euler_ancestral() -> None:
    """σ-frame identities: DDIM(η=0) = Euler bit for bit; DDPM β̃ posterior = DDIM(η=1) = ancestral Euler."""
    denoiser = grid_mixture()
    x = prior((256, 2))
    assert torch.equal(run("ddim_eta0", denoiser, x, 12), run("euler", denoiser, x, 12))
    ancestral = run("euler_ancestral", denoiser, x, 12, seed=5)
    assert torch.equal(run("ddim_eta1", denoiser, x, 12, seed=5), ancestral)
    torch.testing.assert_close(run("ddpm_small", denoiser, x, 12, seed=5), ancestral, rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------------------------------------
# Convergence to Gaussian mixtures with the exact denoiser.

STEPS = (5, 50, 200)


def mixture_distances(name: str) -> dict[str, dict[int, float]]:
    """Distances to the truth at 5/50/200 Karras steps: 1-D W1 to the exact CDF, 2-D sliced W1, mode weights."""
    m1, m2 = two_mode_mixture(), grid_mixture()
    n1, n2 = 20_000, 4_000
    truth2 = m2.sample(n2, torch.Generator().manual_seed(1))
    out: dict[str, dict[int, float]] = {"w1_1d": {}, "weight_1d": {}, "sw1_2d": {}, "weights_2d": {}}
    for steps in STEPS:
        x1 = run(name, m1, prior((n1, 1), seed=2), steps)
        x2 = run(name, m2, prior((n2, 2), seed=3), steps)
        out["w1_1d"][steps] = w1_to_cdf(x1, m1.cdf_1d)
        out["weight_1d"][steps] = float((x1 < -0.25).double().mean())  # mass of the 0.3·N(-1.5, 0.3²) mode
        out["sw1_2d"][steps] = sliced_w1(x2, truth2)
        weights = torch.bincount(m2.assign(x2), minlength=9).double() / n2
        out["weights_2d"][steps] = float((weights - 1 / 9).abs().max())
    return out


@pytest.mark.parametrize("name", SAMPLERS)
def test_converges_to_gaussian_mixtures(name: str) -> None:
    """Distances shrink from 5 to 50 to 200 steps and sit at the Monte-Carlo floor at 200.

    Floors: 1-D W1 of 20k exact samples ≈ 0.015; 2-D sliced W1 of two 4k exact sample sets ≈ 0.05.
    """
    d = mixture_distances(name)
    w1, sw1 = d["w1_1d"], d["sw1_2d"]
    assert w1[5] > 3 * w1[200] and sw1[5] > 3 * sw1[200], d
    assert w1[50] < w1[5] and sw1[50] < sw1[5], d
    assert w1[200] < w1[50] + 0.005 and sw1[200] < sw1[50] + 0.01, d  # equal within noise for 2nd order
    assert w1[200] < 0.04 and sw1[200] < 0.07, d
    true_weight_1d = 0.3 + 0.7 * 0.5 * math.erfc(1.25 / 0.5 / math.sqrt(2))  # P(x0 < -0.25)
    assert abs(d["weight_1d"][200] - true_weight_1d) < 0.015, d  # 4.5 standard errors
    assert d["weights_2d"][200] < 0.03, d  # each of the 9 modes gets 1/9 of the samples


# ----------------------------------------------------------------------------------------------------------
# Bookkeeping contract.


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("shape", [(6, 3), (4, 2, 5), (2, 1, 4, 4), (2, 2, 3, 2, 2)], ids=lambda s: f"rank{len(s)}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_shape_and_dtype_preserved_for_any_rank(name: str, shape, dtype) -> None:
    """Output keeps shape and dtype, and equals the same run on the flattened [B, N] tensor (rank-agnostic)."""
    denoiser = gaussian_denoiser(0.5, 1.5)
    x = prior(shape, dtype=dtype)
    out = run(name, denoiser, x, 6)
    assert out.shape == shape and out.dtype == dtype
    assert bool(out.isfinite().all())
    flat = run(name, denoiser, x.reshape(shape[0], -1), 6)
    torch.testing.assert_close(out.reshape(shape[0], -1), flat, rtol=0, atol=0)


@pytest.mark.parametrize("name", SAMPLERS)
def test_determinism_given_a_generator(name: str) -> None:
    """Same seed gives the same output; another seed changes only the stochastic samplers."""
    denoiser, x = grid_mixture(), prior((64, 2))
    assert torch.equal(run(name, denoiser, x, 8, seed=1), run(name, denoiser, x, 8, seed=1))
    differs = not torch.equal(run(name, denoiser, x, 8, seed=1), run(name, denoiser, x, 8, seed=2))
    assert differs == (name in STOCHASTIC)
    assert torch.equal(x, prior((64, 2)))  # the input is not modified in place


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("steps", [1, 2, 7])
def test_nfe_and_callback_contract(name: str, steps: int) -> None:
    """NFE equals nfe_per_grid; callback fires once per step with x, i, sigma, denoised = D(x, sigma_hat)."""
    base = gaussian_denoiser(0.3, 0.8)
    calls: list[float] = []
    infos: list[dict] = []

    def counting(x, sigma, cond=None):
        assert sigma.shape == (x.shape[0],) and cond == {"c": 1}
        calls.append(float(sigma[0]))
        return base(x, sigma)

    sigmas = karras_sigmas(steps, 0.002, SIGMA_MAX).double()
    generator = torch.Generator().manual_seed(0)
    SAMPLERS[name](counting, prior((8, 2)), sigmas, cond={"c": 1}, generator=generator, callback=infos.append)
    assert len(calls) == nfe_per_grid(_fn_name(name), sigmas) == count_nfe(SAMPLERS[name], sigmas)
    assert len(infos) == steps and [info["i"] for info in infos] == list(range(steps))
    for i, info in enumerate(infos):
        assert {"x", "i", "sigma", "denoised"} <= set(info)
        assert float(info["sigma"]) == float(sigmas[i])
        sigma_hat = info.get("sigma_hat", info["sigma"])
        expected = base(info["x"], torch.as_tensor(sigma_hat).expand(8))
        torch.testing.assert_close(info["denoised"], expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", SAMPLERS)
def test_finite_and_on_the_modes_with_a_tiny_sigma_min(name: str) -> None:
    """σ_min = 1e-5 in float32: no NaN/Inf, and the samples sit on the grid-mixture modes (std 0.15).

    For exact samples the distance to the nearest mode has median 0.177 and exceeds 0.6 (4 std) with
    probability e^-8; 40 steps leave a few first-order stragglers, hence the 5% allowance.
    """
    gmm = grid_mixture()
    out = run(name, gmm, prior((512, 2), dtype=torch.float32), 40, sigma_min=1e-5)
    assert bool(out.isfinite().all())
    dist = torch.cdist(out.double(), gmm.means).min(dim=1).values
    assert float(dist.median()) < 0.25 and float((dist > 0.6).double().mean()) < 0.05, dist


@pytest.mark.parametrize("name", SAMPLERS)
def test_invalid_grids_and_inputs_are_rejected(name: str) -> None:
    sampler, denoiser, x = SAMPLERS[name], gaussian_denoiser(0.0, 1.0), torch.zeros(2, 3)
    bad_grids = {
        "increasing": torch.tensor([1.0, 2.0, 0.0]),
        "no final zero": torch.tensor([2.0, 1.0]),
        "single value": torch.tensor([0.0]),
        "2-d": torch.tensor([[2.0, 1.0, 0.0]]),
    }
    for grid in bad_grids.values():
        with pytest.raises(ValueError):
            sampler(denoiser, x, grid)
    with pytest.raises(ValueError):
        sampler(denoiser, torch.zeros(3), torch.tensor([2.0, 1.0, 0.0]))  # unbatched x


# ----------------------------------------------------------------------------------------------------------
# Grids: step optimisation for a given denoiser, tabulated grids.


def test_optimized_grid_beats_its_start_on_held_out_noise() -> None:
    """optimize_sigmas fitted on one noise batch lowers the 6-step DPM++(2M) error to the exact ODE on another.

    The reference is a 511-NFE Heun solution; the held-out error must drop by at least 20% (observed: 30%).
    """
    gmm = grid_mixture()
    fit, held_out = prior((256, 2), seed=11), prior((512, 2), seed=12)
    init = karras_sigmas(6, 0.002, SIGMA_MAX).double()
    sigmas = optimize_sigmas(gmm, fit, 6, sampler=sample_dpmpp_2m, sigma_max=SIGMA_MAX, init=init, sweeps=3)
    assert sigmas.shape == (7,) and float(sigmas[0]) == pytest.approx(SIGMA_MAX) and float(sigmas[-1]) == 0.0
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    ref = sample_heun(gmm, held_out, karras_sigmas(256, 0.002, SIGMA_MAX).double())

    def err(grid: torch.Tensor) -> float:
        return float((sample_dpmpp_2m(gmm, held_out, grid.double()) - ref).norm(dim=1).mean())

    assert err(sigmas) < 0.8 * err(init), (err(sigmas), err(init))


def test_interpolated_grid_returns_its_knots_and_resamples_in_log_sigma() -> None:
    knots = exponential_sigmas(4, 0.01, 10.0)
    torch.testing.assert_close(interpolated_sigmas(4, knots.tolist()), knots)
    torch.testing.assert_close(interpolated_sigmas(7, knots.tolist()), exponential_sigmas(7, 0.01, 10.0))
    with pytest.raises(ValueError):
        interpolated_sigmas(3, [1.0, 2.0])


# ----------------------------------------------------------------------------------------------------------
# RePaint resampling (sample_euler_ancestral(resample=U)).


def test_resample_one_is_plain_ancestral_and_u_tries_cost_u_evaluations_per_step() -> None:
    denoiser, x, sigmas = grid_mixture(), prior((64, 2)), karras_sigmas(8, 0.002, SIGMA_MAX).double()
    plain = sample_euler_ancestral(denoiser, x, sigmas, generator=torch.Generator().manual_seed(3))
    same = sample_euler_ancestral(denoiser, x, sigmas, generator=torch.Generator().manual_seed(3), resample=1)
    assert torch.equal(plain, same)
    assert count_nfe(partial(sample_euler_ancestral, resample=3), sigmas) == 3 * 7 + 1  # the last step once
    infos: list[dict] = []
    sample_euler_ancestral(denoiser, x, sigmas, generator=torch.Generator().manual_seed(3), resample=3,
                           callback=infos.append)  # fmt: skip
    assert [info["i"] for info in infos] == list(range(8))  # the callback still fires once per step


@pytest.mark.parametrize("resample", [0, -2, 1.5, True])
def test_resample_must_be_a_positive_int(resample) -> None:
    with pytest.raises(ValueError, match="resample"):
        sample_euler_ancestral(gaussian_denoiser(0.0, 1.0), prior((2, 2)), karras_sigmas(4, 0.002, SIGMA_MAX),
                               resample=resample)  # fmt: skip


def test_repaint_path_walks_each_block_u_times_and_the_last_step_once() -> None:
    assert repaint_path(5) == [0, 1, 2, 3, 4, 5]
    assert repaint_path(4, resample=2) == [0, 1, 0, 1, 2, 1, 2, 3, 2, 3, 4]
    assert repaint_path(7, resample=2, jump=3) == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 3, 4, 5, 6, 7]
    # jump length 10 of 20 steps: U walks of blocks [0, 10] and [10, 19], then 19 -> 20
    assert count_nfe(partial(sample_euler_ancestral, resample=3, jump=10), karras_sigmas(20, 0.002, 80.0)) == 58
    with pytest.raises(ValueError, match="jump"):
        repaint_path(5, resample=2, jump=0)


@pytest.mark.parametrize("jump, steps", [(1, 200), (10, 800)])
def test_resampling_keeps_the_marginal_of_an_exact_gaussian(jump: int, steps: int) -> None:
    """With the exact denoiser of N(0.5, 1.5²) and many small steps, U = 4 walks per block still sample that law.

    Ancestral Euler's own discretisation shrinks the std (1.459 at 200 steps without resampling); walks of 10 steps
    repeat that error (1.446 at 200 steps, 1.490 at 800), hence the finer grid for jump 10.
    """
    denoiser, x = gaussian_denoiser(0.5, 1.5), prior((20_000, 1))
    out = run("euler_ancestral", denoiser, x, steps, resample=4, jump=jump)
    assert abs(out.mean().item() - 0.5) < 0.05 and abs(out.std().item() - 1.5) < 0.05
