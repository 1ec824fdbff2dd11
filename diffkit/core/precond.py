"""Preconditioners: wrap a raw net F(c_in·x, c_noise, cond) into a denoiser D(x, σ) = c_skip·x + c_out·F.

Each class is one row of Table 1 in Karras et al. 2022, written in the shared σ-frame x = x0 + σ·ε, so every
sampler, loss and guidance wrapper sees the same contract whatever the network was trained to predict.

References:
    Karras et al. 2022 (EDM) Table 1; Ho et al. 2020 (ε-prediction); Salimans & Ho 2022 (v-prediction);
    Liu et al. 2023 / Lipman et al. 2023 (rectified flow, velocity prediction);
    Sahoo et al. 2024 (MDLM, SUBS parameterization for masked discrete diffusion).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from diffkit.core.types import Cond
from diffkit.core.utils import append_dims

Scalings = tuple[Tensor, Tensor, Tensor, Tensor]  # c_skip, c_out, c_in, c_noise; each [B]


class _Precond(nn.Module):
    """Shared forward: D(x, σ) = c_skip·x + c_out·F(c_in·x, c_noise, cond), computed in float32."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def scalings(self, sigma: Tensor) -> Scalings:
        raise NotImplementedError

    def forward(self, x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1).expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = self.scalings(sigma)
        c_skip, c_out, c_in = (append_dims(c, x.ndim) for c in (c_skip, c_out, c_in))
        out = self.net((c_in * x).to(x.dtype), c_noise, cond)
        return (c_skip * x + c_out * out.float()).to(x.dtype)

    def target(self, x0: Tensor, x: Tensor, sigma: Tensor) -> Tensor:
        """The raw-net regression target (x0 - c_skip·x) / c_out (Karras et al. 2022, eq. 8)."""
        c_skip, c_out, _, _ = (append_dims(c, x.ndim) for c in self.scalings(sigma))
        return (x0 - c_skip * x) / c_out


class EDMPrecond(_Precond):
    """EDM preconditioning with σ_data (Karras et al. 2022, Table 1, 'EDM' column)."""

    def __init__(self, net: nn.Module, sigma_data: float = 0.5) -> None:  # σ_data: std of the data
        super().__init__(net)
        self.sigma_data = sigma_data

    def scalings(self, sigma: Tensor) -> Scalings:
        sd2, s2 = self.sigma_data**2, sigma**2
        c_skip = sd2 / (s2 + sd2)
        c_out = sigma * self.sigma_data / (s2 + sd2).sqrt()
        c_in = 1 / (s2 + sd2).sqrt()
        return c_skip, c_out, c_in, sigma.log() / 4


class EpsPrecond(_Precond):
    """ε-prediction: D = x - σ·F(x / sqrt(σ² + 1)) (Ho et al. 2020 in the σ-frame), c_noise = ln(σ)/4."""

    def scalings(self, sigma: Tensor) -> Scalings:
        ones = torch.ones_like(sigma)
        return ones, -sigma, 1 / (sigma**2 + 1).sqrt(), sigma.log() / 4


class VPPrecond(_Precond):
    """Continuous VP ε-prediction with c_noise = (M - 1)·t(σ) (Song et al. 2021; Karras et al. 2022, Table 1)."""

    def __init__(
        self,
        net: nn.Module,
        beta_d: float = 19.9,  # β_d of the VP SDE (Song et al. 2021)
        beta_min: float = 0.1,  # β_min of the VP SDE
        M: int = 1000,  # number of discrete training steps the time label is scaled to
    ) -> None:
        super().__init__(net)
        self.beta_d, self.beta_min, self.M = beta_d, beta_min, M

    def sigma_inv(self, sigma: Tensor) -> Tensor:
        """t(σ) for σ(t) = sqrt(exp(β_d t²/2 + β_min t) - 1)."""
        b = self.beta_min
        return ((b**2 + 2 * self.beta_d * (1 + sigma**2).log()).sqrt() - b) / self.beta_d

    def scalings(self, sigma: Tensor) -> Scalings:
        ones = torch.ones_like(sigma)
        return ones, -sigma, 1 / (sigma**2 + 1).sqrt(), (self.M - 1) * self.sigma_inv(sigma)


class VPredPrecond(_Precond):
    """v-prediction v = α·ε - s·x0 in the σ-frame with σ_data (Salimans & Ho 2022); c_noise = ln(σ)/4."""

    def __init__(self, net: nn.Module, sigma_data: float = 1.0) -> None:  # σ_data = 1: the usual VP setting
        super().__init__(net)
        self.sigma_data = sigma_data

    def scalings(self, sigma: Tensor) -> Scalings:
        sd2, s2 = self.sigma_data**2, sigma**2
        c_skip = sd2 / (s2 + sd2)
        c_out = -sigma * self.sigma_data / (s2 + sd2).sqrt()
        c_in = 1 / (s2 + sd2).sqrt()
        return c_skip, c_out, c_in, sigma.log() / 4


class FlowPrecond(_Precond):
    """Rectified flow x_t = (1 - t)·x0 + t·ε, net predicts v = ε - x0, with σ = t / (1 - t) (Liu et al. 2023)."""

    def __init__(self, net: nn.Module, t_scale: float = 1.0) -> None:  # c_noise = t_scale · t
        super().__init__(net)
        self.t_scale = t_scale

    def scalings(self, sigma: Tensor) -> Scalings:
        t = sigma / (1 + sigma)
        c_in = 1 / (1 + sigma)  # x_t = x / (1 + σ)
        return c_in, -t, c_in, self.t_scale * t


class SubsPrecond(nn.Module):
    """SUBS: log-probs [B,L,V] from raw logits with the mask token at -inf and unmasked tokens copied (MDLM §3.2).

    The raw net gets the ids x [B,L], c_noise = σ [B] and cond. Zero masking probability (no mass on the mask
    token) and carry-over unmasking (log-prob 0 on the observed token wherever x is not the mask) are exact
    properties of the true posterior of the absorbing process, so imposing them only removes wasted capacity.
    """

    def __init__(self, net: nn.Module, mask_id: int) -> None:
        super().__init__()
        self.net, self.mask_id = net, int(mask_id)

    def forward(self, x: Tensor, sigma: Tensor, cond: Cond | None = None) -> Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1).expand(x.shape[0])
        logits = self.net(x, sigma, cond).float()
        logits = logits.index_fill(-1, torch.tensor([self.mask_id], device=x.device), float("-inf"))
        log_probs = logits.log_softmax(dim=-1)
        carry = torch.full_like(log_probs, float("-inf")).scatter(-1, x[..., None], 0.0)
        return torch.where((x != self.mask_id)[..., None], carry, log_probs)
