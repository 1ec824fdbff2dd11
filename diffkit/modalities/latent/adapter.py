"""Latent diffusion: a Gaussian modality whose x0 are the scaled latents of a frozen KL autoencoder.

    modality = LatentModality(autoencoder_ckpt="outputs/.../last.ckpt", inner=ImageModality(size=28, num_classes=10))
    x0, cond = modality.encode(batch)   # [B,4,7,7] = scale_factor * posterior mean; cond from the inner modality
    pixels = modality.decode(x0)        # decoder -> the inner modality's decode (uint8)
    z_known, z_mask = modality.latent_given(known, mask)  # inpainting: pixel masks mapped to latent cells

The core, the loss and the samplers are unchanged: they see a [B,C,h,w] Gaussian example of unit std.

References:
    Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models" (scale factor 1/std);
    Lugmayr et al. 2022 (inpainting by replacement, here on the latent cells whose pixels are all known).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from diffkit.core.types import Cond, CondSpec
from diffkit.modalities.base import DataError, Request
from diffkit.nets.autoencoder import KLAutoencoder

AUTOENCODER_TARGET = "diffkit.nets.autoencoder.KLAutoencoder"
CONFIG_KEY = "diffkit_config"  # the checkpoint key of the stored run config (diffkit.training.module.CONFIG_KEY)
ARGS = ("in_channels", "latent_channels", "channels", "size")


def load_autoencoder(path: str | os.PathLike) -> KLAutoencoder:
    """A frozen KLAutoencoder from an `image/fashion_mnist_vae`-style checkpoint: torch.load(weights_only=True),
    built from the stored constructor arguments only (no `_target_` is instantiated), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"autoencoder_ckpt not found: {path} (train one: python -m diffkit.train "
                        "recipe=image/fashion_mnist_vae)")  # fmt: skip
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        spec = checkpoint[CONFIG_KEY]["module"]["autoencoder"]
        state = checkpoint["state_dict"]
    except (KeyError, TypeError) as err:
        raise DataError(f"autoencoder_ckpt {path} is not an autoencoder checkpoint (no {err})") from None
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, zip errors for damaged files
        raise DataError(f"autoencoder_ckpt {path} cannot be read: {str(err).splitlines()[0]}") from None
    if spec.get("_target_") != AUTOENCODER_TARGET:
        raise DataError(f"autoencoder_ckpt {path} holds a {spec.get('_target_')}, not a {AUTOENCODER_TARGET}")
    autoencoder = KLAutoencoder(**{k: spec[k] for k in ARGS if k in spec})
    prefix = "autoencoder."
    autoencoder.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return autoencoder.eval().requires_grad_(False)


def latent_mask(mask: Tensor, latent_size: tuple[int, int]) -> Tensor:
    """Pixel mask [B,C,H,W] (1 = known) -> latent mask [B,1,h,w]: a cell is known when every pixel it covers is."""
    factor = mask.shape[-1] // latent_size[-1]
    if mask.shape[-2] != factor * latent_size[-2] or mask.shape[-1] != factor * latent_size[-1]:
        raise DataError(f"a pixel mask of shape {tuple(mask.shape)} does not tile latents of size {latent_size}")
    known = mask.amin(dim=1, keepdim=True).float()
    return -F.max_pool2d(-known, factor)  # min-pool: all pixels of the cell known


