"""The modality-agnostic diffusion core (torch only): schedules, processes, preconditioners, losses, samplers."""

from diffkit.core.guidance import cfg, drop_cond, replace
from diffkit.core.losses import DenoisingLoss
from diffkit.core.precond import EDMPrecond, EpsPrecond, FlowPrecond, VPPrecond, VPredPrecond
from diffkit.core.processes import GaussianProcess
from diffkit.core.samplers import (
    count_nfe,
    interpolated_sigmas,
    optimize_sigmas,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_dpmpp_2s,
    sample_dpmpp_3m,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
    sample_lms,
    sample_unipc,
)
from diffkit.core.schedules import (
    cosine_interpolated,
    ddpm_sigmas,
    exponential_sigmas,
    karras_sigmas,
    linear_t_sigmas,
    log_normal,
    log_uniform,
    logit_normal,
    uniform_t,
)
from diffkit.core.utils import append_dims, to_d
from diffkit.core.weighting import (
    edm_weight,
    flow_weight,
    min_snr_weight,
    snr_weight,
    soft_min_snr_weight,
    unit_weight,
)

__all__ = [
    "DenoisingLoss",
    "EDMPrecond",
    "EpsPrecond",
    "FlowPrecond",
    "GaussianProcess",
    "VPPrecond",
    "VPredPrecond",
    "append_dims",
    "cfg",
    "count_nfe",
    "cosine_interpolated",
    "ddpm_sigmas",
    "drop_cond",
    "edm_weight",
    "exponential_sigmas",
    "flow_weight",
    "interpolated_sigmas",
    "karras_sigmas",
    "linear_t_sigmas",
    "log_normal",
    "log_uniform",
    "logit_normal",
    "min_snr_weight",
    "optimize_sigmas",
    "replace",
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
    "snr_weight",
    "soft_min_snr_weight",
    "to_d",
    "uniform_t",
    "unit_weight",
]
