"""The resumable loop over the anchor frames of a split that refine, clicks and boxes share.

`label_anchor_frames` writes one label per clip's anchor frame, in one process or, given
`TrainerOptions`, shared out among Lightning's processes (`lightning_runner.label_with_trainer`).
It sits above `runs`, the floor every labeller builds on, and above the Lightning runner (imported
only when a run is shared out, so the label factory stays usable without Lightning).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from frugalseg.autolabel.runs import (
    LabellingSummary,
    TrainerOptions,
    anchored_clips,
    check_clip_files,
    labelling_progress,
    run_config,
)
from frugalseg.autolabel.store import LabelStore
from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.formats import Format


def label_anchor_frames(
    fmt: Format,
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
        check_clip_files(fmt, clip, source, [0])
    with store.run(run_config(fmt, split, engine, settings)):
        return _label_todo(
            clips, store, kind, engine, settings, make_label, progress, verb, trainer, movable, split
        )


def _label_todo(
    clips: list[Clip],
    store: LabelStore,
    kind: LabelKind,
    engine: str,
    settings: dict[str, Any],
    make_label: Callable[[Clip], np.ndarray],
    progress: bool,
    verb: str,
    trainer: TrainerOptions | None,
    movable: Sequence[Any],
    split: str,
) -> LabellingSummary:
    """The loop of `label_anchor_frames` over the clips the open ``store`` still lacks."""
    todo = [clip for clip in clips if not store.has(clip.clip_id, 0, kind, split=clip.split)]
    skipped = len(clips) - len(todo)

    def write_label(clip: Clip) -> int:
        if store.has(clip.clip_id, 0, kind, split=clip.split):
            return 0  # another run sharing the store made it meanwhile
        began = time.perf_counter()
        label = make_label(clip)
        before = store.written
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
        return store.written - before  # 0: another run recorded it while this one made it

    start = time.perf_counter()
    if trainer is not None:
        from frugalseg.autolabel.lightning_runner import label_with_trainer  # Lightning only when asked

        run = label_with_trainer(todo, write_label, movable=movable, options=trainer, progress=progress)
        seconds = time.perf_counter() - start
        return LabellingSummary(len(clips), run.written, skipped, seconds, rank=run.rank)
    written = 0
    with labelling_progress(verb, "images", enabled=progress) as bar:
        task = bar.add_task(split, total=len(clips), completed=skipped)
        for clip in todo:
            written += write_label(clip)
            bar.advance(task)
    return LabellingSummary(
        clips=len(clips), written=written, skipped=skipped, seconds=time.perf_counter() - start
    )