def latent_given(autoencoder: KLAutoencoder, scale_factor: float, known: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Pixels given where mask = 1 -> (scaled latents of the masked image, latent mask of fully known cells)."""
    with torch.no_grad():
        z = scale_factor * autoencoder.to(known.device).encode((known * mask).float())[0]
    return z, latent_mask(mask, tuple(z.shape[-2:])).to(z.dtype).expand(-1, z.shape[1], -1, -1)


class LatentModality:
    """Scaled autoencoder latents [B,c,h,w] as x0; conditions, requests and files from the inner modality."""

    def __init__(self, autoencoder_ckpt: str, inner: Any, sigma_data: float = 1.0, channels: int | None = None) -> None:
        self.autoencoder_ckpt, self.inner = str(autoencoder_ckpt), inner
        self.autoencoder = load_autoencoder(autoencoder_ckpt)
        self.scale_factor = float(self.autoencoder.scale_factor)
        self.sigma_data = float(sigma_data)  # scaled latents have unit std (LDM); EDM's σ_data
        self.bin_width = None  # latents are continuous: no dequantised likelihood
        self.channels = self.autoencoder.latent_channels
        if channels is not None and int(channels) != self.channels:
            raise DataError(f"modality.channels={channels} but the autoencoder {autoencoder_ckpt} has "
                            f"{self.channels} latent channels")  # fmt: skip
        inner_shape = tuple(inner.example_shape())
        if inner_shape != (self.autoencoder.in_channels, self.autoencoder.size, self.autoencoder.size):
            ae = self.autoencoder
            raise DataError(
                f"the autoencoder {autoencoder_ckpt} reads {ae.in_channels}x{ae.size}x{ae.size} inputs; "
                f"the inner modality gives {inner_shape}"
            )

    def __getattr__(self, name: str) -> Any:  # e.g. num_classes of the inner modality
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def example_shape(self) -> tuple[int, ...]:
        return self.autoencoder.latent_shape()

    def cond_specs(self) -> tuple[CondSpec, ...]:
        return tuple(self.inner.cond_specs())

    @torch.no_grad()
    def to_latent(self, x: Tensor) -> Tensor:
        """Inner model space [B,C,H,W] -> scaled latents: scale_factor * posterior mean."""
        ae = self.autoencoder.to(x.device)
        return self.scale_factor * ae.encode(x.float())[0]

    @torch.no_grad()
    def from_latent(self, z: Tensor) -> Tensor:
        """Scaled latents -> the inner modality's model space (the decoder's output, clamped to [-1, 1])."""
        ae = self.autoencoder.to(z.device)
        return ae.decode(z.float() / self.scale_factor).clamp(-1, 1)

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Cond]:
        x, cond = self.inner.encode(batch)
        return self.to_latent(x), cond

    def decode(self, x0: Tensor, cond: Cond | None = None) -> Any:
        return self.inner.decode(self.from_latent(x0), cond)

    def latent_given(self, known: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Given pixels [B,C,H,W] (mask 1 = known) -> given latents [B,c,h,w] and their mask (fully known cells)."""
        return latent_given(self.autoencoder, self.scale_factor, known, mask)

    def request(self, n: int, **args: Any) -> Request:
        """The inner modality's request; given pixels (inpainting) become given latent cells (latent_given)."""
        request = self.inner.request(n, **args)
        if request.known is None or request.mask is None:
            return request
        known, mask = self.latent_given(request.known, request.mask.expand_as(request.known))
        return Request(cond=request.cond, known=known, mask=mask)

    def log_samples(self, samples: Any, logger: Any, step: int, out_dir: str | None = None) -> None:
        self.inner.log_samples(samples, logger, step, out_dir)


class LatentEvaluator:
    """Runs an inner (pixel-space) evaluator on decoded samples: FD, class accuracy, etc. through the decoder."""

    def __init__(self, inner: Any, autoencoder_ckpt: str) -> None:
        self.inner = inner
        self.autoencoder = load_autoencoder(autoencoder_ckpt)
        self.scale_factor = float(self.autoencoder.scale_factor)

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        return self.autoencoder.to(z.device).decode(z.float() / self.scale_factor).clamp(-1, 1).cpu()

    def headlines(self) -> Any:
        return self.inner.headlines()

    def run(self, sample_fn: Any, inpaint_fn: Any = None) -> dict[str, float]:
        """The inner evaluator's metrics of decoded samples; inpainting holds the fully known latent cells, decodes,
        and puts the given pixels back (decoded-space replacement), so every method keeps the known pixels."""

        def pixel_inpaint(known: Tensor, mask: Tensor, cond: Any) -> Tensor:
            mask = mask.expand_as(known)
            z_known, z_mask = latent_given(self.autoencoder, self.scale_factor, known, mask)
            decoded = self.decode(inpaint_fn(z_known, z_mask, cond))
            return torch.where(mask.bool(), known, decoded)

        return self.inner.run(lambda n, cond: self.decode(sample_fn(n, cond)), pixel_inpaint if inpaint_fn else None)
