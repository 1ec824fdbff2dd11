"""DiffusionModule: the single generic LightningModule; everything specific comes in as constructed objects.

    module = DiffusionModule(denoiser=EDMPrecond(UNet(1)), process=GaussianProcess(), loss=DenoisingLoss(...),
                             modality=ImageModality(), sampler=sample_heun, schedule=partial(karras_sigmas, ...),
                             optimizer=partial(torch.optim.AdamW, lr=2e-4))

References:
    lightning-hydra-template (objects in, configs at the edge); Karras et al. 2022 (EMA evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import Generator, Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from diffkit.core.guidance import drop_cond, replace, replace_tokens, with_known
from diffkit.core.types import Cond, Denoiser, Process
from diffkit.modalities.base import Modality
from diffkit.training.compiled import CompiledLoss
from diffkit.training.ema import EMA
from diffkit.training.flops import count_flops_once

CONFIG_KEY = "diffkit_config"  # checkpoint key holding the resolved run config (a plain dict)
RNG_KEY = "diffkit_rng_state"  # checkpoint key holding the global CPU RNG state (uint8 tensor)


class DiffusionModule(L.LightningModule):
    """Train a denoiser with an injected loss, evaluate with EMA weights, sample with an injected sampler."""

    def __init__(
        self,
        denoiser: nn.Module,
        process: Process,
        loss: Callable[..., Tensor],
        modality: Modality,
        sampler: Callable[..., Tensor],
        schedule: Callable[[int], Tensor],
        optimizer: Callable[..., Optimizer],
        lr_scheduler: Callable[..., LRScheduler] | None = None,
        guidance: Sequence[Callable[..., Denoiser]] = (),
        sample_steps: int = 32,  # default grid size for sample()
        ema_decay: float = 0.999,  # per-step EMA decay of the evaluation weights
        cond_dropout: float = 0.0,  # probability of dropping the condition (classifier-free guidance training)
        seed: int = 0,  # training noise of step k is drawn from a generator seeded by (seed, k)
        inpaint: Callable[[Denoiser, Tensor, Tensor], Denoiser] | None = None,  # (denoiser, known, mask) -> denoiser
        inpaint_sampler: Callable[..., Tensor] | None = None,  # sampler when known entries are given; None = sampler
        train_masks: Callable[[Tensor, Generator], Tensor] | None = None,  # learned inpainting: (x0, gen) -> mask
        compile_training: bool = False,  # torch.compile the training loss (after the first, FLOP-counting step)
    ) -> None:
        super().__init__()
        if isinstance(sample_steps, bool) or not isinstance(sample_steps, int) or sample_steps < 1:
            raise TypeError(f"DiffusionModule: sample_steps must be a positive int, got {sample_steps!r}")
        if not 0.0 <= float(cond_dropout) < 1.0:
            raise ValueError(f"DiffusionModule: cond_dropout must be in [0, 1), got {cond_dropout!r}")
        self.denoiser = denoiser
        self.ema = EMA(denoiser, decay=ema_decay)
        self.process, self.loss, self.modality = process, loss, modality
        self.sampler, self.schedule, self.guidance = sampler, schedule, tuple(guidance)
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.sample_steps, self.cond_dropout, self.seed = sample_steps, cond_dropout, int(seed)
        self.inpaint, self.inpaint_sampler, self.train_masks = inpaint, inpaint_sampler, train_masks
        self.train_loss = CompiledLoss(self.loss, enabled=compile_training)
        self.resolved_config: dict | None = None  # set by diffkit.config; saved into every checkpoint
        self.flops_per_batch: int | None = None  # set on the first training step (ThroughputMonitor)

    # -- training -------------------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        x0, cond = self.modality.encode(batch)
        generator, draws = self._training_draws(x0, batch_idx)  # draws: σ, ε if the loss can take them, else generator
        cond = drop_cond(self._known_cond(x0, cond, generator), self.cond_dropout, generator)
        if self.flops_per_batch is None:  # the first step runs eagerly: it counts FLOPs for the ThroughputMonitor
            with count_flops_once(self):
                loss = self.loss(self.denoiser, x0, cond, **draws).mean()
        else:
            loss = self.train_loss(x0.shape[0], self.denoiser, x0, cond, **draws).mean()
        mean_loss = self._rank_mean(loss.detach())  # the same number on every rank, so all ranks stop together
        if not torch.isfinite(mean_loss):
            raise FloatingPointError(f"non-finite training loss ({mean_loss.item()}) at global step {self.global_step}")
        self.log("train/loss", mean_loss, prog_bar=True, batch_size=x0.shape[0])
        return loss

    def _training_draws(self, x0: Tensor, batch_idx: int) -> tuple[Generator, dict[str, Any]]:
        """This rank's share [rank::world] of σ, ε drawn for the whole global batch, seeded by (seed, step, micro).

        Every rank draws the same global noise and keeps the rows of its own examples (DistributedSampler deals
        example i of a global batch to rank i % world), so N ranks compute exactly what one process would, and a
        resumed run repeats the draws of the run it continues: no RNG state is needed.
        """
        world, rank, accumulate = 1, 0, 1
        if self._trainer is not None:
            world, rank, accumulate = (
                self.trainer.world_size,
                self.trainer.global_rank,
                self.trainer.accumulate_grad_batches,
            )
        key = (self.seed, self.global_step, batch_idx % accumulate)  # micro-batches of one step differ
        generator = torch.Generator(device=x0.device).manual_seed(hash((*key, rank)) % 2**62)
        draw = getattr(self.loss, "draw", None)
        if draw is None:  # a loss without draw() (e.g. MaskedNELBO) uses the per-step, per-rank generator itself
            return generator, {"generator": generator}
        global_gen = torch.Generator().manual_seed(hash(key) % 2**62)
        sigma, noise = draw(x0.shape[0] * world, tuple(x0.shape[1:]), generator=global_gen)
        # The loss gets tensors only, so a compiled loss is not handed a new Generator object every step.
        return generator, {"sigma": sigma[rank::world].to(x0.device), "noise": noise[rank::world].to(x0.device)}

    def _rank_mean(self, value: Tensor) -> Tensor:
        if self._trainer is None or self.trainer.world_size == 1:
            return value
        return self.trainer.strategy.reduce(value, reduce_op="mean")

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        # After the DDP all-reduce: the gradients, hence this norm, are the same on every rank.
        grads = [p.grad for p in self.denoiser.parameters() if p.grad is not None]
        grad_norm = torch.stack(torch._foreach_norm(grads)).norm()  # one fused call, not one per tensor
        if not torch.isfinite(grad_norm):
            raise FloatingPointError(
                f"non-finite gradient norm ({grad_norm.item()}) at global step {self.global_step}; "
                "lower the learning rate or enable gradient clipping (trainer.gradient_clip_val)"
            )
        self.log("train/grad_norm", grad_norm, batch_size=1)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        # Right after the step, before any callback's on_train_batch_end: a checkpoint written there holds the
        # EMA of the same step as the weights (exact resume).
        self.ema.update(self.denoiser)

    # -- evaluation -----------------------------------------------------------------------------------------
    def _known_cond(self, x0: Tensor, cond: Cond, generator: Generator) -> Cond:
        """With train_masks: add {"known", "mask"} (1 = known; an all-zero row = nothing known) to the condition."""
        if self.train_masks is None:
            return cond
        mask = self.train_masks(x0, generator).to(x0.dtype)
        return {**cond, "known": x0 * mask, "mask": mask}

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        x0, cond = self.modality.encode(batch)
        # A fixed generator per batch makes the validation loss comparable across epochs.
        generator = torch.Generator(device=x0.device).manual_seed(batch_idx)
        cond = self._known_cond(x0, cond, generator)
        loss = self.loss(self.ema.module, x0, cond, generator=generator).mean()
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=x0.shape[0])

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        x0, cond = self.modality.encode(batch)
        generator = torch.Generator(device=x0.device).manual_seed(batch_idx)
        cond = self._known_cond(x0, cond, generator)
        loss = self.loss(self.ema.module, x0, cond, generator=generator).mean()
        self.log("test/loss", loss, sync_dist=True, batch_size=x0.shape[0])

    # -- sampling -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond: Cond | None = None,
        *,
        steps: int | None = None,
        generator: Generator | None = None,
        sampler: Callable[..., Tensor] | None = None,
        schedule: Callable[[int], Tensor] | None = None,
        known: Tensor | None = None,
        mask: Tensor | None = None,
        use_ema: bool = True,
        callback: Callable[[dict], None] | None = None,
        inpaint: Callable[[Denoiser, Tensor, Tensor], Denoiser] | None = None,
    ) -> Tensor:
        """Draw n examples [n,*S] in model space; with known/mask (1 = keep) inpaint / infill.

        Conditioning on known entries uses `inpaint` (else the module's, else replacement / replace_tokens) and
        `sampler`, else the module's inpaint_sampler (e.g. RePaint resampling), else its sampler. A module trained
        with train_masks also hands known/mask to the network, inside any guidance (learned inpainting).
        """
        denoiser: Denoiser = self.ema.module if use_ema else self.denoiser
        given = known is not None and mask is not None
        if given:
            known, mask = known.to(self.device), mask.to(self.device)
        if given and self.train_masks is not None:
            denoiser = with_known(denoiser, known, mask)  # the net reads them, inside any guidance
        for wrap in self.guidance:
            denoiser = wrap(denoiser)
        discrete = self.modality.kind == "discrete"
        if given:
            inpaint = inpaint or self.inpaint or (replace_tokens if discrete else replace)
            denoiser = inpaint(denoiser, known, mask)
            sampler = sampler or self.inpaint_sampler
        sigmas = (schedule or self.schedule)(steps or self.sample_steps).to(self.device)
        shape = (n, *self.modality.example_shape())
        x = self.process.prior(shape, device=self.device, generator=generator, sigma=float(sigmas[0]))
        if discrete and given:
            x = torch.where(mask.to(torch.bool), known.to(x.dtype), x)  # given tokens are visible from the start
        x = (sampler or self.sampler)(denoiser, x, sigmas, cond=cond, generator=generator, callback=callback)
        if given:
            x = torch.where(mask.to(torch.bool), known.to(x.dtype), x)  # exact on known entries
        return x

    # -- optimisation and checkpoints -----------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.denoiser.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.resolved_config is not None:
            checkpoint[CONFIG_KEY] = self.resolved_config
        checkpoint[RNG_KEY] = torch.get_rng_state()  # global CPU RNG (dropout); training noise needs none

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if RNG_KEY in checkpoint:
            torch.set_rng_state(checkpoint[RNG_KEY])
