"""DiffusionModule: the single generic LightningModule; everything specific comes in as constructed objects.

    module = DiffusionModule(denoiser=EDMPrecond(UNet(1)), process=GaussianProcess(), loss=DenoisingLoss(...),
                             modality=ImageModality(), sampler=sample_heun, schedule=partial(karras_sigmas, ...),
                             optimizer=partial(torch.optim.AdamW, lr=2e-4), conditioning=[GivenEntries(replace)])

It knows no modality: batches become (x0, cond) through the modality, conditions pass through the conditioning
components in order (modalities/base.py), and the loss, process and sampler come from diffkit.core.

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

from diffkit.core.types import Cond, Denoiser, Loss, PredrawnLoss, Process
from diffkit.modalities.base import (
    Conditioning,
    Guided,
    Hold,
    Modality,
    SamplingState,
    TrainingExample,
    declared_specs,
)
from diffkit.training.compiled import CompiledLoss
from diffkit.training.ema import EMA
from diffkit.training.flops import count_flops_once
from diffkit.training.lr import optimizer_config

CONFIG_KEY = "diffkit_config"  # checkpoint key holding the resolved run config (a plain dict)
RNG_KEY = "diffkit_rng_state"  # checkpoint key holding the global CPU RNG state (uint8 tensor)


def check_readers(denoiser: nn.Module, entries: Sequence[str]) -> None:
    """Every declared condition entry has a reader in the backbone (its `cond_keys`), else a clear ValueError."""
    net = getattr(denoiser, "net", denoiser)
    reads = getattr(net, "cond_keys", None)
    if reads is None:  # a backbone that does not declare what it reads is trusted
        return
    unread = sorted(set(entries) - set(reads))
    if unread:
        raise ValueError(
            f"the backbone {type(net).__name__} has no encoder for the condition entries {unread} (it reads "
            f"{sorted(reads)}); add one to the backbone's embeddings/inputs, or drop the conditioning producing them"
        )


class DiffusionModule(L.LightningModule):
    """Train a denoiser with an injected loss, evaluate with EMA weights, sample with an injected sampler."""

    def __init__(
        self,
        denoiser: nn.Module,
        process: Process,
        loss: Loss,
        modality: Modality,
        sampler: Callable[..., Tensor],
        schedule: Callable[[int], Tensor],
        optimizer: Callable[..., Optimizer],
        lr_scheduler: Callable[..., LRScheduler] | None = None,
        conditioning: Sequence[Conditioning] = (),  # applied in order (base.Conditioning)
        sample_steps: int = 32,  # default grid size for sample()
        ema_decay: float = 0.999,  # per-step EMA decay of the evaluation weights
        seed: int = 0,  # training noise of step k is drawn from a generator seeded by (seed, k)
        compile_training: bool = False,  # torch.compile the training loss (after the first, FLOP-counting step)
    ) -> None:
        super().__init__()
        if isinstance(sample_steps, bool) or not isinstance(sample_steps, int) or sample_steps < 1:
            raise TypeError(f"DiffusionModule: sample_steps must be a positive int, got {sample_steps!r}")
        self.denoiser = denoiser
        self.ema = EMA(denoiser, decay=ema_decay)
        self.process, self.loss, self.modality = process, loss, modality
        self.sampler, self.schedule, self.conditioning = sampler, schedule, tuple(conditioning)
        self.cond_specs = declared_specs(modality, self.conditioning)
        check_readers(denoiser, list(self.cond_specs))
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.sample_steps, self.seed = sample_steps, int(seed)
        self.train_loss = CompiledLoss(self.loss, enabled=compile_training)
        self.resolved_config: dict | None = None  # set by diffkit.config; saved into every checkpoint
        self.flops_per_batch: int | None = None  # set on the first training step (ThroughputMonitor)

    @property
    def guided(self) -> bool:
        """Whether a sampling request's guidance_scale has a component to act on."""
        return any(isinstance(c, Guided) for c in self.conditioning)

    # -- training -------------------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        x0, cond = self.modality.encode(batch)
        generator, draws = self._training_draws(x0, batch_idx)  # draws: σ, ε if the loss predraws, else generator
        example = self._example(x0, cond, generator, training=True)
        args = (self.denoiser, example.x0, example.cond)
        if self.flops_per_batch is None:  # the first step runs eagerly: it counts FLOPs for the ThroughputMonitor
            with count_flops_once(self):
                loss = self.loss(*args, weight=example.weight, **draws).mean()
        else:
            loss = self.train_loss(example.x0.shape[0], *args, weight=example.weight, **draws).mean()
        mean_loss = self._rank_mean(loss.detach())  # the same number on every rank, so all ranks stop together
        if not torch.isfinite(mean_loss):
            raise FloatingPointError(f"non-finite training loss ({mean_loss.item()}) at global step {self.global_step}")
        self.log("train/loss", mean_loss, prog_bar=True, batch_size=example.x0.shape[0])
        return loss

    def _example(self, x0: Tensor, cond: Cond, generator: Generator, *, training: bool) -> TrainingExample:
        """The modality's (x0, cond) after every conditioning component's training stage, in order."""
        example = TrainingExample(x0, cond, None, self.cond_specs, training)
        for component in self.conditioning:
            example = component.train(example, generator)
        return example

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
        if not isinstance(self.loss, PredrawnLoss):  # e.g. MaskedNELBO: draws from the per-step, per-rank generator
            return generator, {"generator": generator}
        global_gen = torch.Generator().manual_seed(hash(key) % 2**62)
        draws = self.loss.draw(x0.shape[0] * world, tuple(x0.shape[1:]), generator=global_gen)
        # The loss gets tensors only, so a compiled loss is not handed a new Generator object every step.
        return generator, {name: value[rank::world].to(x0.device) for name, value in draws.items()}

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
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        loss, size = self._scored_loss(batch, batch_idx)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=size)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        loss, size = self._scored_loss(batch, batch_idx)
        self.log("test/loss", loss, sync_dist=True, batch_size=size)

    def _scored_loss(self, batch: Mapping[str, Any], batch_idx: int) -> tuple[Tensor, int]:
        """The loss under EMA weights and the batch size; a fixed generator per batch makes it comparable."""
        x0, cond = self.modality.encode(batch)
        generator = torch.Generator(device=x0.device).manual_seed(batch_idx)
        example = self._example(x0, cond, generator, training=False)
        loss = self.loss(self.ema.module, example.x0, example.cond, generator=generator, weight=example.weight)
        return loss.mean(), x0.shape[0]

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
        hold: Hold | None = None,
        guidance_scale: float | None = None,
        guide: Callable[[Denoiser], Denoiser] | None = None,
        guidance_interval: tuple[float, float] | None = None,
    ) -> Tensor:
        """Draw n examples [n,*S] in model space; known/mask (1 = given) are held exactly (e.g. inpainting).

        The conditioning components decide how: e.g. GivenEntries wraps the denoiser with `hold` (else its own) and
        may pick its own sampler (RePaint); an explicit `sampler` wins. guidance_scale and guidance_interval (σ in
        (lo, hi]) override a guided component's.
        guide wraps the model's denoiser before the components do (so given entries stay held), e.g. cost_guidance.
        """
        if (guidance_scale is not None or guidance_interval is not None) and not self.guided:
            raise ValueError("guidance_scale and guidance_interval need a model trained with classifier-free guidance")
        device = self.device
        sigmas = (schedule or self.schedule)(steps or self.sample_steps).to(device)
        x = self.process.prior((n, *self.modality.example_shape()), device=device, generator=generator,
                               sigma=float(sigmas[0]))  # fmt: skip
        denoiser = self.ema.module if use_ema else self.denoiser
        state = SamplingState(
            denoiser=denoiser if guide is None else guide(denoiser),
            x=x,
            cond=None if cond is None else {key: value.to(device) for key, value in cond.items()},
            known=None if known is None else known.to(device),
            mask=None if mask is None else mask.to(device),
            specs=self.cond_specs,
            sampler=sampler,
            hold=hold,
            guidance_scale=guidance_scale,
            guidance_interval=guidance_interval,
        )
        for component in self.conditioning:
            state = component.prepare(state)
        x = (state.sampler or self.sampler)(state.denoiser, state.x, sigmas, cond=state.cond, generator=generator,
                                            callback=callback)  # fmt: skip
        for component in self.conditioning:
            x = component.finish(x, state)
        return x

    # -- optimisation and checkpoints -----------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        return optimizer_config(self.denoiser.parameters(), self.optimizer_factory, self.lr_scheduler_factory)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.resolved_config is not None:
            checkpoint[CONFIG_KEY] = self.resolved_config
        checkpoint[RNG_KEY] = torch.get_rng_state()  # global CPU RNG (dropout); training noise needs none

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if RNG_KEY in checkpoint:
            torch.set_rng_state(checkpoint[RNG_KEY])
