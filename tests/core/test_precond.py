"""Preconditioners: scalings equal the paper formulas, targets equal each paper's regression target, and all
parameterisations give the same denoiser when their nets are oracles."""

from __future__ import annotations

import math

import pytest
import torch
from gmm import gaussian_denoiser
from torch import nn

from diffkit.core.precond import EDMPrecond, EpsPrecond, FlowPrecond, VPPrecond, VPredPrecond

SIGMAS = torch.tensor([0.002, 0.05, 0.5, 1.0, 3.0, 80.0], dtype=torch.float64)
ALL = [EDMPrecond, EpsPrecond, VPPrecond, VPredPrecond, FlowPrecond]


def test_edm_scalings_match_table_1() -> None:
    p = EDMPrecond(nn.Identity(), sigma_data=0.5)
    c_skip, c_out, c_in, c_noise = p.scalings(SIGMAS)
    s, sd = SIGMAS, 0.5
    torch.testing.assert_close(c_skip, sd**2 / (s**2 + sd**2))
    torch.testing.assert_close(c_out, s * sd / (s**2 + sd**2).sqrt())
    torch.testing.assert_close(c_in, 1 / (sd**2 + s**2).sqrt())
    torch.testing.assert_close(c_noise, s.log() / 4)


def test_vp_time_label_inverts_the_vp_sigma() -> None:
    p = VPPrecond(nn.Identity())
    t = p.sigma_inv(SIGMAS)
    sigma_of_t = ((0.5 * p.beta_d * t**2 + p.beta_min * t).exp() - 1).sqrt()  # EDM Table 1, VP σ(t)
    torch.testing.assert_close(sigma_of_t, SIGMAS)
    torch.testing.assert_close(p.scalings(SIGMAS)[3], 999 * t)


def _x0_eps(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randn(n, 3, generator=g, dtype=torch.float64)


def test_targets_are_each_papers_regression_target() -> None:
    x0, eps = _x0_eps()
    s = SIGMAS[:, None]
    x = x0 + s * eps
    torch.testing.assert_close(EpsPrecond(nn.Identity()).target(x0, x, SIGMAS), eps)
    torch.testing.assert_close(VPPrecond(nn.Identity()).target(x0, x, SIGMAS), eps)
    alpha = 1 / (1 + s**2).sqrt()
    v = alpha * eps - (s * alpha) * x0  # Salimans & Ho 2022: v = α ε - σ_vp x0
    torch.testing.assert_close(VPredPrecond(nn.Identity(), sigma_data=1.0).target(x0, x, SIGMAS), v)
    torch.testing.assert_close(FlowPrecond(nn.Identity()).target(x0, x, SIGMAS), eps - x0)
    # EDM eq. 8: F target = (x0 - c_skip x) / c_out.
    sd = 0.5
    edm_target = (x0 - sd**2 / (s**2 + sd**2) * x) / (s * sd / (s**2 + sd**2).sqrt())
    torch.testing.assert_close(EDMPrecond(nn.Identity(), sd).target(x0, x, SIGMAS), edm_target)


def test_flow_input_is_the_rectified_flow_interpolant() -> None:
    x0, eps = _x0_eps()
    t = torch.tensor([0.01, 0.2, 0.5, 0.7, 0.9, 0.99], dtype=torch.float64)[:, None]
    sigma = (t / (1 - t)).squeeze(1)
    c_in = FlowPrecond(nn.Identity()).scalings(sigma)[2][:, None]
    torch.testing.assert_close(c_in * (x0 + sigma[:, None] * eps), (1 - t) * x0 + t * eps)


def test_eps_vp_vpred_flow_scalings_match_their_papers() -> None:
    s = SIGMAS
    one, root = torch.ones_like(s), (1 + s**2).sqrt()
    for cls in (EpsPrecond, VPPrecond):  # ε-prediction: x0 = x - σ ε̂, net input x / sqrt(1 + σ²) (= x_VP)
        c_skip, c_out, c_in, _ = cls(nn.Identity()).scalings(s)
        for got, want in zip((c_skip, c_out, c_in), (one, -s, 1 / root)):
            torch.testing.assert_close(got, want)
    # v-prediction in VP variables z = α x0 + σ_vp ε: x0 = α z - σ_vp v with α = 1/sqrt(1 + σ²), z = α x.
    c_skip, c_out, c_in, _ = VPredPrecond(nn.Identity(), sigma_data=1.0).scalings(s)
    for got, want in zip((c_skip, c_out, c_in), (1 / root**2, -s / root, 1 / root)):
        torch.testing.assert_close(got, want)
    # Rectified flow x_t = (1 - t) x0 + t ε = x / (1 + σ), x0 = x_t - t v.
    t = s / (1 + s)
    c_skip, c_out, c_in, c_noise = FlowPrecond(nn.Identity()).scalings(s)
    for got, want in zip((c_skip, c_out, c_in, c_noise), (1 - t, -t, 1 - t, t)):
        torch.testing.assert_close(got, want)


# ----------------------------------------------------------------------------------------------------------
# Oracle nets: each returns its paper's regression target E[target | x_in] built from the exact posterior mean,
# recovering σ from c_noise and x from the net input with the paper's own formulas (not the class's scalings).
EXACT = gaussian_denoiser(0.3, 0.7)


def _edm_oracle(x_in, c_noise, cond=None, sd=0.5):
    sigma = (4 * c_noise).exp()
    x = x_in * _col(sigma**2 + sd**2).sqrt()
    c_skip, c_out = sd**2 / (sigma**2 + sd**2), sigma * sd / (sigma**2 + sd**2).sqrt()
    return (EXACT(x, sigma) - _col(c_skip) * x) / _col(c_out)  # F target of EDM eq. 8


def _eps_oracle(x_in, c_noise, cond=None):
    sigma = (4 * c_noise).exp()
    x = x_in * _col(1 + sigma**2).sqrt()
    return (x - EXACT(x, sigma)) / _col(sigma)  # E[ε | x]


def _vp_oracle(x_in, c_noise, cond=None, beta_d=19.9, beta_min=0.1):
    t = c_noise / 999
    sigma = ((0.5 * beta_d * t**2 + beta_min * t).exp() - 1).sqrt()  # EDM Table 1, VP σ(t)
    x = x_in * _col(1 + sigma**2).sqrt()
    return (x - EXACT(x, sigma)) / _col(sigma)


def _vpred_oracle(x_in, c_noise, cond=None):
    sigma = (4 * c_noise).exp()
    alpha = _col(1 / (1 + sigma**2).sqrt())
    x = x_in / alpha  # x_in = z = α x0 + σ_vp ε
    eps = (x - EXACT(x, sigma)) / _col(sigma)
    return alpha * eps - _col(sigma) * alpha * EXACT(x, sigma)  # v = α ε - σ_vp x0


def _flow_oracle(x_in, c_noise, cond=None):
    t = _col(c_noise)
    sigma = c_noise / (1 - c_noise)
    x = x_in / (1 - t)  # x_in = x_t = (1 - t) x0 + t ε
    eps = (x - EXACT(x, sigma)) / _col(sigma)
    return eps - EXACT(x, sigma)  # v = ε - x0


def _col(v: torch.Tensor) -> torch.Tensor:
    return v[:, None]


class _Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x_in, c_noise, cond=None):
        return self.fn(x_in.double(), c_noise.double(), cond)


