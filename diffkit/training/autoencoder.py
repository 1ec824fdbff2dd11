"""AutoencoderModule: trains the first stage of latent diffusion (a KL-regularised autoencoder) with Lightning.

    module = AutoencoderModule(autoencoder=KLAutoencoder(1, 4, (32, 64), 28), modality=ImageModality(size=28),
                               optimizer=partial(torch.optim.AdamW, lr=1e-3), kl_weight=1e-4)

The loss is the squared reconstruction error summed per example plus kl_weight times the KL term; after each
validation pass the latent scale factor (1/std of posterior samples on the validation split) is stored in the
autoencoder's `scale_factor` buffer, so every checkpoint carries it. Test scores: PSNR and SSIM of the
reconstructions (model space [-1, 1]).

References:
    Rombach et al. 2022 (LDM: KL-regularised first stage, scale factor 1/std); Kingma & Welling 2014.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import Generator, Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from diffkit.modalities.base import Modality
from diffkit.nets.autoencoder import kl_to_standard_normal
from diffkit.training.lr import optimizer_config
from diffkit.training.module import CONFIG_KEY


class AutoencoderModule(L.LightningModule):
    """Fit an autoencoder's reconstruction + KL loss; measure the latent scale factor; score PSNR/SSIM on test."""

    def __init__(
        self,
        autoencoder: nn.Module,
        modality: Modality,
        optimizer: Callable[..., Optimizer],
        lr_scheduler: Callable[..., LRScheduler] | None = None,
        kl_weight: float = 1e-4,  # LDM's KL-f weight order: a near-deterministic code, mildly regularised
        seed: int = 0,  # posterior noise of step k comes from a generator seeded by (seed, k)
        sample_steps: int = 1,  # unused: a prior draw is decoded in one call (kept so recipes may set it)
    ) -> None:
        super().__init__()
        if not kl_weight >= 0:
            raise ValueError(f"AutoencoderModule: kl_weight must be >= 0, got {kl_weight!r}")
        self.autoencoder, self.modality = autoencoder, modality
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.kl_weight, self.seed = float(kl_weight), int(seed)
        self.resolved_config: dict[str, Any] | None = None  # set by diffkit.config.build_module
        self._latent_sum = self._latent_sq = self._latent_n = 0.0

    def _x0(self, batch: Mapping[str, Any]) -> Tensor:
        return self.modality.encode(batch)[0]

    def losses(self, x0: Tensor, generator: Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(total, reconstruction, KL): per-example means over the batch."""
        recon, mean, logvar = self.autoencoder(x0, generator=generator)
        rec = (recon - x0).square().flatten(1).sum(1).mean()
        kl = kl_to_standard_normal(mean, logvar).mean()
        return rec + self.kl_weight * kl, rec, kl

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        generator = torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + self.global_step)
        loss, rec, kl = self.losses(self._x0(batch), generator)
        self.log_dict({"train/loss": loss, "train/rec": rec, "train/kl": kl}, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._latent_sum = self._latent_sq = self._latent_n = 0.0

    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        x0 = self._x0(batch)
        generator = torch.Generator(device=self.device).manual_seed(batch_idx)
        loss, rec, kl = self.losses(x0, generator)
        mean, logvar = self.autoencoder.encode(x0)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator, device=mean.device)
        self._latent_sum += float(z.sum())
        self._latent_sq += float(z.double().square().sum())
        self._latent_n += z.numel()
        self.log_dict({"val/loss": loss, "val/rec": rec, "val/kl": kl}, batch_size=len(x0))

    def on_validation_epoch_end(self) -> None:
        if self._latent_n == 0:
            return
        mu = self._latent_sum / self._latent_n
        std = max(self._latent_sq / self._latent_n - mu * mu, 1e-12) ** 0.5
        self.autoencoder.scale_factor.fill_(1.0 / std)  # LDM: z_model = scale_factor * z
        self.log("val/scale_factor", 1.0 / std)

    @torch.no_grad()
    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        x0 = self._x0(batch)
        recon = self.reconstruct(x0).clamp(-1, 1)
        kernel, sigma = (3, 0.5) if x0.shape[-1] < 16 else (7, 1.0)
        ssim = structural_similarity_index_measure(recon, x0, data_range=2.0, kernel_size=kernel, sigma=sigma)
        psnr = peak_signal_noise_ratio(recon, x0, data_range=2.0)
        self.log_dict({"test/ssim": ssim, "test/psnr": psnr}, batch_size=len(x0))

    @torch.no_grad()
    def reconstruct(self, x0: Tensor) -> Tensor:
        """decode(encode(x0)) through the posterior mean."""
        return self.autoencoder.decode(self.autoencoder.encode(x0)[0])

    @torch.no_grad()
    def sample(self, n: int, cond: Any = None, *, generator: Generator | None = None, **_: Any) -> Tensor:
        """Decodings of n draws from the latent prior N(0, I) (a VAE sample; a showcase, not a good generator)."""
        shape = (n, *self.autoencoder.latent_shape())
        return self.autoencoder.decode(torch.randn(shape, generator=generator).to(self.device))

    def configure_optimizers(self) -> Any:
        return optimizer_config(self.autoencoder.parameters(), self.optimizer_factory, self.lr_scheduler_factory)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.resolved_config is not None:
            checkpoint[CONFIG_KEY] = self.resolved_config
