"""The model summary printed when training starts: Lightning's rich table without its FLOPs column.

Lightning counts a summary's FLOPs only by running `example_input_array` through the module, which a
DiffusionModule has no use for, so its column and "Total FLOPs" read 0. The real count, 3 × the forward pass of
the first training batch, is `module.flops_per_batch` (diffkit.training.flops), logged by the ThroughputMonitor.

    callbacks = with_model_summary(callbacks, enabled=cfg.trainer.enable_model_summary)   # diffkit.train
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback, ModelSummary, RichModelSummary
from lightning.pytorch.utilities.model_summary.model_summary import get_formatted_model_size, get_human_readable_count


class ParamSummary(RichModelSummary):
    """Name, type, parameters and mode of each top-level module, then the parameter totals; no FLOPs."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:  # " " is the row number
            right, number = name.startswith("Params"), name == " "
            table.add_column(name, justify="right" if right else "left", style="dim" if number else None)
        for row in zip(*(values for _, values in columns)):
            table.add_row(*row)
        totals = {
            "Trainable params": get_human_readable_count(trainable_parameters),
            "Non-trainable params": get_human_readable_count(total_parameters - trainable_parameters),
            "Total params": get_human_readable_count(total_parameters),
            "Total estimated model params size (MB)": get_formatted_model_size(model_size),
            "Modules in train mode": total_training_modes["train"],
            "Modules in eval mode": total_training_modes["eval"],
        }
        grid = Table.grid(expand=True)
        grid.add_column()
        for name, value in totals.items():
            grid.add_row(f"[bold]{name}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(grid)


def with_model_summary(callbacks: list[Callback], *, enabled: bool) -> list[Callback]:
    """The callbacks with a ParamSummary where none is listed (none at all when disabled); build the Trainer with
    enable_model_summary=False, so Lightning adds no table of its own (nor a line saying it skipped one)."""
    if not enabled:
        return [c for c in callbacks if not isinstance(c, ModelSummary)]
    if any(isinstance(c, ModelSummary) for c in callbacks):
        return callbacks
    return [*callbacks, ParamSummary()]
