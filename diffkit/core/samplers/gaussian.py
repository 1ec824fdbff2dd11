"""Samplers for Gaussian diffusion: short functions over denoiser(x, σ, cond) that walk a decreasing σ grid.

Every sampler takes x at sigmas[0] (e.g. prior noise · σ_max), the grid `sigmas` (n + 1 values ending in 0),
and returns x at σ = 0. Randomness comes only from `generator`; `callback` is called once per step.

References:
    Karras et al. 2022 (EDM), Algorithms 1-2; Song et al. 2021 (DDIM); Ho et al. 2020 (DDPM);
    Lu et al. 2022, "DPM-Solver++" (2M multistep); k-diffusion (Crowson) for the σ-frame forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Generator, Tensor

from diffkit.core.types import Callback, Cond, Denoiser
from diffkit.core.utils import check_grid as _check_grid
from diffkit.core.utils import randn_like, sigma_rows


def _call(denoiser: Denoiser, x: Tensor, sigma: Tensor, cond: Cond | None) -> Tensor:
    return denoiser(x, sigma.to(x.dtype).expand(x.shape[0]), cond)


def _report(callback: Callback | None, **info: object) -> None:
    if callback is not None:
        callback(info)


def ancestral_step(sigma_from: float | Tensor, sigma_to: float | Tensor, eta: float = 1.0) -> tuple[float, float]:
    """(σ_down, σ_up) with σ_down² + σ_up² = σ_to² of the DDIM(η) posterior step (Song et al. 2021, eq. 16)."""
    s, s_next = float(sigma_from), float(sigma_to)
    sigma_up = 0.0
    if s_next > 0 and eta != 0.0:
        sigma_up = min(eta * math.sqrt(s_next**2 * (s**2 - s_next**2) / s**2), s_next)
    return math.sqrt(s_next**2 - sigma_up**2), sigma_up


@torch.no_grad()
def sample_euler(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """First-order Euler steps of the probability-flow ODE (Karras et al. 2022, Algorithm 2 without the 2nd order)."""
    _check_grid(x, sigmas)
    sig, rows = sigmas.tolist(), sigma_rows(sigmas, x)
    for i in range(len(sig) - 1):
        denoised = denoiser(x, rows[i], cond)
        if callback is not None:
            _report(callback, x=x, i=i, sigma=sigmas[i], sigma_hat=sigmas[i], denoised=denoised)
        # Euler step x + (σ' - σ)(x - D)/σ, written as one interpolation D + (σ'/σ)(x - D).
        x = torch.lerp(denoised, x, sig[i + 1] / sig[i])
    return x


def repaint_path(n_steps: int, resample: int = 1, jump: int = 1) -> list[int]:
    """Grid indices RePaint's schedule visits (Lugmayr et al. 2022, Alg. 1 with jump length j).

    Blocks of `jump` steps are walked down `resample` times, diffusing back up to the block's start in one jump
    between walks; the last step (to σ = 0) is taken once. resample = 1 gives 0, 1, ..., n_steps.
    """
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (resample, jump)):
        raise ValueError(f"RePaint: resample and jump must be positive ints, got {resample!r} and {jump!r}")
    path, start, last = [0], 0, n_steps - 1  # `last`: the index of the smallest σ > 0
    while start < last:
        end = min(start + jump, last)
        for walk in range(resample):
            path += range(start + 1, end + 1)
            if walk < resample - 1:
                path.append(start)
        start = end
    return [*path, n_steps]


@torch.no_grad()
def sample_euler_ancestral(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
    eta: float = 1.0,  # 1 = full ancestral (DDPM posterior) noise, 0 = Euler
    resample: int = 1,  # walks per block; > 1 diffuses back and retakes the block (RePaint resampling)
    jump: int = 1,  # RePaint's jump length: steps per block
) -> Tensor:
    """Euler step to σ_down plus fresh noise σ_up (ancestral sampling; DDIM(η) in the σ-frame).

    resample = U > 1 is RePaint's resampling (Lugmayr et al. 2022): the grid is cut into blocks of `jump` steps
    and each block that ends above σ = 0 is walked down U times, diffusing the result back from the block's last σ
    to its first with fresh noise between walks (`repaint_path`; about U·steps network evaluations). With exact
    reverse steps the law at the block's end is unchanged; under replacement conditioning (`guidance.replace`) the
    unknown part gets U chances per block to agree with the known part, and longer jumps re-noise more of it.
    """
    _check_grid(x, sigmas)
    sig, rows = sigmas.tolist(), sigma_rows(sigmas, x)
    reported = -1
    path = repaint_path(len(sig) - 1, resample, jump)
    for i, j in zip(path, path[1:], strict=False):
        s, s_next = sig[i], sig[j]
        if j < i:  # diffuse back: x at σ_i plus independent noise of variance σ_j² - σ_i²
            x = x + randn_like(x, generator) * math.sqrt(s_next**2 - s**2)
            continue
        denoised = denoiser(x, rows[i], cond)
        if callback is not None and i > reported:  # once per grid step, like every sampler
            _report(callback, x=x, i=i, sigma=sigmas[i], sigma_hat=sigmas[i], denoised=denoised)
        reported = max(reported, i)
        sigma_down, sigma_up = ancestral_step(s, s_next, eta)
        x = torch.lerp(denoised, x, sigma_down / s)
        if sigma_up > 0:
            x = x + randn_like(x, generator) * sigma_up
    return x


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
    eta: float = 0.0,  # DDIM's η: 0 deterministic, 1 = DDPM posterior variance
) -> Tensor:
    """DDIM(η) (Song et al. 2021, eq. 12): x' = x̂0 + σ_down·ε̂ + σ_up·z; in the σ-frame this is ancestral Euler."""
    return sample_euler_ancestral(denoiser, x, sigmas, cond=cond, generator=generator, callback=callback, eta=eta)


