"""What every labelling command shares: the store's run config, the progress bar, the summary, and
`label_anchor_frames`, the resumable loop over the anchor frames of a split (refine, clicks, boxes),
in one process or, given `TrainerOptions`, shared out among Lightning's processes.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from frugalseg.autolabel.store import LabelStore
from frugalseg.datamodules.clips import Clip, LabelKind
from frugalseg.datamodules.io import DataError, read_frame, read_label


@dataclass
class LabellingSummary:
    """What one labelling run over a split did: clips (or anchor images) seen, labels written and
    skipped (already in the store), and the seconds it took. Only rank 0's summary is reported."""

    clips: int
    written: int
    skipped: int
    seconds: float
    rank: int = 0  # global rank of the process that made it: several share a job under Lightning


@dataclass(frozen=True)
class TrainerOptions:
    """How Lightning's ``Trainer.predict`` shares a labelling job out (`label_with_trainer`)."""

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"


def open_store_run(store: LabelStore, fmt: Any, split: str, engine: str, settings: dict[str, Any]) -> None:
    """Write (or check against) the store's ``run.json``: engine, settings, split, format name and root."""
    store.open_run(
        {
            "engine": engine,
            "settings": settings,
            "split": split,
            "format": getattr(fmt, "name", type(fmt).__name__),
            "root": str(getattr(fmt, "root", "")),
        }
    )


def labelling_progress(verb: str, unit: str, *, enabled: bool) -> Progress:
    """The rich progress bar of a labelling loop: ``{verb} {split} ━━━ 3/10 {unit} 0:01 left 0:02``."""
    return Progress(
        TextColumn(f"{verb} {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def image_rng(seed: int, clip_id: str, offset: int = 0) -> np.random.Generator:
    """A generator for one image, so that results do not depend on the order images are done in."""
    return np.random.default_rng([seed, zlib.crc32(clip_id.encode()), offset + 2**16])  # seeds must be ≥ 0


def anchored_clips(fmt: Any, split: str, kind: LabelKind) -> list[Clip]:
    """The clips of ``split`` with a ``kind`` label on their anchor frame (offset 0), the ones a run labels.

    Raises:
        DataError: naming the data set root, the split and ``kind`` when no clip has one, so that a
            run with nothing to do fails before it writes the store's ``run.json``.
    """
    clips = fmt.clips(split)
    anchored = [clip for clip in clips if clip.label(0, kind) is not None]
    if not anchored:
        raise DataError(
            getattr(fmt, "root", type(fmt).__name__),
            f"split {split!r} has {len(clips)} clip(s), none with a {kind.value} label on its anchor "
            "frame; nothing to label",
        )
    return anchored


def read_anchor(fmt: Any, clip: Clip, kind: LabelKind) -> tuple[np.ndarray, np.ndarray]:
    """The anchor frame of ``clip`` (H×W×3 RGB) and its ``kind`` label, checked to be of one size.

    Raises:
        DataError: naming the label file when its size differs from the frame's.
    """
    path = clip.label(0, kind).path
    label = read_label(path, getattr(fmt, "num_classes", None))
    image = read_frame(clip.frame_path(0))
    if image.shape[:2] != label.shape:
        raise DataError(
            path, f"{kind.value} label of size {label.shape} does not match its frame's {image.shape[:2]}"
        )
    return image, label


def label_anchor_frames(
    fmt: Any,
    split: str,
    store: LabelStore,
    *,
    source: LabelKind,
    kind: LabelKind,
    engine: str,
    settings: dict[str, Any],
    make_label: Callable[[Clip], np.ndarray],
    progress: bool = True,
    verb: str = "labelling",
    trainer: TrainerOptions | None = None,
    movable: Sequence[Any] = (),
) -> LabellingSummary:
    """Write a ``kind`` label for the anchor frame (offset 0) of every clip with a ``source`` label.

    ``make_label(clip)`` computes one label map; clips already recorded in ``store`` are skipped,
    so a killed run resumes where it stopped. The anchor frame and ``source`` label of every clip
    are checked to exist, and at least one clip to have a ``source`` label, before anything is written.
    With ``trainer`` the clips to do are shared out among Lightning's processes
    (`frugalseg.autolabel.lightning_runner.label_with_trainer`), which first move the network
    holders in ``movable`` (a SAM predictor) to their device; the summary then counts the labels
    of all processes and carries this process's rank.
    """
    clips = anchored_clips(fmt, split, source)
    for clip in clips:
        for path in (clip.frame_path(0), clip.label(0, source).path):
            if not path.is_file():
                raise DataError(path, f"file of clip {clip.clip_id} ({clip.split}) does not exist")
    open_store_run(store, fmt, split, engine, settings)
    todo = [clip for clip in clips if not store.has(clip.clip_id, 0, kind, split=clip.split)]
    skipped = len(clips) - len(todo)

    def write_label(clip: Clip) -> int:
        began = time.perf_counter()
        label = make_label(clip)
        store.write(
            clip,
            0,
            kind,
            label,
            engine=engine,
            settings=settings,
            source_offset=0,
            seconds=time.perf_counter() - began,
        )
        return 1

    start = time.perf_counter()
    if trainer is not None:
        from frugalseg.autolabel.lightning_runner import label_with_trainer

        rank = label_with_trainer(todo, write_label, movable=movable, options=trainer, progress=progress)
        done = LabelStore(store.root)  # re-read: the other processes' records too
        written = sum(done.has(clip.clip_id, 0, kind, split=clip.split) for clip in todo)
        return LabellingSummary(
            clips=len(clips), written=written, skipped=skipped, seconds=time.perf_counter() - start, rank=rank
        )
    with labelling_progress(verb, "images", enabled=progress) as bar:
        task = bar.add_task(split, total=len(clips), completed=skipped)
        for clip in todo:
            write_label(clip)
            bar.advance(task)
    return LabellingSummary(
        clips=len(clips), written=len(todo), skipped=skipped, seconds=time.perf_counter() - start
    )
