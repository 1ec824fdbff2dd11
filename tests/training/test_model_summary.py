"""ParamSummary: Lightning's model summary without the FLOPs column that reads 0; with_model_summary wiring."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary import summarize

from diffkit.training.model_summary import ParamSummary, with_model_summary


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 3)


def test_param_summary_prints_parameters_and_no_flops(capsys) -> None:
    summary = summarize(Tiny(), max_depth=1)
    ParamSummary.summarize(
        summary._get_summary_data(),
        summary.total_parameters,
        summary.trainable_parameters,
        summary.model_size,
        summary.total_training_modes,
        summary.total_flops,
    )
    out = capsys.readouterr().out
    assert "net" in out and "Linear" in out and "Total params: 15" in out
    assert "FLOPs" not in out and "Flops" not in out


def test_with_model_summary_adds_one_unless_disabled() -> None:
    assert [type(c) for c in with_model_summary([], enabled=True)] == [ParamSummary]
    own = ModelSummary(max_depth=2)
    assert with_model_summary([own], enabled=True) == [own]  # a listed summary is kept as it is
    assert with_model_summary([own], enabled=False) == []
