"""Samplers: functions over denoiser(x, σ, cond) walking a decreasing σ grid that ends in 0."""

from diffkit.core.samplers.discrete import sample_masked_ancestral, sample_masked_cached, sample_tau_leaping
from diffkit.core.samplers.gaussian import (
    ancestral_step,
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
from diffkit.core.samplers.likelihood import bits_per_dim, dequantize, pf_ode_log_likelihood
from diffkit.core.samplers.multistep import sample_dpmpp_2s, sample_dpmpp_3m, sample_lms, sample_unipc
from diffkit.core.samplers.optimize import fitted_sigmas, interpolated_sigmas, optimize_grid, optimize_sigmas

__all__ = [
    "ancestral_step",
    "bits_per_dim",
    "count_nfe",
    "dequantize",
    "fitted_sigmas",
    "interpolated_sigmas",
    "optimize_grid",
    "optimize_sigmas",
    "pf_ode_log_likelihood",
    "nfe_per_grid",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "sample_dpmpp_2s",
    "sample_dpmpp_3m",
    "sample_euler",
    "repaint_path",
    "sample_euler_ancestral",
    "sample_heun",
    "sample_lms",
    "sample_unipc",
    "sample_masked_ancestral",
    "sample_masked_cached",
    "sample_tau_leaping",
]
