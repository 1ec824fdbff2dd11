"""track_slices yields every batch in order and reports each one; the training bar counts steps."""

import logging

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from diffkit.training.progress import StepProgressBar, track_slices


class _Regression(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tmp_path, **budget: int) -> tuple[StepProgressBar, L.Trainer, _Regression]:
    bar, module = StepProgressBar(), _Regression()
    trainer = L.Trainer(callbacks=[bar], logger=False, enable_checkpointing=False, enable_model_summary=False,
                        default_root_dir=tmp_path, accelerator="cpu", **budget)  # fmt: skip
    trainer.fit(module, DataLoader(TensorDataset(torch.randn(6, 2)), batch_size=2))  # 3 steps an epoch
    return bar, trainer, module


def test_step_bar_shows_steps_of_the_budget_and_the_time_left(tmp_path) -> None:
    bar, trainer, module = _fit(tmp_path, max_steps=7, max_epochs=-1)
    metrics = bar.get_metrics(trainer, module)
    assert metrics["step"] == "7/7" and metrics["left"] == "0:00:00"
    assert bar._get_train_description(2).strip() == "Epoch 2"  # Lightning's own bar says "Epoch 2/-2" here


def test_step_bar_with_an_epoch_budget_keeps_lightnings_epoch_count(tmp_path) -> None:
    bar, trainer, module = _fit(tmp_path, max_epochs=2)
    assert "step" not in bar.get_metrics(trainer, module)  # max_steps=-1: no step budget to count against
    assert bar._get_train_description(1).strip() == "Epoch 1/1"


def test_yields_all_slices_and_logs_each_batch(caplog: pytest.LogCaptureFixture) -> None:
    slices = [slice(0, 5), slice(5, 10), slice(10, 12)]
    with caplog.at_level(logging.INFO, logger="diffkit.training.progress"):
        assert list(track_slices(slices, "sampling")) == slices
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" done")[0] for line in lines] == ["sampling: 5/12", "sampling: 10/12", "sampling: 12/12"]
    assert lines[-1].endswith("about 0 s left")


def test_no_slices_no_output(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="diffkit.training.progress"):
        assert list(track_slices([], "sampling")) == []
    assert not caplog.records
