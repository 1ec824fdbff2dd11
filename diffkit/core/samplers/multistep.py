"""High-order samplers for Gaussian diffusion: exponential-integrator multistep/singlestep methods and LMS.

Same contract as gaussian.py: x at sigmas[0], a decreasing grid ending in 0, `generator`, one `callback` per
step. Per-step scalars are computed once as Python floats (no host syncs or scalar tensors in the loop).

References:
    Lu et al. 2022, "DPM-Solver++" (2S singlestep, multistep in λ = -log σ); Zhao et al. 2023, "UniPC"
    (UniP predictor + UniC corrector, B(h) = e^h - 1 variant "bh2"); Karras et al. 2022 / k-diffusion (LMS in σ).
"""

from __future__ import annotations

import math

import torch
from torch import Generator, Tensor

from diffkit.core.types import Callback, Cond, Denoiser
from diffkit.core.utils import check_grid as _check_grid
from diffkit.core.utils import sigma_rows


def _info(x: Tensor, i: int, sigmas: Tensor, denoised: Tensor) -> dict:
    return {"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised}


def _combine(x: Tensor, a: float, terms: list[tuple[float, Tensor]]) -> Tensor:
    """a·x + Σ c·t with one allocation."""
    out = x * a
    for c, t in terms:
        out.add_(t, alpha=c)
    return out


def _solve(mat: list[list[float]], rhs: list[float]) -> list[float]:
    """Solve a small dense linear system (Gaussian elimination with partial pivoting) in Python floats."""
    n = len(rhs)
    a = [row[:] + [r] for row, r in zip(mat, rhs)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[piv] = a[piv], a[col]
        for r in range(col + 1, n):
            f = a[r][col] / a[col][col]
            a[r] = [v - f * p for v, p in zip(a[r], a[col])]
    sol = [0.0] * n
    for r in reversed(range(n)):
        sol[r] = (a[r][n] - sum(a[r][k] * sol[k] for k in range(r + 1, n))) / a[r][r]
    return sol


# ----------------------------------------------------------------------------------------------------------
# DPM-Solver++ (data prediction, exponential integrator in λ = -log σ).


@torch.no_grad()
def sample_dpmpp_3m(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """DPM-Solver++(3M): 3rd-order multistep in λ (Lu et al. 2022), exact φ-integrals of a Newton interpolant.

    x [B,*S] at sigmas[0] -> x [B,*S] at 0. Warm-up steps use orders 1 and 2; the step to σ = 0 returns D.
    """
    _check_grid(x, sigmas)
    sig, rows = sigmas.tolist(), sigma_rows(sigmas, x)
    hist: list[Tensor] = []  # previous denoised values, newest first
    steps: list[float] = []  # previous step sizes in λ, newest first
    for i in range(len(sig) - 1):
        denoised = denoiser(x, rows[i], cond)
        if callback is not None:
            callback(_info(x, i, sigmas, denoised))
        if sig[i + 1] == 0:
            x = denoised
            break
        h = math.log(sig[i] / sig[i + 1])
        em = math.exp(-h)
        a0, a1 = -math.expm1(-h), h - 1 + em  # e^-h ∫_0^h e^u du, e^-h ∫_0^h u e^u du
        terms = [(a0, denoised)]
        if hist:
            # Newton divided differences over the nodes u = 0, -h1, -(h1 + h2) (u = λ - λ_i).
            h1 = steps[0]
            f01 = (denoised - hist[0]) / h1
            terms.append((a1, f01))
            if len(hist) >= 2:
                h2 = steps[1]
                a2 = h * h - 2 * h + 2 - 2 * em  # e^-h ∫_0^h u² e^u du
                f12 = (hist[0] - hist[1]) / h2
                terms.append(((a2 + h1 * a1) / (h1 + h2), f01 - f12))
        x = _combine(x, em, terms)
        hist, steps = [denoised, *hist[:1]], [h, *steps[:1]]
    return x


@torch.no_grad()
def sample_dpmpp_2s(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
    r: float = 0.5,  # position of the intermediate point in λ as a fraction of the step (Lu et al. 2022: 1/2)
) -> Tensor:
    """DPM-Solver++(2S): 2nd-order singlestep in λ (Lu et al. 2022, Algorithm 1); 2 NFE per step, 1 for the last."""
    _check_grid(x, sigmas)
    sig, rows = sigmas.tolist(), sigma_rows(sigmas, x)
    for i in range(len(sig) - 1):
        denoised = denoiser(x, rows[i], cond)
        if callback is not None:
            callback(_info(x, i, sigmas, denoised))
        if sig[i + 1] == 0:
            x = denoised
            break
        h = math.log(sig[i] / sig[i + 1])
        sigma_mid = sig[i] * math.exp(-r * h)
        # First-order step to the intermediate level, then the full step with the corrected data estimate.
        x_mid = _combine(x, sigma_mid / sig[i], [(-math.expm1(-r * h), denoised)])
        d_mid = denoiser(x_mid, torch.full_like(rows[i], sigma_mid), cond)
        d = _combine(denoised, 1 - 1 / (2 * r), [(1 / (2 * r), d_mid)])
        x = _combine(x, sig[i + 1] / sig[i], [(-math.expm1(-h), d)])
    return x


# ----------------------------------------------------------------------------------------------------------
# UniPC (predictor-corrector with the corrector reusing the next step's evaluation).


def _unipc_b(h: float, order: int) -> tuple[float, float, list[float]]:
    """(φ1 = e^-h - 1, B(h) = e^-h - 1 ("bh2"), right-hand side b_1..b_order of UniPC's order conditions)."""
    hh = -h
    phi1 = math.expm1(hh)
    b_h = phi1
    phi_k, fact, b = phi1 / hh - 1, 1, []
    for j in range(1, order + 1):
        b.append(phi_k * fact / b_h)
        fact *= j + 1
        phi_k = phi_k / hh - 1 / fact
    return phi1, b_h, b


def _unipc_update(
    x: Tensor, ratio: float, h: float, d0: Tensor, d1s: list[Tensor], rks: list[float], new: Tensor | None
) -> Tensor:
    """One UniP (new is None) or UniC (new = D at the target point) update from D history (Zhao et al. 2023)."""
    order = len(d1s) + 1
    phi1, b_h, b = _unipc_b(h, order)
    terms = [(-phi1, d0)]
    if new is None:
        if order == 2:
            rhos = [0.5]
        elif order > 2:
            rhos = _solve([[rk**j for rk in rks] for j in range(order - 1)], b[: order - 1])
        else:
            rhos = []
        terms += [(-b_h * rho, d1) for rho, d1 in zip(rhos, d1s)]
    else:
        full = [*rks, 1.0]
        rhos = [0.5] if order == 1 else _solve([[rk**j for rk in full] for j in range(order)], b)
        terms += [(-b_h * rho, d1) for rho, d1 in zip(rhos, [*d1s, new - d0])]
    return _combine(x, ratio, terms)


@torch.no_grad()
def sample_unipc(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
    order: int = 2,  # predictor order (1-3), the corrector adds one; 3 diverges at 6-12 steps on trained nets
    corrector: bool = True,  # UniC after every step; free, it reuses the next step's evaluation
    lower_order_final: bool = True,  # order ≤ steps left (stabilises few-step sampling, as in DPM-Solver)
) -> Tensor:
    """UniPC-bh2 (Zhao et al. 2023): UniP-p predictor + UniC corrector, data prediction in λ = -log σ."""
    _check_grid(x, sigmas)
    if order not in (1, 2, 3):
        raise ValueError(f"sample_unipc: order must be 1, 2 or 3, got {order}")
    sig, rows = sigmas.tolist(), sigma_rows(sigmas, x)
    lam = [math.inf if s == 0 else -math.log(s) for s in sig]
    n = len(sig) - 1
    hist: list[Tensor] = []  # denoised at previous evaluation points, newest first
    prev: tuple | None = None  # (x, h, D, differences, ratios) of the last predictor step, reused by UniC
    for i in range(n):
        denoised = denoiser(x, rows[i], cond)
        if callback is not None:
            callback(_info(x, i, sigmas, denoised))
        if prev is not None and corrector:
            # UniC: redo the step i-1 -> i with D at the new point included (same differences as the predictor).
            x_prev, h, d0, d1s, rks = prev
            x = _unipc_update(x_prev, sig[i] / sig[i - 1], h, d0, d1s, rks, denoised)
        hist = [denoised, *hist[:2]]
        if sig[i + 1] == 0:
            x = denoised
            break
        p = min(order, len(hist), n - i if lower_order_final else order)
        h = lam[i + 1] - lam[i]
        rks = [(lam[i - k] - lam[i]) / h for k in range(1, p)]
        d1s = [(hist[k] - hist[0]) / rk for k, rk in zip(range(1, p), rks)]
        prev = (x, h, hist[0], d1s, rks)
        x = _unipc_update(x, sig[i + 1] / sig[i], h, hist[0], d1s, rks, None)
    return x


# ----------------------------------------------------------------------------------------------------------
# Linear multistep (Adams-Bashforth in σ on the probability-flow ODE).


def _lms_coeffs(sig: list[float], i: int, order: int) -> list[float]:
    """∫_{σ_i}^{σ_i+1} ℓ_j(τ) dτ for the Lagrange basis over the nodes σ_i, σ_i-1, ... (exact polynomial integral)."""
    nodes = [sig[i - k] for k in range(order)]
    coeffs = []
    for j in range(order):
        poly = [1.0]  # ascending power coefficients of ℓ_j
        for k, node in enumerate(nodes):
            if k == j:
                continue
            scale = 1.0 / (nodes[j] - node)
            poly = [((poly[m - 1] if m else 0.0) - node * (poly[m] if m < len(poly) else 0.0)) * scale
                    for m in range(len(poly) + 1)]  # fmt: skip
        a, b = sig[i], sig[i + 1]
        coeffs.append(sum(c * (b ** (m + 1) - a ** (m + 1)) / (m + 1) for m, c in enumerate(poly)))
    return coeffs


@torch.no_grad()
def sample_lms(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
    order: int = 4,  # number of past slopes in the Adams-Bashforth interpolant
) -> Tensor:
    """Linear multistep (variable-step Adams-Bashforth) on dx/dσ = (x - D)/σ (k-diffusion's LMS); 1 NFE per step."""
    _check_grid(x, sigmas)
    if order < 1:
        raise ValueError(f"sample_lms: order must be >= 1, got {order}")
    sig, rows = sigmas.tolist(), sigma_rows(sigmas, x)
    slopes: list[Tensor] = []  # newest first
    for i in range(len(sig) - 1):
        denoised = denoiser(x, rows[i], cond)
        if callback is not None:
            callback(_info(x, i, sigmas, denoised))
        slopes = [(x - denoised) / sig[i], *slopes[: order - 1]]
        coeffs = _lms_coeffs(sig, i, len(slopes))
        x = _combine(x, 1.0, list(zip(coeffs, slopes)))
    return x
