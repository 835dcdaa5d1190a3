"""Callbacks of the command line: what a run prints on the terminal (with rich)."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table


class PrintMetrics(L.Callback):
    """At the end of fit, print the last validation metrics as a table (mIoU, mAcc, bIoU, TC; J, F, J&F).

    ``frugalseg fit`` and ``frugalseg vos fit`` add it to every run (``--print_metrics.help``).
    """

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Print the last validation metrics as a table."""
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        if not metrics:
            return
        table = Table(title=f"validation after {trainer.global_step} steps", min_width=40)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in sorted(metrics.items()):
            table.add_row(name, f"{value:.4f}")
        Console().print(table)
