"""Samplers: functions over denoiser(x, σ, cond) walking a decreasing σ grid that ends in 0."""

from diffkit.core.samplers.discrete import sample_masked_ancestral, sample_masked_cached, sample_tau_leaping
from diffkit.core.samplers.gaussian import (
    ancestral_step,
    nfe_per_grid,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
)

__all__ = [
    "ancestral_step",
    "nfe_per_grid",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
    "sample_masked_ancestral",
    "sample_masked_cached",
    "sample_tau_leaping",
]
