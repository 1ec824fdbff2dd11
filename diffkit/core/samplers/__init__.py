"""Samplers: functions over denoiser(x, σ, cond) walking a decreasing σ grid that ends in 0."""

from diffkit.core.samplers.gaussian import (
    ancestral_step,
    count_nfe,
    nfe_per_grid,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
)
from diffkit.core.samplers.multistep import sample_dpmpp_2s, sample_dpmpp_3m, sample_lms, sample_unipc
from diffkit.core.samplers.optimize import interpolated_sigmas, optimize_sigmas

__all__ = [
    "ancestral_step",
    "count_nfe",
    "interpolated_sigmas",
    "optimize_sigmas",
    "nfe_per_grid",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "sample_dpmpp_2s",
    "sample_dpmpp_3m",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
    "sample_lms",
    "sample_unipc",
]
