"""count_flops_once: 3 × the forward matmul FLOPs, measured once."""

import lightning as L
import torch

from diffkit.training.flops import count_flops_once


def test_counts_forward_matmuls_once_and_triples_them() -> None:
    module, layer = L.LightningModule(), torch.nn.Linear(16, 8, bias=False)
    module.flops_per_batch = None
    with count_flops_once(module):
        loss = layer(torch.randn(4, 16)).sum()
    assert module.flops_per_batch == 3 * 2 * 4 * 16 * 8  # forward 2·B·in·out, backward ≈ twice that
    loss.backward()
    with count_flops_once(module):  # later steps are not counted again
        layer(torch.randn(100, 16))
    assert module.flops_per_batch == 3 * 2 * 4 * 16 * 8
