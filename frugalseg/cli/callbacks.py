"""Callbacks of the command line: what a run prints on the terminal (with rich), and how SIGTERM stops it."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any, TextIO

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, RichModelSummary, RichProgressBar
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.model_summary.model_summary import (
    get_formatted_model_size,
    get_human_readable_count,
)
from rich.table import Table

from frugalseg.cli.signals import note_sigterm, raise_if_signalled
from frugalseg.cli.terminal import PipedConsole


def metric_text(value: float) -> str:
    """A logged value to 4 decimals, or to 3 significant digits below 0.001 (5.36e-05, not 0.0001)."""
    return f"{value:.3g}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"


class PrintMetrics(L.Callback):
    """Print the metrics as a table (mIoU, mAcc, bIoU, TC; J, F, J&F), values to 4 decimals.

    At the end of fit, the last validation's (the title gives its step: ``check_val_every_n_epoch`` may
    leave later steps unscored); at the end of ``validate`` and ``test``, theirs, in place of Lightning's
    own table (the commands turn its ``verbose`` off). ``frugalseg fit|validate|test`` and ``frugalseg
    vos …`` add it to every run (``--print_metrics.help``).
    """

    def __init__(self) -> None:
        self._validated_step: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Note the step this validation scored; print its table if the command is ``validate``."""
        if trainer.sanity_checking:
            return
        self._validated_step = trainer.global_step
        if trainer.state.fn == "validate" and trainer.is_global_zero:
            _print_table(trainer, "val/", "validation")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Print the test metrics."""
        if trainer.is_global_zero:
            _print_table(trainer, "test/", "test")

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Print why an early stop ended the run, if one did, then the last validation metrics as a table."""
        for stopper in getattr(trainer, "callbacks", []):
            if (
                isinstance(stopper, EarlyStopping)
                and stopper.stopping_reason is not EarlyStoppingReason.NOT_STOPPED
            ):
                reason = stopper.stopping_reason_message or stopper.stopping_reason.name.lower()
                print(f"early stop after epoch {stopper.stopped_epoch + 1}: {reason}", flush=True)
        step = trainer.global_step if self._validated_step is None else self._validated_step
        _print_table(trainer, "val/", f"validation after {step} steps")


