"""Labelling jobs on several devices or nodes through Lightning's ``Trainer.predict``.

`propagate_split` labels clip after clip in one process. For large jobs `propagate_with_trainer`
hands the same work to ``Trainer.predict``: the clips still to do form a dataset, Lightning gives
each process its share (an unrepeated distributed sampler, so no clip is labelled twice), and
each process writes its labels straight into the shared `LabelStore`. A killed job is resumed by
running it again, as with `propagate_split`. Lightning is imported here only, so the rest of
`frugalseg.autolabel` stays usable without it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from frugalseg.autolabel.propagate import PropagationEngine, open_propagation_run, propagate_clip
from frugalseg.autolabel.runs import LabellingSummary
from frugalseg.autolabel.store import LabelStore
from frugalseg.datamodules.clips import Clip, LabelKind


class _WorkIndices(Dataset):
    """Indices into the work list; the clips stay in the module (Lightning moves batches to the device)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


class LabellingModule(L.LightningModule):
    """Runs a propagation engine in ``predict_step`` and writes each clip's labels to the store.

    ``work`` lists each clip with the offsets it still lacks; a step labels one entry. An engine
    that holds a network (it has a ``to(device)`` method) is moved to this process's device.
    """

    def __init__(
        self,
        engine: PropagationEngine,
        work: list[tuple[Clip, list[int]]],
        store_root: str,
        num_classes: int | None,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.work = work
        self.store_root = store_root
        self.num_classes = num_classes

    def on_predict_start(self) -> None:
        if hasattr(self.engine, "to"):
            self.engine.to(self.device)
        self.store = LabelStore(self.store_root)

    def predict_step(self, index: int, batch_idx: int) -> int:
        clip, todo = self.work[int(index)]
        return propagate_clip(clip, todo, self.store, self.engine, self.num_classes)


def propagate_with_trainer(
    fmt: Any,
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
    """Like `propagate_split`, with the clips shared out among Lightning's processes.

    Every process runs this function (Lightning's DDP launcher starts the same command again);
    each one reads which labels the store already holds, labels its share of the rest and appends
    its records to the shared manifest (one whole line per write). All processes wait for each
    other after labelling (``Trainer.predict`` ends without a barrier), so every process's summary
    counts the labels the whole job wrote; its ``rank`` is the process's global rank, and only
    rank 0's is meant to be reported.
    """
    clips, offsets = open_propagation_run(fmt, split, store, offsets, engine)
    work = []
    for clip in clips:
        todo = [o for o in offsets if not store.has(clip.clip_id, o, LabelKind.PSEUDO, split=clip.split)]
        if todo:
            work.append((clip, todo))
    skipped = len(clips) * len(offsets) - sum(len(todo) for _, todo in work)
    start = time.perf_counter()
    rank = 0
    if work:
        trainer = L.Trainer(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            strategy=strategy,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
        )
        # batch_size=None: one work entry per step
        loader = DataLoader(_WorkIndices(len(work)), batch_size=None, shuffle=False)
        module = LabellingModule(engine, work, str(store.root), getattr(fmt, "num_classes", None))
        trainer.predict(module, loader, return_predictions=False)
        trainer.strategy.barrier("labels written")  # before counting: the other processes' labels too
        rank = trainer.global_rank
    done = LabelStore(store.root)
    written = sum(
        done.has(clip.clip_id, o, LabelKind.PSEUDO, split=clip.split) for clip, todo in work for o in todo
    )
    return LabellingSummary(
        clips=len(clips), written=written, skipped=skipped, seconds=time.perf_counter() - start, rank=rank
    )
