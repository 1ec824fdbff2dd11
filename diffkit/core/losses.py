"""Training losses: per-example denoising score matching in the σ-frame.

References:
    Karras et al. 2022 (EDM, eq. 2 and 8); Vincent 2011 (denoising score matching);
    Sahoo et al. 2024 (MDLM, eq. 10-11: the continuous-time masked NELBO); Shi et al. 2024 (MD4).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Generator, Tensor

from diffkit.core.types import Cond, Denoiser, Process
from diffkit.core.utils import append_dims, mean_flat


class DenoisingLoss:
    """E_σ λ(σ)·||D(x0 + σε, σ) - x0||², σ from an injected density, per example [B] (Karras et al. 2022, eq. 2)."""

    def __init__(
        self,
        process: Process,
        sigma_density: Callable[..., Tensor],
        weighting: Callable[[Tensor], Tensor],
    ) -> None:
        self.process = process
        self.sigma_density = sigma_density
        self.weighting = weighting

    def __call__(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        cond: Cond | None = None,
        generator: Generator | None = None,
        *,
        weight: Tensor | None = None,  # per-element weight [B,*S] or broadcastable; None = 1 (see types.Loss)
        sigma: Tensor | None = None,
        noise: Tensor | None = None,  # pre-drawn ε [B,*S], e.g. this rank's share of a draw for the global batch
    ) -> Tensor:
        if sigma is None:
            sigma = self.sigma_density(x0.shape[0], device=x0.device, generator=generator)
        sigma = sigma.to(device=x0.device, dtype=torch.float32)
        if noise is None:
            x = self.process.add_noise(x0, sigma, generator)
        else:  # the σ-frame: x = x0 + σ·ε
            x = x0 + append_dims(sigma, x0.ndim) * noise.to(device=x0.device, dtype=x0.dtype)
        denoised = denoiser(x, sigma, cond)
        error = (denoised.float() - x0.float()) ** 2
        if weight is not None:
            error = weight.to(device=error.device, dtype=error.dtype) * error
        return self.weighting(sigma) * mean_flat(error)

    def draw(self, n: int, shape: tuple[int, ...], *, generator: Generator | None = None) -> dict[str, Tensor]:
        """σ [n] and ε [n,*shape] on the CPU, in the order __call__ would use them for a batch of n."""
        sigma = self.sigma_density(n, device="cpu", generator=generator)
        return {"sigma": sigma, "noise": torch.randn((n, *shape), generator=generator)}


class MaskedNELBO:
    """Continuous-time masked-diffusion NELBO in nats/token, per example [B] (Sahoo et al. 2024, MDLM eq. 11).

    With α = e^(-σ(t)) the probability a token is still clean, the bound is
        NELBO = ∫_0^1 σ'(t) / (e^(σ(t)) - 1) · E_q[ Σ_{l masked in x_t} -log D(x_t, σ)[l, x0_l] ] dt,
    since -α'/(1 - α) = σ' e^(-σ) / (1 - e^(-σ)) = σ' / (e^σ - 1). For the log-linear schedule this weight is 1/t.
    Unmasked tokens cost nothing because the SUBS denoiser copies them. t is drawn stratified over the batch
    (MDLM's low-discrepancy sampler) on [t_min, 1]. As in MDLM, the [0, t_min] slice (about t_min · cross-entropy)
    and the prior term at t = 1, where a schedule with ε > 0 leaves a fraction ε unmasked, are dropped: for the
    exact denoiser of i.i.d. tokens the estimate is (1 - ε)·H, within 0.1 % of the entropy H for ε = 1e-3.
    """

    def __init__(
        self,
        process: Process,  # a MaskingProcess (needs .mask_id and .add_noise)
        noise: Callable[[Tensor], tuple[Tensor, Tensor]],  # t -> (σ(t), dσ/dt), e.g. loglinear_noise
        t_min: float = 1e-5,  # keeps the 1/t weight finite
        antithetic: bool = True,  # stratified t: (u + i/B) mod 1
    ) -> None:
        self.process, self.noise, self.t_min, self.antithetic = process, noise, float(t_min), antithetic

    def draw_t(self, n: int, *, device: torch.device | str = "cpu", generator: Generator | None = None) -> Tensor:
        """n times in [t_min, 1]; stratified so every batch covers the whole interval."""
        gen_device = generator.device if generator is not None else device
        if self.antithetic:
            u = (torch.rand(1, generator=generator, device=gen_device) + torch.arange(n, device=gen_device) / n) % 1
        else:
            u = torch.rand(n, generator=generator, device=gen_device)
        return (self.t_min + (1 - self.t_min) * u).to(device)

    def __call__(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        cond: Cond | None = None,
        generator: Generator | None = None,
        *,
        weight: Tensor | None = None,  # per-token weight [B,L] or broadcastable; None = 1 (see types.Loss)
        t: Tensor | None = None,
    ) -> Tensor:
        if t is None:
            t = self.draw_t(x0.shape[0], device=x0.device, generator=generator)
        sigma, dsigma = self.noise(t.to(device=x0.device, dtype=torch.float64))
        x = self.process.add_noise(x0, sigma.float(), generator)
        log_probs = denoiser(x, sigma.float(), cond)  # [B,L,V]
        token_ll = log_probs.float().gather(-1, x0[..., None]).squeeze(-1)
        masked = x == self.process.mask_id  # type: ignore[attr-defined]
        nll = torch.where(masked, -token_ll, torch.zeros_like(token_ll))
        if weight is not None:
            nll = weight.to(device=nll.device, dtype=nll.dtype) * nll
        time_weight = ((1 - self.t_min) * dsigma / torch.expm1(sigma)).float()
        return time_weight * nll.reshape(x0.shape[0], -1).mean(dim=1)

    @torch.no_grad()
    def evaluate(
        self,
        denoiser: Denoiser,
        x0: Tensor,
        cond: Cond | None = None,
        *,
        n_t: int = 8,
        generator: Generator | None = None,
    ) -> Tensor:
        """NELBO [B] averaged over n_t stratified times per example (lower-variance perplexity bound exp(NELBO))."""
        b = x0.shape[0]
        t = self.draw_t(b * n_t, device=x0.device, generator=generator).reshape(n_t, b)
        return torch.stack([self(denoiser, x0, cond, generator, t=t[i]) for i in range(n_t)]).mean(0)