def _print_table(trainer: L.Trainer, prefix: str, title: str) -> None:
    """The trainer's metrics named ``prefix…`` as a two-column table (none: nothing)."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}
    if not metrics:
        return
    table = Table(title=title, min_width=40)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in sorted(metrics.items()):
        table.add_row(name, metric_text(value))
    PipedConsole().print(table)


def _forked(name: str, logged: Mapping[str, Any]) -> bool:
    """Whether ``name`` is the ``_step`` or ``_epoch`` copy Lightning adds of a metric logged on both."""
    base, _, suffix = name.rpartition("_")
    return suffix in ("step", "epoch") and base in logged


class EpochLines(L.Callback):
    """One plain line per epoch when the output is no terminal (``make demo > log``, a pipe, CI).

    Lightning's bar redraws one line that a pipe or file only receives at the end, so a run written to
    a file shows nothing while it trains; this prints ``epoch 1/3 done in 312 s (step 40): train/loss
    0.8123, val/mIoU 0.4321`` at the end of each training epoch (after its validation), flushed. On a
    terminal the bar shows the same and it prints nothing. ``train/loss`` there is the epoch's mean of
    the losses its steps returned, over every process, as the per-kind losses and the parts logged
    ``on_epoch`` beside it are (the bar shows the last step's).

    Args:
        always: print the lines on a terminal too.
    """

    #: The key under which the modules log the loss their training step returns.
    LOSS = "train/loss"

    def __init__(self, always: bool = False) -> None:
        self.always = always
        self._started = time.monotonic()
        self._batches = 0
        self._loss_sum: torch.Tensor | None = None  # the epoch's sum of the losses its steps returned
        self._loss_steps = 0
        self._validated = False
        self._rates: dict[str, float] = {}  # the learning rates the epoch's last step trained at

    @property
    def stream(self) -> TextIO:
        """Where the lines go: the standard output (looked up each time, so a redirected one is used)."""
        return sys.stdout

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Note when the epoch started."""
        self._started = time.monotonic()
        self._batches = 0
        self._loss_sum = None
        self._loss_steps = 0
        self._validated = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Note that this epoch was validated: its line shows the validation metrics."""
        self._validated = self._validated or not trainer.sanity_checking

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        """Note the learning rates this step trains at (`learning_rates`)."""
        self._rates = learning_rates(trainer)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, *args: Any
    ) -> None:
        """Count the epoch's batches and add up the losses they returned (kept on their device: no sync)."""
        self._batches += 1
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            # Lightning hands on the loss divided by the batches a step accumulates; summed in float32
            # (a bf16 sum of 1000 losses of 0.8 had been 256)
            step = loss.detach().float().reshape(1) * trainer.accumulate_grad_batches
            self._loss_sum = step if self._loss_sum is None else self._loss_sum + step
            self._loss_steps += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Print the epoch's line: its number, time, step and logged metrics (on the first process)."""
        if trainer.sanity_checking or not self._batches:  # not self._batches: a resume with nothing left
            return
        # The epoch's metrics first, on every process: their first read syncs those logged with sync_dist,
        # which the progress bar does on the first process alone before this hook; this reduce before it
        # on the others had paired with another collective, and a DDP fit hung at its first epoch's end.
        logged = dict(trainer.callback_metrics)
        # every process takes part, whether its steps returned losses or not (a collective on some hangs)
        summed = self._loss_sum if self._loss_sum is not None else torch.zeros(1, device=pl_module.device)
        losses = torch.cat([summed, summed.new_tensor([self._loss_steps])])
        total, count = trainer.strategy.reduce(losses, reduce_op="sum").tolist()
        loss = total / count if count else None
        if not trainer.is_global_zero or not (self.always or not self.stream.isatty()):
            return
        metrics = {
            k: float(v)
            for k, v in logged.items()
            if v.numel() == 1
            and (self._validated or not k.startswith("val/"))  # no earlier epoch's scores
            and not _forked(k, logged)
        }
        if loss is not None and self.LOSS in metrics:
            metrics[self.LOSS] = loss
        monitored = any(isinstance(c, LearningRateMonitor) for c in getattr(trainer, "callbacks", ()))
        metrics.update({name: rate for name, rate in self._rates.items() if monitored or name in metrics})
        shown = ", ".join(f"{name} {metric_text(value)}" for name, value in sorted(metrics.items()))
        total = f"/{trainer.max_epochs}" if trainer.max_epochs not in (None, -1) else ""
        seconds = time.monotonic() - self._started
        planned = trainer.num_training_batches
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.completed  # a resume's restored ones too
        done = (
            "done"
            if not isinstance(planned, int) or batches >= planned
            else f"stopped after {batches} of {planned} batches"
        )
        line = (
            f"epoch {trainer.current_epoch + 1}{total} {done} in {seconds:.0f} s (step {trainer.global_step})"
        )
        print(f"{line}: {shown}" if shown else line, file=self.stream, flush=True)


def learning_rates(trainer: L.Trainer) -> dict[str, float]:
    """The learning rates now, by the names `LearningRateMonitor` logs them under (one optimizer).

    The monitor logs every ``log_every_n_steps``: an epoch's line had shown the rate of the last step
    logged, one or more epochs old, where it shows that of the epoch's last step now.
    """
    if len(trainer.optimizers) != 1:
        return {}
    optimizer = trainer.optimizers[0]
    name, groups = f"lr-{type(optimizer).__name__}", optimizer.param_groups
    if len(groups) == 1:
        return {name: float(groups[0]["lr"])}
    return {f"{name}/pg{i}": float(group["lr"]) for i, group in enumerate(groups, 1)}


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar, the logger's version shown as the integer it is (``v_num: 2``).

    Args:
        refresh_rate: batches between refreshes of the bar (0: never shown).
        leave: keep the bar of every epoch on the terminal, not only the last.
    """

    def __init__(self, refresh_rate: int = 1, leave: bool = False) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave)

    def _get_train_description(self, current_epoch: int) -> str:
        """Lightning's ``Epoch 3/7``; ``Epoch 3`` for a run bounded by steps alone (not ``Epoch 3/-2``)."""
        if self.trainer.max_epochs not in (None, -1):
            return super()._get_train_description(current_epoch)
        return f"{f'Epoch {current_epoch}':{len(self.validation_description)}}"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Lightning's items, ``v_num`` as text so that the bar's float format leaves it alone."""
        items = super().get_metrics(trainer, pl_module)
        if "v_num" in items:
            items["v_num"] = str(items["v_num"])
        return items


class ModelSummary(RichModelSummary):
    """Lightning's rich model summary less its FLOPs column and total, which are 0 for frugalseg's modules.

    Lightning counts FLOPs on the module's ``example_input_array``; frugalseg's students take clips whose
    size the data decide, so they set none. A module that does keeps Lightning's table.

    Args:
        max_depth: how deep the listed layers go (1: the module's children; -1: every layer; 0: none).
    """

    def __init__(self, max_depth: int = 1) -> None:
        super().__init__(max_depth=max_depth)

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
        """Print the layers and the totals, without FLOPs when none were counted."""
        if total_flops:
            RichModelSummary.summarize(
                summary_data,
                total_parameters,
                trainable_parameters,
                model_size,
                total_training_modes,
                total_flops,
                **summarize_kwargs,
            )
            return
        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(name, justify="left" if name in ("Name", "Type", "Mode") else "right")
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        totals = {
            "Trainable params": get_human_readable_count(trainable_parameters),
            "Non-trainable params": get_human_readable_count(total_parameters - trainable_parameters),
            "Total params": get_human_readable_count(total_parameters),
            "Total estimated model params size (MB)": get_formatted_model_size(model_size),
            "Modules in train mode": total_training_modes["train"],
            "Modules in eval mode": total_training_modes["eval"],
        }
        grid = Table.grid()
        for name, value in totals.items():
            grid.add_row(f"[bold]{name}[/]: {value}")
        console = PipedConsole()
        console.print(table)
        console.print(grid)


class MonitoredHpMetric(L.Callback):
    """TensorBoard's ``hp_metric`` (the metric column of its HPARAMS tab) is the run's monitored metric.

    TensorBoardLogger writes -1 there as a run starts, a placeholder for a value the run logs itself; no
    run did, so every run's row read -1. After each validation (and test) the checkpoint's monitor (the
    task's without one: val/mIoU, val/JF) is written there beside it, at its step; its ``test/`` twin after
    a test. Every Lightning command's trainer has it; it has no options.
    """

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the monitored validation metric as ``hp_metric``."""
        if not trainer.sanity_checking:
            _log_hp_metric(trainer, pl_module, "val/")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the monitored metric's test twin as ``hp_metric``."""
        _log_hp_metric(trainer, pl_module, "test/")


def _log_hp_metric(trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
    """The monitored metric, named for ``stage``, to each TensorBoard logger as ``hp_metric``."""
    checkpoint = trainer.checkpoint_callback
    monitor = getattr(checkpoint, "monitor", None) or getattr(pl_module, "monitor", None)
    if not monitor:
        return
    name = stage + monitor.removeprefix("val/") if monitor.startswith("val/") else monitor
    value = trainer.callback_metrics.get(name)
    if value is None:
        return
    step = trainer.fit_loop.epoch_loop._batches_that_stepped  # the step Lightning logs metrics at, as
    for logger in trainer.loggers:  # its LearningRateMonitor does
        if isinstance(logger, TensorBoardLogger):
            logger.log_metrics({"hp_metric": float(value)}, step=step)


class SignalsStopTheRun(L.Callback):
    """A SIGTERM or Ctrl-C stops the run at once, whatever Lightning or Python does with it first.

    Lightning's SIGTERM handler logs the signal before it calls the one it found
    (`frugalseg.cli.signals`), and a DataLoader worker's SIGCHLD that arrived as it logged ended the run
    in torch's RuntimeError, exit code 1: `~frugalseg.cli.signals.note_sigterm` now runs first (the
    Trainer registers its handler after ``setup``, so the first hook of each stage puts it in front).
    Python drops an exception raised in a finalizer, and a Ctrl-C that arrived there let the run go on:
    each batch starts with `~frugalseg.cli.signals.raise_if_signalled`. Every Lightning command's
    trainer has it; it has no options.
    """

    def on_sanity_check_start(self, *args: Any) -> None:
        """Put `~frugalseg.cli.signals.note_sigterm` before the Trainer's SIGTERM handler."""
        _quiet_workers_first()

    def on_train_start(self, *args: Any) -> None:
        """Put `~frugalseg.cli.signals.note_sigterm` before the Trainer's SIGTERM handler."""
        _quiet_workers_first()

    def on_validation_start(self, *args: Any) -> None:
        """Put `~frugalseg.cli.signals.note_sigterm` before the Trainer's SIGTERM handler."""
        _quiet_workers_first()

    def on_test_start(self, *args: Any) -> None:
        """Put `~frugalseg.cli.signals.note_sigterm` before the Trainer's SIGTERM handler."""
        _quiet_workers_first()

    def on_predict_start(self, *args: Any) -> None:
        """Put `~frugalseg.cli.signals.note_sigterm` before the Trainer's SIGTERM handler."""
        _quiet_workers_first()

    def on_train_batch_start(self, *args: Any) -> None:
        """Stop before a training batch if a signal's exception was dropped."""
        raise_if_signalled()

    def on_validation_batch_start(self, *args: Any) -> None:
        """Stop before a validation batch if a signal's exception was dropped."""
        raise_if_signalled()

    def on_test_batch_start(self, *args: Any) -> None:
        """Stop before a test batch if a signal's exception was dropped."""
        raise_if_signalled()

    def on_predict_batch_start(self, *args: Any) -> None:
        """Stop before a prediction batch if a signal's exception was dropped."""
        raise_if_signalled()


def _quiet_workers_first() -> None:
    """Wrap the SIGTERM handler in one that calls `~frugalseg.cli.signals.note_sigterm` first (once)."""
    registered = signal.getsignal(signal.SIGTERM)
    if not callable(registered) or getattr(registered, "quiets_workers_first", False):
        return

    def quiet_workers_then_handle(signum: int, frame: FrameType | None) -> None:
        note_sigterm(signum)
        registered(signum, frame)

    quiet_workers_then_handle.quiets_workers_first = True  # type: ignore[attr-defined]
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, quiet_workers_then_handle)
