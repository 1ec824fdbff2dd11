"""Guidance as Denoiser -> Denoiser wrappers, so they compose and every sampler gets them for free.

References:
    Ho & Salimans 2022 (classifier-free guidance); Song et al. 2021, App. I / Lugmayr et al. 2022 (replacement
    inpainting); Janner et al. 2022 (Diffuser, conditioning by replacement); Sahoo et al. 2024 (MDLM infilling);
    Ho et al. 2022 (reconstruction guidance); Song et al. 2023 (ΠGDM, pseudoinverse-guided diffusion);
    Chung et al. 2023 (DPS), Bansal et al. 2023 (universal guidance: the gradient of a loss of the denoised estimate);
    Kynkäänniemi et al. 2024 (guidance in a limited interval of noise levels).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Generator, Tensor

from diffkit.core.types import Cond, CondSpec, Denoiser
from diffkit.core.utils import append_dims


def null_cond(cond: Cond, specs: Mapping[str, CondSpec]) -> Cond:
    """Every entry of cond replaced by its declared null (the unconditional branch of CFG); shapes kept."""
    undeclared = sorted(set(cond) - set(specs))
    if undeclared:
        raise KeyError(f"condition entries {undeclared} have no declared null (declared: {sorted(specs)})")
    return {key: specs[key].null_like(value) for key, value in cond.items()}


def cfg(
    denoiser: Denoiser,
    scale: float,
    null_cond: Cond | Callable[[Cond], Cond] | None = None,
    interval: tuple[float, float] | None = None,
) -> Denoiser:
    """D_uncond + scale·(D_cond - D_uncond) (Ho & Salimans 2022); scale 1 = conditional, 0 = unconditional.

    null_cond: the unconditional condition, or a function cond -> null condition (e.g. null_cond with the declared
    specs); None passes no condition at all. interval (lo, hi): guide only where lo < σ ≤ hi and use the conditional
    denoiser alone elsewhere, one network call (Kynkäänniemi et al. 2024).
    """
    if interval is not None and not 0 <= interval[0] < interval[1]:
        raise ValueError(f"cfg: interval must be (lo, hi) with 0 <= lo < hi, got {interval!r}")

    def uncond_of(cond: Cond | None) -> Cond | None:
        if not callable(null_cond):
            return null_cond
        return None if cond is None else null_cond(cond)

    def guided(x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor:
        if scale == 1.0:
            return denoiser(x, sigma, cond)
        if cond is None:  # nothing to guide towards: one unconditional call, not two
            return denoiser(x, sigma, uncond_of(cond))
        inside = None if interval is None else (sigma > interval[0]) & (sigma <= interval[1])
        if inside is not None and not inside.any():
            return denoiser(x, sigma, cond)
        everywhere = inside is None or bool(inside.all())
        uncond = denoiser(x, sigma, uncond_of(cond))
        if scale == 0.0 and everywhere:
            return uncond
        conditional = denoiser(x, sigma, cond)
        out = uncond + scale * (conditional - uncond)
        return out if everywhere else torch.where(append_dims(inside, x.ndim), out, conditional)

    return guided


def replace(denoiser: Denoiser, known: Tensor, mask: Tensor) -> Denoiser:
    """Overwrite the denoised estimate with `known` where mask = 1 (replacement conditioning / inpainting)."""
    keep = mask.to(torch.bool)

    def replaced(x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor:
        return torch.where(keep, known.to(x.dtype), denoiser(x, sigma, cond))

    return replaced


def with_known(
    denoiser: Denoiser, known: Tensor, mask: Tensor, known_key: str = "known", mask_key: str = "mask"
) -> Denoiser:
    """Hand known entries and their mask (1 = known) to a net trained to read them (Saharia et al. 2022, Palette)."""

    def conditioned(x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor:
        return denoiser(x, sigma, {**(cond or {}), known_key: known.to(x.dtype), mask_key: mask.to(x.dtype)})

    return conditioned


class ReplaceTokens:
    """Discrete replacement: the denoiser sees `known` ids where mask = 1 and returns them with certainty there.

    known ids [B,L] (or [1,L]), mask [B,L] (1 = given); log-probs [B,L,V] are 0 on the known token and -inf elsewhere
    at given positions, so a masked-diffusion sampler can only ever place the known token (MDLM infilling).
    """

    def __init__(self, denoiser: Denoiser, known: Tensor, mask: Tensor) -> None:
        self.denoiser, self.known, self.keep = denoiser, known, mask.to(torch.bool)

    def __call__(self, x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor:
        if self.keep.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"replace_tokens: x has {x.shape[0]} rows, mask {self.keep.shape[0]}; a wrapper around "
                             "it that a sampler calls on a sub-batch must forward select_rows(rows)")  # fmt: skip
        log_probs = self.denoiser(torch.where(self.keep, self.known.to(x.dtype), x), sigma, cond)
        ids = self.known.long().expand_as(x)[..., None]
        given = torch.full_like(log_probs, float("-inf")).scatter(-1, ids, 0.0)
        return torch.where(self.keep[..., None], given, log_probs)

    def select_rows(self, rows: Tensor) -> ReplaceTokens:
        """The same replacement for the sub-batch x[rows] (the per-sequence cached sampler calls it)."""
        select = getattr(self.denoiser, "select_rows", None)
        inner = select(rows) if select is not None else self.denoiser
        known = self.known[rows] if self.known.shape[0] > 1 else self.known
        keep = self.keep[rows] if self.keep.shape[0] > 1 else self.keep
        return ReplaceTokens(inner, known, keep)


def replace_tokens(denoiser: Denoiser, known: Tensor, mask: Tensor) -> Denoiser:
    """Discrete replacement conditioning (MDLM infilling): see ReplaceTokens; known, mask [B,L], 1 = given."""
    return ReplaceTokens(denoiser, known, mask)


def reconstruction_guidance(
    denoiser: Denoiser, known: Tensor, mask: Tensor, *, sigma_data: float = 0.5, scale: float = 1.0
) -> Denoiser:
    """Inpainting by the ΠGDM likelihood score (Song et al. 2023, reconstruction guidance of Ho et al. 2022).

    D'(x) = D(x) + scale·(σ² / r²)·Jᵀ m (y - D(x)), J = ∂D/∂x (one vector-Jacobian product), r² = σ²σ_d²/(σ²+σ_d²)
    the posterior variance of x0 under a N(0, σ_d²) prior; then the known entries are replaced exactly. Unlike
    plain replacement, the unknown entries see the known ones through J at every σ, so completions are coherent.
    Costs one backward pass per network call. known [B,*S] (or broadcastable), mask 1 = known.
    """
    keep = mask.to(torch.bool)

    def guided(x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor:
        # Inside no_grad or inference_mode (Lightning's validation loop) too: clones are ordinary tensors.
        with torch.inference_mode(False), torch.enable_grad():
            x_in, sigma_in = x.detach().clone().requires_grad_(True), sigma.detach().clone()
            cond_in = None if cond is None else {key: value.clone() for key, value in cond.items()}
            denoised = denoiser(x_in, sigma_in, cond_in)
            vjp = None  # stays None where D does not depend on x (J = 0)
            if denoised.requires_grad:
                out = denoised.detach()
                residual = torch.where(keep, known.to(out.dtype) - out, torch.zeros_like(out))  # m (y - D(x))
                (vjp,) = torch.autograd.grad(denoised, x_in, grad_outputs=residual, allow_unused=True)
        vjp = torch.zeros_like(x) if vjp is None else vjp
        sigma2 = append_dims(sigma.to(x.dtype), x.ndim) ** 2
        weight = scale * (sigma2 + sigma_data**2) / sigma_data**2  # σ² / r²
        return torch.where(keep, known.to(x.dtype), denoised.detach() + weight * vjp)

    return guided


def cost_guidance(denoiser: Denoiser, cost: Callable[[Tensor], Tensor], *, scale: float = 1.0) -> Denoiser:
    """Steer samples down a differentiable cost of the denoised estimate (DPS / universal guidance):

    D'(x) = D(x) - scale·σ²·∇ₓ c(D(x)), i.e. the score plus -scale·∇ₓ c. For Gaussian data and a linear cost this is
    exactly the denoiser of the tilted density p(x0)·exp(-scale·c(x0)); otherwise its first-order approximation.
    cost: x0 [B,*S] -> [B] (summed over the batch for the gradient). One backward pass per network call.
    """

    def guided(x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor:
        with torch.inference_mode(False), torch.enable_grad():  # also inside no_grad / inference_mode
            x_in, sigma_in = x.detach().clone().requires_grad_(True), sigma.detach().clone()
            cond_in = None if cond is None else {key: value.clone() for key, value in cond.items()}
            denoised = denoiser(x_in, sigma_in, cond_in)
            total = cost(denoised).sum()
            grad = torch.autograd.grad(total, x_in, allow_unused=True)[0] if total.requires_grad else None
        grad = torch.zeros_like(x) if grad is None else grad
        sigma2 = append_dims(sigma.to(x.dtype), x.ndim) ** 2
        return denoised.detach() - scale * sigma2 * grad

    return guided


def drop_cond(cond: Cond, p: float, generator: Generator | None = None, *, specs: Mapping[str, CondSpec]) -> Cond:
    """Replace each example's whole condition by the declared nulls with probability p (CFG condition dropout).

    One draw per example [B] decides for all its entries together (Ho & Salimans 2022, Algorithm 1).
    """
    if p <= 0 or not cond:
        return cond
    first = next(iter(cond.values()))
    drop = torch.rand(first.shape[0], generator=generator, device=first.device) < p
    nulls = null_cond(cond, specs)
    return {key: torch.where(append_dims(drop, value.ndim), nulls[key], value) for key, value in cond.items()}