@torch.no_grad()
def sample_ddpm(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
    variance: str = "small",  # "small" = posterior β̃_t, "large" = β_t (Ho et al. 2020, Sec. 3.2)
) -> Tensor:
    """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2): posterior mean plus β̃ or β noise, in the σ-frame."""
    _check_grid(x, sigmas)
    if variance not in ("small", "large"):
        raise ValueError(f"sample_ddpm: variance must be 'small' or 'large', got {variance!r}")
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _call(denoiser, x, s, cond)
        _report(callback, x=x, i=i, sigma=s, sigma_hat=s, denoised=denoised)
        # Posterior mean of the σ-frame chain x_t = x_s + sqrt(σ_t² - σ_s²)·z.
        x = denoised + (s_next**2 / s**2) * (x - denoised)
        if float(s_next) > 0:
            if variance == "small":
                var = s_next**2 * (s**2 - s_next**2) / s**2
            else:  # β_t / ᾱ_s with ᾱ = 1 / (1 + σ²)
                var = (s**2 - s_next**2) * (1 + s_next**2) / (1 + s**2)
            x = x + randn_like(x, generator) * var.sqrt()
    return x


@torch.no_grad()
def sample_heun(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
    s_churn: float = 0.0,  # EDM's S_churn: total stochasticity added over the trajectory
    s_tmin: float = 0.0,  # churn only for σ in [S_tmin, S_tmax]
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,  # EDM's S_noise: inflation of the churn noise
) -> Tensor:
    """Heun's 2nd-order method with optional churn (Karras et al. 2022, Algorithm 2); last step is Euler."""
    _check_grid(x, sigmas)
    sig, rows = sigmas.tolist(), sigma_rows(sigmas, x)
    n = len(sig) - 1
    for i in range(n):
        sigma, s_next = sig[i], sig[i + 1]
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * (1 + gamma)
        sigma_in = rows[i]
        if gamma > 0:
            x = x + randn_like(x, generator) * (s_noise * math.sqrt(sigma_hat**2 - sigma**2))
            sigma_in = torch.full_like(rows[i], sigma_hat)
        denoised = denoiser(x, sigma_in, cond)
        if callback is not None:
            _report(callback, x=x, i=i, sigma=sigmas[i], sigma_hat=sigma_in[0], denoised=denoised)
        x_next = torch.lerp(denoised, x, s_next / sigma_hat)  # Euler step to σ_next
        if s_next > 0:
            # Heun correction: average the slopes (x - D)/σ at both ends.
            denoised_next = denoiser(x_next, rows[i + 1], cond)
            dt = s_next - sigma_hat
            out = x * (1 + dt / (2 * sigma_hat))
            out.add_(denoised, alpha=-dt / (2 * sigma_hat))
            out.add_(x_next - denoised_next, alpha=dt / (2 * s_next))
            x_next = out
        x = x_next
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Cond | None = None,
    generator: Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """DPM-Solver++(2M): 2nd-order multistep in λ = -log σ (Lu et al. 2022, Algorithm 2)."""
    _check_grid(x, sigmas)
    sig, rows = sigmas.tolist(), sigma_rows(sigmas, x)
    old_denoised, h_last = None, 0.0
    for i in range(len(sig) - 1):
        denoised = denoiser(x, rows[i], cond)
        if callback is not None:
            _report(callback, x=x, i=i, sigma=sigmas[i], sigma_hat=sigmas[i], denoised=denoised)
        if sig[i + 1] == 0:
            x = denoised  # the exact ODE step to σ = 0 from the data estimate
            break
        h = math.log(sig[i] / sig[i + 1])
        if old_denoised is None:
            d = denoised
        else:
            c = h / (2 * h_last)  # 1 / (2r) with r = h_last / h
            d = denoised * (1 + c)
            d.add_(old_denoised, alpha=-c)
        x = torch.lerp(d, x, sig[i + 1] / sig[i])  # (σ'/σ)·x + (1 - σ'/σ)·d
        old_denoised, h_last = denoised, h
    return x


TWO_EVAL_SAMPLERS = frozenset({"sample_heun", "sample_dpmpp_2s"})  # 2 NFE per step, 1 for a final step to 0


def nfe_per_grid(sampler_name: str, sigmas: Tensor) -> int:
    """Network evaluations a sampler spends on a grid (Heun, 2S: 2 per step but 1 for the final step to 0)."""
    steps = len(sigmas) - 1
    if sampler_name in TWO_EVAL_SAMPLERS:
        return 2 * steps - int(float(sigmas[-1]) == 0)
    return steps


def count_nfe(
    sampler: Callable[..., Tensor],
    sigmas: Tensor,
    guidance: Sequence[Callable[[Denoiser], Denoiser]] = (),
    cond: Cond | None = None,
) -> int:
    """Count the network calls `sampler` makes on `sigmas` by running it once on a 1-element toy problem.

    With `guidance` wrappers (e.g. classifier-free guidance) and a `cond`, the toy network sits inside them, so
    a guided step that evaluates the network twice counts twice.
    """
    calls = [0]

    def counting(x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor:
        calls[0] += 1
        return 0.5 * x

    denoiser: Denoiser = counting
    for wrap in guidance:
        denoiser = wrap(denoiser)
    sampler(denoiser, torch.ones(1, 1, dtype=torch.float64) * float(sigmas[0]), sigmas.double().cpu(), cond=cond,
            generator=torch.Generator().manual_seed(0))  # fmt: skip
    return calls[0]
