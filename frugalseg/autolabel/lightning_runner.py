"""Labelling jobs on several devices or nodes through Lightning's ``Trainer.predict``.

The single-process loops (`propagate_split`, `label_anchor_frames`) label item after item. For
large jobs `label_with_trainer` hands the same work to ``Trainer.predict``: the items still to do
form a dataset, Lightning gives each process its share (an unrepeated distributed sampler, so no
item is labelled twice), and each process writes its labels straight into the shared `LabelStore`
through the caller's per-item function. A killed job is resumed by running it again, as with the
single-process loops. Lightning is imported here only, so the rest of `frugalseg.autolabel` stays
usable without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from frugalseg.autolabel.propagate import PropagationEngine, plan_propagation, propagate_clip
from frugalseg.autolabel.runs import LabellingSummary, TrainerOptions
from frugalseg.autolabel.store import LabelStore
from frugalseg.data.clips import Clip
from frugalseg.data.formats import Format


class _WorkIndices(Dataset[int]):
    """Indices into the work list; the items stay in the module (Lightning moves batches to the device)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


def move_to_device(holder: Any, device: torch.device) -> None:
    """Move a network holder to ``device``.

    The holder is an object with ``to(device)`` (an engine, a module), or one whose ``model`` has it
    (SAM 2's image predictor, whose device is its model's).
    """
    if hasattr(holder, "to"):
        holder.to(device)
    elif hasattr(getattr(holder, "model", None), "to"):
        holder.model.to(device)


class LabellingModule(L.LightningModule):
    """Labels one work item per ``predict_step`` with ``label_item(item)``.

    ``label_item`` writes the item's labels to the store and returns how many it wrote.

    ``movable`` lists the network holders ``label_item`` uses (`move_to_device`); they are moved to
    this process's device before the first step.
    """

    def __init__(self, work: Sequence[Any], label_item: Callable[[Any], int], movable: Sequence[Any]) -> None:
        super().__init__()
        self.work = work
        self.label_item = label_item
        self.movable = list(movable)
        self.written = 0  # labels this process wrote

    def on_predict_start(self) -> None:
        """Move the network holders to this process's device."""
        for holder in self.movable:
            move_to_device(holder, self.device)

    def predict_step(self, index: int, batch_idx: int) -> int:
        """Label the work item ``index``; returns how many labels it wrote."""
        written = self.label_item(self.work[int(index)])
        self.written += written
        return written


class LabellingRun(NamedTuple):
    """What `label_with_trainer` did: this process's global rank and the labels all processes wrote."""

    rank: int
    written: int


def label_with_trainer(
    work: Sequence[Any],
    label_item: Callable[[Any], int],
    *,
    movable: Sequence[Any] = (),
    options: TrainerOptions | None = None,
    progress: bool = True,
) -> LabellingRun:
    """Run ``label_item`` on every item of ``work``, shared out among Lightning's processes.

    Every process runs this function (Lightning's DDP launcher starts the same command again) with
    the same ``work`` (checked and opened beforehand by the caller) and labels its share.
    ``label_item`` returns how many labels it wrote; their sum over all processes is reduced at the
    end, so labels another run sharing the store recorded meanwhile are not counted, and the process group
    is destroyed after it. Returns this process's global rank (0 without work; only rank 0's summary is
    meant to be reported) and that sum.
    """
    if not work:
        return LabellingRun(0, 0)
    options = (options or TrainerOptions()).for_work(len(work))
    trainer = L.Trainer(
        accelerator=options.accelerator,
        devices=options.devices,
        num_nodes=options.num_nodes,
        strategy=options.strategy,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
    )
    # batch_size=None: one work item per step
    loader = DataLoader(_WorkIndices(len(work)), batch_size=None, shuffle=False)
    module = LabellingModule(work, label_item, movable)
    trainer.predict(module, loader, return_predictions=False)
    # a collective, so also the barrier Trainer.predict ends without
    written = trainer.strategy.reduce(torch.tensor(module.written, device=module.device), reduce_op="sum")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # the last collective is done: leave the group, which Lightning does not; gloo's threads left to
        # the interpreter's exit could abort the process (SIGABRT, "terminate called without an active
        # exception", seen once under the full test suite)
        torch.distributed.destroy_process_group()
    return LabellingRun(trainer.global_rank, int(written))


def _propagate_item(
    item: tuple[Clip, list[int]], fmt: Format, store: LabelStore, engine: PropagationEngine
) -> int:
    """`propagate_clip` on one work item (a clip and the offsets it lacks).

    A module-level function, so that the work can be pickled for a spawning strategy.
    """
    return propagate_clip(fmt, item[0], item[1], store, engine)


def propagate_with_trainer(
    fmt: Format,
    split: str,
    store: LabelStore,
    offsets: Sequence[int],
    engine: PropagationEngine,
    *,
    accelerator: str = "auto",
    devices: int | str = "auto",
    num_nodes: int = 1,
    strategy: str = "auto",
    progress: bool = True,
) -> LabellingSummary:
    """Like `propagate_split`, with the clips shared out among Lightning's processes (`label_with_trainer`).

    Each process reads which labels the store already holds, propagates its share of the clips
    with `propagate_clip` and appends its records to the shared manifest (one whole line per
    write); its summary counts the labels the whole job wrote. The engine is told how many processes
    share this machine's cores (``share_cores``).
    """
    job = plan_propagation(fmt, split, store, offsets, engine)
    with store.run(job.config):
        work, skipped = job.todo(store)
        options = TrainerOptions(accelerator, devices, num_nodes, strategy).for_work(len(work))
        engine.share_cores(options.device_count or 1)  # the processes on this machine split its cores
        start = time.perf_counter()
        run = label_with_trainer(
            work,
            partial(_propagate_item, fmt=fmt, store=store, engine=engine),
            movable=[engine],
            options=options,
            progress=progress,
        )
    return LabellingSummary(
        clips=len(job.clips),
        written=run.written,
        skipped=skipped,
        seconds=time.perf_counter() - start,
        rank=run.rank,
        fewer=job.fewer,
    )
