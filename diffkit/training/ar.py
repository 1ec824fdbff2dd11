"""ARModule: the autoregressive baseline of a masked diffusion LM over ids [B,L], same backbone, data and budget.

    module = ARModule(net=DiT(128, 128, causal=True), modality=modality, optimizer=partial(AdamW, lr=1e-3))

A separate LightningModule rather than a DiffusionModule variant: next-token likelihood has no noise level, no
process and no denoiser over σ, so folding it in would need if-branches in every method. It keeps the parts that
make the comparison fair identical: the modality, the data, the EMA evaluation weights and the optimiser.
The first token is predicted from a start token ([MASK], never a data token), so the test loss is nats per token
over all L positions, the same count as the masked-diffusion NELBO.

References:
    Radford et al. 2019 (GPT-2, next-token cross-entropy); Sahoo et al. 2024 (MDLM, the AR baseline protocol).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Generator, Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from diffkit.core.types import Cond
from diffkit.modalities.base import Modality
from diffkit.training.compiled import CompiledLoss
from diffkit.training.ema import EMA
from diffkit.training.flops import count_flops_once
from diffkit.training.lr import optimizer_config
from diffkit.training.module import CONFIG_KEY


class ARModule(L.LightningModule):
    """Next-token cross-entropy on ids [B,L] with a causal net(ids, c_noise, cond) -> logits [B,L,V]."""

    def __init__(
        self,
        net: nn.Module,
        modality: Modality,
        optimizer: Callable[..., Optimizer],
        lr_scheduler: Callable[..., LRScheduler] | None = None,
        start_id: int = 0,  # start token fed before the first position (the modality's mask id: never data)
        sample_steps: int = 1,  # unused by AR sampling (one step per token); kept for the sampling CLI
        ema_decay: float = 0.999,
        compile_training: bool = False,  # torch.compile the training loss (after the first, FLOP-counting step)
    ) -> None:
        super().__init__()
        self.net, self.ema = net, EMA(net, decay=ema_decay)
        self.modality, self.start_id, self.sample_steps = modality, start_id, sample_steps
        self.optimizer_factory, self.lr_scheduler_factory = optimizer, lr_scheduler
        self.resolved_config: dict | None = None
        self.flops_per_batch: int | None = None  # set on the first training step (ThroughputMonitor)
        self.train_loss = CompiledLoss(self.nll, enabled=compile_training)

    guided = False  # no guidance: a sampling request's guidance_scale has nothing to act on

    def nll(self, net: nn.Module, x0: Tensor) -> Tensor:
        """Per-example negative log-likelihood in nats/token [B]: -1/L Σ_l log p(x_l | x_<l)."""
        inputs = torch.cat([torch.full_like(x0[:, :1], self.start_id), x0[:, :-1]], dim=1)
        logits = net(inputs, None, None).float()
        return F.cross_entropy(logits.transpose(1, 2), x0, reduction="none").mean(dim=1)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        x0, _ = self.modality.encode(batch)
        if self.flops_per_batch is None:  # the first step runs eagerly: it counts FLOPs for the ThroughputMonitor
            with count_flops_once(self):
                loss = self.nll(self.net, x0).mean()
        else:
            loss = self.train_loss(x0.shape[0], self.net, x0).mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=x0.shape[0])
        return loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        # Once per optimizer step (not per micro-batch) and before any callback's on_train_batch_end, so a
        # checkpoint written there holds the EMA of the same step as the weights (exact resume).
        self.ema.update(self.net)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        x0, _ = self.modality.encode(batch)
        self.log("val/loss", self.nll(self.ema.module, x0).mean(), prog_bar=True, sync_dist=True, batch_size=len(x0))

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        x0, _ = self.modality.encode(batch)
        self.log("test/loss", self.nll(self.ema.module, x0).mean(), sync_dist=True, batch_size=len(x0))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond: Cond | None = None,
        *,
        steps: int | None = None,
        generator: Generator | None = None,
        known: Tensor | None = None,
        mask: Tensor | None = None,
        use_ema: bool = True,
        **_: Any,  # sampler/schedule/callback of the diffusion interface have no AR meaning
    ) -> Tensor:
        """Ancestral next-token sampling at temperature 1 [n,L]; known/mask (1 = given) force those tokens."""
        net = self.ema.module if use_ema else self.net
        (length,) = self.modality.example_shape()
        x = torch.full((n, length + 1), self.start_id, dtype=torch.long, device=self.device)
        for i in range(length):
            probs = net(x[:, : i + 1], None, None)[:, -1].float().softmax(-1).double()
            u = torch.rand(n, generator=generator, device=generator.device if generator else self.device)
            token = torch.searchsorted(probs.cumsum(-1), u.to(self.device)[:, None].double(), right=True)
            token = token.squeeze(-1).clamp_max(probs.shape[-1] - 1)
            if known is not None and mask is not None:
                token = torch.where(mask[:, i].to(self.device, torch.bool), known[:, i].to(self.device), token)
            x[:, i + 1] = token
        return x[:, 1:]

    def configure_optimizers(self) -> Any:
        return optimizer_config(self.net.parameters(), self.optimizer_factory, self.lr_scheduler_factory)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.resolved_config is not None:
            checkpoint[CONFIG_KEY] = self.resolved_config
