"""Propagating the manual label of the anchor frame to its neighbours, and writing them to a store.

`propagate_split` runs any engine (the flow engine in `frugalseg.autolabel.flow_propagate`, SAM 2 in
`frugalseg.autolabel.sam2_propagate`) over the clips of a dataset split and writes the results to a
`LabelStore`, resuming where a killed run stopped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from frugalseg.autolabel.runs import (
    LabellingSummary,
    anchored_clips,
    check_clip_files,
    check_label_size,
    interrupts_held,
    labelling_progress,
    run_config,
)
from frugalseg.autolabel.store import LabelStore
from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.formats import Format
from frugalseg.data.io import read_frame
from frugalseg.errors import ConfigError, DataError

LabelReady = Callable[[int, np.ndarray, "np.ndarray | None"], None]
"""Called by a streaming engine with a target's index, its label and its confidence map (or None)."""


class PropagationEngine(Protocol):
    """What `propagate_split`, the loop's fusion and the labelling processes need from an engine.

    An engine subclasses this protocol: ``name``, ``settings`` and ``propagate`` are its own, and it
    declares which of the optional capabilities below it has (each default says "not this one"), so
    no caller has to probe an engine for a method.
    """

    name: str

    #: ``propagate`` gets the anchor's instance-id map as ``instance_ids=`` (None where a data set has none).
    uses_instance_ids: bool = False
    #: ``propagate_with_confidence`` makes a confidence map per label, which `propagate_split` stores at
    #: `frugalseg.autolabel.store.confidence_path` beside it (engines without: their labels are trusted).
    makes_confidence: bool = False
    #: Both propagate methods take ``on_label=`` (a `LabelReady`) and call it with each target's label as
    #: soon as it is made, so a caller can use the frames nearest the anchor before the far ones are done.
    streams_labels: bool = False
    #: Threads that decode a clip's frames for the engine (and, for the flow engine, compute its flows).
    workers: int = 1
    #: Its work runs on the CPU's threads, so two propagations may run at once (not one device's network).
    on_threads: bool = False
    #: Building the engine loads a network's weights (slow): its caller checks the data first.
    loads_weights: ClassVar[bool] = False
    #: The dataclass of the engine's options, from which `from_options` builds it (registered engines).
    Options: ClassVar[type]

    @classmethod
    def from_options(cls, options: Any) -> PropagationEngine:
        """The engine built from its ``Options`` (`frugalseg.autolabel.engines.get_propagator`)."""
        raise TypeError(f"{cls.__name__} is built from its arguments, not from options")

    @property
    def settings(self) -> dict[str, Any]:
        """The settings recorded in the manifest and ``run.json``."""
        ...

    def propagate(
        self,
        frames: Sequence[np.ndarray],
        anchor_index: int,
        anchor_label: np.ndarray,
        targets: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Labels for the frames at indices ``targets`` (H×W uint8, 255 where unlabelled).

        Args:
            frames: the clip's frames, H×W×3 uint8 RGB, in time order.
            anchor_index: index in ``frames`` of the annotated frame.
            anchor_label: its H×W uint8 label (255 = ignore).
            targets: indices in ``frames`` to label; the anchor itself gets a copy of its label.
        """
        ...

    def propagate_with_confidence(
        self,
        frames: Sequence[np.ndarray],
        anchor_index: int,
        anchor_label: np.ndarray,
        targets: Sequence[int],
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{index: (label, confidence)}``, H×W float confidence in 0…1 (where ``makes_confidence``)."""
        raise TypeError(f"the {self.name} engine makes no confidence maps (its makes_confidence is False)")

    def check_anchor(self, anchor_label: np.ndarray, instance_ids: np.ndarray | None, path: Path) -> None:
        """Raise a `DataError` naming ``path`` if the engine cannot start from this anchor (default: never).

        Called for every anchor still to do before anything is written.
        """
        return None

    def clips_at_once(self, clips: int) -> int:
        """How many of a job's ``clips`` `propagate_split` labels at once (default: one)."""
        return 1

    def share_cores(self, processes: int) -> None:
        """Use this process's share of the cores when ``processes`` run on the machine (default: no-op)."""
        return None


def check_propagation_inputs(
    frames: Sequence[np.ndarray], anchor_index: int, anchor_label: np.ndarray, targets: Sequence[int]
) -> None:
    """Raise `ValueError` unless the arguments of an engine's ``propagate`` fit together."""
    if not 0 <= anchor_index < len(frames):
        raise ValueError(f"anchor index {anchor_index} outside the {len(frames)} frames given")
    for index, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(
                f"frame {index} is {frame.dtype} of shape {frame.shape}: expected H×W×3 uint8 RGB"
            )
    if anchor_label.shape != frames[anchor_index].shape[:2] or anchor_label.dtype != np.uint8:
        raise ValueError(
            f"anchor label of shape {anchor_label.shape} and dtype {anchor_label.dtype} does not "
            f"fit a frame of shape {frames[anchor_index].shape} (expected H×W uint8)"
        )
    bad = [t for t in targets if not 0 <= t < len(frames)]
    if bad:
        raise ValueError(f"target indices {bad} outside the {len(frames)} frames given")


def servable_offsets(clip: Clip, offsets: Sequence[int]) -> list[int]:
    """The ``offsets`` of ``clip`` whose frame exists (a partial snippet may lack some)."""
    return [offset for offset in offsets if clip.has_frame(offset)]


def _check_offsets(clips: Sequence[Clip], offsets: Sequence[int]) -> dict[str, list[int]]:
    """The offsets each clip can serve; raise naming an offset no clip can serve, before anything is written.

    An offset outside every clip, or whose frame every clip lacks, is an error; one that only some
    partial snippets lack is left out for those clips (the format has warned about the frames).
    """
    served = {clip.clip_id: servable_offsets(clip, offsets) for clip in clips}
    for offset in offsets:
        if not any(offset in found for found in served.values()):
            clip = clips[0]
            lo, hi = clip.offsets[0], clip.offsets[-1]
            raise DataError(
                clip.frames[clip.anchor_index],
                f"no clip of split {clip.split!r} has a frame at offset {offset:+d} (clip {clip.clip_id} "
                f"has offsets {lo:+d}…{hi:+d}, missing {sorted(clip.missing) or 'none'})",
            )
    return served


@dataclass
class PropagationJob:
    """A checked propagation run over a split: the clips, the offsets each can serve, the store's config."""

    clips: list[Clip]
    offsets: list[int]
    served: dict[str, list[int]]
    config: dict[str, Any]

    @property
    def fewer(self) -> dict[str, list[int]]:
        """The clips that cannot serve every offset asked for, each with the offsets it lacks."""
        return {
            clip.clip_id: [o for o in self.offsets if o not in self.served[clip.clip_id]]
            for clip in self.clips
            if len(self.served[clip.clip_id]) < len(self.offsets)
        }

    def todo(self, store: LabelStore, confidence: bool = False) -> tuple[list[tuple[Clip, list[int]]], int]:
        """Each clip with the offsets ``store`` still lacks, and how many it holds already.

        With ``confidence`` (an engine that makes confidence maps) a label without its map counts as lacking.
        """
        todo: list[tuple[Clip, list[int]]] = []
        skipped = 0
        for clip in self.clips:
            wanted = self.served[clip.clip_id]
            left = [o for o in wanted if _lacks(store, clip, o, confidence)]
            skipped += len(wanted) - len(left)
            if left:
                todo.append((clip, left))
        return todo, skipped


def _lacks(store: LabelStore, clip: Clip, offset: int, confidence: bool) -> bool:
    """Whether the pseudo label of ``clip`` at ``offset`` is still to make.

    That is: not recorded, or (for an engine with confidence maps) recorded without its map.
    """
    if not store.has(clip.clip_id, offset, LabelKind.PSEUDO, split=clip.split):
        return True
    return confidence and not store.has_confidence(clip.clip_id, offset, LabelKind.PSEUDO, clip.split)


def plan_propagation(
    fmt: Format, split: str, store: LabelStore, offsets: Sequence[int], engine: PropagationEngine
) -> PropagationJob:
    """Check a propagation job before anything is written.

    The clips of ``split`` with a fine label at offset 0 (a `DataError` if there is none) are checked:
    every offset served by some clip, and each anchor still to do by the engine's ``check_anchor``.
    """
    offsets = sorted(set(offsets))
    if not offsets or 0 in offsets:
        raise ConfigError(
            "offsets", f"offsets must be non-empty and non-zero (0 is the manual label), got {offsets}"
        )
    clips = anchored_clips(fmt, split, LabelKind.FINE)
    served = _check_offsets(clips, offsets)
    for clip in clips:
        span = (
            range(min(0, *served[clip.clip_id]), max(0, *served[clip.clip_id]) + 1)
            if served[clip.clip_id]
            else []
        )
        check_clip_files(fmt, clip, LabelKind.FINE, [o for o in span if clip.has_frame(o)])
    for clip in clips:
        done = (store.has(clip.clip_id, o, LabelKind.PSEUDO, split=clip.split) for o in served[clip.clip_id])
        if not all(done):
            label, instance_ids = _anchor(fmt, clip, engine)
            engine.check_anchor(label, instance_ids, clip.require_label(0, LabelKind.FINE).path)
    return PropagationJob(clips, offsets, served, run_config(fmt, split, engine.name, engine.settings))


def propagate_split(
    fmt: Format,
    split: str,
    store: LabelStore,
    offsets: Sequence[int],
    engine: PropagationEngine,
    *,
    progress: bool = True,
) -> LabellingSummary:
    """Write ``pseudo`` labels at ``offsets`` for every clip of ``split`` that has a fine label at offset 0.

    Labels already recorded in ``store`` are skipped, so a killed run resumes where it stopped. An
    engine that makes confidence maps (``makes_confidence``) has each written beside its label
    (`frugalseg.autolabel.store.confidence_path`); for such an engine a recorded label whose map is
    missing is made again (only its map is added: labels are never rewritten).
    Every clip is checked before anything is written; offsets a clip cannot serve (past its ends, or
    missing from a partial snippet) are left out for that clip (the summary's ``fewer``). A store this
    run created is removed again if it fails before the first label is recorded. A Ctrl-C starts no
    further clip: the clips under way are finished and written, then KeyboardInterrupt is raised.

    Args:
        fmt: the data set's format.
        split: the split to label.
        store: where the labels go; its ``run.json`` gets (or must already hold) the engine, its
            settings, the data set and the split.
        offsets: non-zero offsets from the anchor frame.
        engine: the propagation engine (`FlowPropagator`).
        progress: show a rich progress bar.
    """
    job = plan_propagation(fmt, split, store, offsets, engine)
    confidence = engine.makes_confidence
    with store.run(job.config):
        todo, skipped = job.todo(store, confidence)
        start = time.perf_counter()
        written = 0
        at_once = engine.clips_at_once(len(todo))
        # another run sharing the store may have made some meanwhile: asked when each clip starts
        jobs = ((clip, [o for o in left if _lacks(store, clip, o, confidence)]) for clip, left in todo)
        # a second Ctrl-C stops the clip under way on this thread (a long SAM 2 clip), or those on threads
        # at their next label where the engine streams them (`halt`)
        note = "interrupted: finishing and keeping the clips under way, then stopping"
        halt = threading.Event()
        stoppable = at_once == 1 or engine.streams_labels
        held = interrupts_held(note, second_stops=stoppable, many=at_once > 1)
        # counted in labels, as the engine makes them: a single video's clip had shown 0/1 until its end
        with labelling_progress("propagating", "labels", enabled=progress) as bar, held as stop:
            task = bar.add_task(split, total=skipped + sum(len(left) for _, left in todo), completed=skipped)
            make = partial(_clip_labels, fmt, engine=engine, halt=halt, made=partial(bar.advance, task))
            for clip, made in _made_in_order(jobs, make, at_once, lambda: bool(stop), halt):
                # the store is written on this thread only, in the clips' order
                written += 0 if made is None else _write_clip(store, clip, engine, made)
    return LabellingSummary(
        clips=len(job.clips),
        written=written,
        skipped=skipped,
        seconds=time.perf_counter() - start,
        fewer=job.fewer,
    )


def _made_in_order(
    jobs: Iterable[tuple[Clip, list[int]]],
    make: Callable[[Clip, list[int]], _ClipLabels],
    at_once: int,
    stop: Callable[[], bool],
    halt: threading.Event | None = None,
) -> Iterator[tuple[Clip, _ClipLabels | None]]:
    """Each clip with what ``make`` gives for its offsets (None for none), in the jobs' order.

    With ``at_once`` > 1 that many clips are made at a time on threads (and one more waits to be
    taken); a clip not started yet when the caller stops, or once ``stop()`` is true, is not made,
    and the clips under way then are still given. When the caller stops with an error (a second
    Ctrl-C), ``halt`` is set before the threads are waited for: ``make`` stops at its next label.
    """
    if at_once == 1:
        for clip, offsets in jobs:
            if stop():
                return
            yield clip, make(clip, offsets) if offsets else None
        return
    pending: deque[tuple[Clip, Future[_ClipLabels] | None]] = deque()
    with ThreadPoolExecutor(at_once, thread_name_prefix="clip") as pool:
        try:
            for clip, offsets in jobs:
                if stop():
                    break
                pending.append((clip, pool.submit(make, clip, offsets) if offsets else None))
                if len(pending) > at_once:
                    done, future = pending.popleft()
                    yield done, None if future is None else future.result()
            while pending:
                if stop():
                    for _, future in pending:
                        if future is not None:
                            future.cancel()  # only those not started: the others are given
                done, future = pending.popleft()
                if future is None or not future.cancelled():
                    yield done, None if future is None else future.result()
        except BaseException:
            if halt is not None:
                halt.set()
            raise
        finally:
            for _, future in pending:
                if future is not None:
                    future.cancel()


def _anchor(fmt: Format, clip: Clip, engine: PropagationEngine) -> tuple[np.ndarray, np.ndarray | None]:
    """The fine label of the anchor and, for an engine that uses them, its instance ids (or None)."""
    label = fmt.read_label(clip.require_label(0, LabelKind.FINE))
    if not engine.uses_instance_ids:
        return label, None
    return label, fmt.instance_ids(clip, LabelKind.FINE)


def propagate_clip(
    fmt: Format, clip: Clip, todo: list[int], store: LabelStore, engine: PropagationEngine
) -> int:
    """Propagate the fine label of ``clip`` to the offsets ``todo`` and write them; returns the count.

    The engine sees the frames of the snippet from the earliest to the latest offset that exist; a
    frame missing in between is stepped over. They are decoded on as many threads as the engine
    has ``workers``.
    """
    return _write_clip(store, clip, engine, _clip_labels(fmt, clip, todo, engine=engine))


@dataclass
class _ClipLabels:
    """The labels an engine made for one clip, by offset, and the seconds each took."""

    labels: dict[int, np.ndarray]
    confidences: dict[int, np.ndarray]
    seconds: float


def _clip_labels(
    fmt: Format,
    clip: Clip,
    todo: list[int],
    *,
    engine: PropagationEngine,
    halt: threading.Event | None = None,
    made: Callable[[int], Any] | None = None,
) -> _ClipLabels:
    """The engine's labels (and confidence maps) of ``clip`` at the offsets ``todo`` (`propagate_clip`).

    Once ``halt`` is set, an engine that streams its labels stops at its next one (KeyboardInterrupt).
    ``made(n)`` is told of each label as the engine makes it (from its threads), else of all at the end.
    """
    start = time.perf_counter()
    span = [o for o in clip.present_offsets if min(0, *todo) <= o <= max(0, *todo)]
    # decoders release the GIL: the engine's flow threads decode the frames
    with ThreadPoolExecutor(max(1, engine.workers)) as pool:
        frames = list(pool.map(read_frame, [clip.frame_path(o) for o in span]))
    anchor_label, instance_ids = _anchor(fmt, clip, engine)
    height, width = anchor_label.shape
    label = clip.require_label(0, LabelKind.FINE)
    sizes = [(frame.shape[1], frame.shape[0]) for frame in frames]
    check_label_size(label.path, (width, height), sizes, clip.frame_path(0))
    for offset, frame in zip(span, frames, strict=True):
        if frame.shape[:2] != (height, width):
            raise DataError(
                clip.frame_path(offset),
                f"frame size {frame.shape[1]}×{frame.shape[0]} differs from the anchor label's "
                f"{width}×{height} "
                f"({clip.require_label(0, LabelKind.FINE).path.name})",
            )
    extra: dict[str, Any] = {"instance_ids": instance_ids} if engine.uses_instance_ids else {}
    if engine.streams_labels:
        extra["on_label"] = partial(_label_made, halt, made)
    indices = [span.index(o) for o in todo]
    confidences: dict[int, np.ndarray] = {}
    if engine.makes_confidence:
        found = engine.propagate_with_confidence(frames, span.index(0), anchor_label, indices, **extra)
        labels = {index: label for index, (label, _) in found.items()}
        confidences = {index: confidence for index, (_, confidence) in found.items()}
    else:
        labels = engine.propagate(frames, span.index(0), anchor_label, indices, **extra)
    if made is not None and not engine.streams_labels:
        made(len(todo))
    seconds = (time.perf_counter() - start) / len(todo)
    return _ClipLabels(
        {offset: labels[span.index(offset)] for offset in todo},
        {offset: confidences[span.index(offset)] for offset in todo if span.index(offset) in confidences},
        seconds,
    )


def _label_made(halt: threading.Event | None, made: Callable[[int], Any] | None, *_: Any) -> None:
    """An engine's ``on_label``: KeyboardInterrupt once ``halt`` is set (a second Ctrl-C), else made(1)."""
    if halt is not None and halt.is_set():
        raise KeyboardInterrupt
    if made is not None:
        made(1)


def _write_clip(store: LabelStore, clip: Clip, engine: PropagationEngine, made: _ClipLabels) -> int:
    """Write the labels `_clip_labels` made for ``clip`` into ``store``; returns how many it wrote.

    Another run sharing the store may have recorded some meanwhile: those are not counted.
    """
    before = store.written
    for offset, label in made.labels.items():
        store.write(
            clip,
            offset,
            LabelKind.PSEUDO,
            label,
            engine=engine.name,
            settings=engine.settings,
            source_offset=0,
            seconds=made.seconds,
            confidence=made.confidences.get(offset),
        )
    return store.written - before
