"""A KL-regularised convolutional autoencoder (the first stage of latent diffusion); torch only, knows no diffusion.

    ae = KLAutoencoder(in_channels=1, latent_channels=4, channels=(32, 64), size=28)   # 28x28 -> 4x7x7
    mean, logvar = ae.encode(x); z = ae.scale_factor * mean; x_hat = ae.decode(z / ae.scale_factor)

References:
    Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models" (KL-f4 autoencoder, the
    latent scale factor 1/std); Kingma & Welling 2014 (the Gaussian posterior and its KL to N(0, I)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class _Res(nn.Module):
    """Residual block: two GroupNorm-SiLU-conv3x3 layers plus a (1x1 when widths differ) skip (He et al. 2016)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(min(8, in_ch), in_ch), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.GroupNorm(min(8, out_ch), out_ch), nn.SiLU(), nn.Conv2d(out_ch, out_ch, 3, padding=1),
        )  # fmt: skip
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class KLAutoencoder(nn.Module):
    """Encoder to a diagonal Gaussian posterior over [latent_channels, size/2^k, size/2^k], decoder back (LDM KL-f)."""

    def __init__(
        self,
        in_channels: int = 1,
        latent_channels: int = 4,
        channels: Sequence[int] = (32, 64),  # width per level; each level after the first halves the side
        size: int = 28,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or any(c < 1 for c in channels) or latent_channels < 1 or in_channels < 1:
            raise ValueError(f"KLAutoencoder: channels {channels} and latent_channels must be positive")
        downs = len(channels) - 1
        if size % (2**downs):
            raise ValueError(f"KLAutoencoder: size {size} is not divisible by 2^{downs} (channels {channels})")
        self.in_channels, self.latent_channels, self.size = in_channels, latent_channels, size
        self.latent_size = size // 2**downs
        enc: list[nn.Module] = [nn.Conv2d(in_channels, channels[0], 3, padding=1), _Res(channels[0], channels[0])]
        for a, b in zip(channels[:-1], channels[1:], strict=True):
            enc += [nn.Conv2d(a, b, 3, stride=2, padding=1), _Res(b, b)]
        enc += [nn.GroupNorm(min(8, channels[-1]), channels[-1]), nn.SiLU(),
                nn.Conv2d(channels[-1], 2 * latent_channels, 3, padding=1)]  # fmt: skip
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [
            nn.Conv2d(latent_channels, channels[-1], 3, padding=1),
            _Res(channels[-1], channels[-1]),
        ]
        for a, b in zip(channels[::-1][:-1], channels[::-1][1:], strict=True):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, padding=1), _Res(b, b)]
        dec += [nn.GroupNorm(min(8, channels[0]), channels[0]), nn.SiLU(),
                nn.Conv2d(channels[0], in_channels, 3, padding=1)]  # fmt: skip
        self.decoder = nn.Sequential(*dec)
        self.register_buffer("scale_factor", torch.ones(()))  # 1/std of the latents, measured after training

    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_size, self.latent_size)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance [B, latent_channels, h, w] (log-variance clamped as in LDM)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, self.size, self.size):
            raise ValueError(f"KLAutoencoder.encode: input has shape {tuple(x.shape)}; expected "
                             f"[B, {self.in_channels}, {self.size}, {self.size}]")  # fmt: skip
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor) -> Tensor:
        """Unscaled latents [B, latent_channels, h, w] -> reconstructions [B, in_channels, size, size]."""
        if z.ndim != 4 or tuple(z.shape[1:]) != self.latent_shape():
            raise ValueError(f"KLAutoencoder.decode: latents have shape {tuple(z.shape)}; expected "
                             f"[B, {', '.join(map(str, self.latent_shape()))}]")  # fmt: skip
        return self.decoder(z)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction from a posterior sample (reparameterisation), with the posterior's mean and log-variance."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return self.decode(mean + (0.5 * logvar).exp() * eps), mean, logvar


def kl_to_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, e^logvar) || N(0, I)) per example [B], summed over latent elements (Kingma & Welling 2014)."""
    kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)
    return kl.flatten(1).sum(1)