ORACLES = {
    "edm": lambda: EDMPrecond(_Fn(_edm_oracle), sigma_data=0.5),
    "eps": lambda: EpsPrecond(_Fn(_eps_oracle)),
    "vp": lambda: VPPrecond(_Fn(_vp_oracle)),
    "vpred": lambda: VPredPrecond(_Fn(_vpred_oracle), sigma_data=1.0),
    "flow": lambda: FlowPrecond(_Fn(_flow_oracle)),
}


@pytest.mark.parametrize("name", ORACLES)
def test_oracle_nets_give_the_exact_denoiser(name: str) -> None:
    """Every parameterisation, fed its paper's exact target, is the same denoiser as EDMPrecond's: D* itself."""
    x0, eps = _x0_eps()
    sigma = SIGMAS[:-1]  # up to σ = 3: at σ = 80 float32 c_noise round-trips cost ~1e-4 relative in σ
    x = x0[:-1] + sigma[:, None] * eps[:-1]
    out = ORACLES[name]()(x, sigma)
    edm = ORACLES["edm"]()(x, sigma)
    torch.testing.assert_close(out, EXACT(x, sigma), atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(out, edm, atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("cls", ALL)
def test_c_noise_is_finite_and_distinct(cls) -> None:
    c_noise = cls(nn.Identity()).scalings(SIGMAS)[3]
    assert bool(c_noise.isfinite().all())
    assert len(set(c_noise.tolist())) == len(SIGMAS)


@pytest.mark.parametrize("cls", ALL)
def test_scalar_sigma_broadcasts_over_the_batch(cls) -> None:
    class Zero(nn.Module):
        def forward(self, x, c_noise, cond=None):
            assert c_noise.shape == (x.shape[0],)
            return torch.zeros_like(x)

    out = cls(Zero())(torch.ones(4, 1, 2, 2), torch.tensor(2.0))
    c_skip = cls(Zero()).scalings(torch.tensor([2.0]))[0]
    torch.testing.assert_close(out, torch.full((4, 1, 2, 2), float(c_skip)))
    assert not math.isnan(float(out.sum()))
