"""The modality-agnostic diffusion core (torch only): schedules, processes, preconditioners, losses, samplers."""

from diffkit.core.guidance import cfg, drop_cond, replace, replace_tokens
from diffkit.core.losses import DenoisingLoss, MaskedNELBO
from diffkit.core.precond import EDMPrecond, EpsPrecond, FlowPrecond, SubsPrecond, VPPrecond, VPredPrecond
from diffkit.core.processes import GaussianProcess, MaskingProcess
from diffkit.core.samplers import (
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
    sample_masked_ancestral,
    sample_masked_cached,
    sample_tau_leaping,
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
    loglinear_noise,
    loglinear_sigmas,
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
    "loglinear_sigmas",
    "loglinear_noise",
    "sample_tau_leaping",
    "sample_masked_cached",
    "sample_masked_ancestral",
    "replace_tokens",
    "SubsPrecond",
    "MaskingProcess",
    "MaskedNELBO",
    "DenoisingLoss",
    "EDMPrecond",
    "EpsPrecond",
    "FlowPrecond",
    "GaussianProcess",
    "VPPrecond",
    "VPredPrecond",
    "append_dims",
    "cfg",
    "cosine_interpolated",
    "ddpm_sigmas",
    "drop_cond",
    "edm_weight",
    "exponential_sigmas",
    "flow_weight",
    "karras_sigmas",
    "linear_t_sigmas",
    "log_normal",
    "log_uniform",
    "logit_normal",
    "min_snr_weight",
    "replace",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
    "snr_weight",
    "soft_min_snr_weight",
    "to_d",
    "uniform_t",
    "unit_weight",
]
