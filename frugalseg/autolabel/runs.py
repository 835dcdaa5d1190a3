"""What every labelling command shares: the floor of the label factory.

The store's run config, the progress bar, the summary, the options of a multi-process run
(`TrainerOptions`), a Ctrl-C held until the work under way is recorded, and the checks and readers
of anchor frames. The loop over anchor frames that refine, clicks and boxes share is
`anchor_frames.label_anchor_frames`, one floor up.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from frugalseg.data.clips import ANCHOR_EXPLAINED, Clip, LabelKind, offsets_shown
from frugalseg.data.files import keyed_rng
from frugalseg.data.formats import Format
from frugalseg.data.io import TRUNCATED_IMAGE, image_size, read_frame, whole_image
from frugalseg.errors import DataError

logger = logging.getLogger(__name__)


@dataclass
class LabellingSummary:
    """What one labelling run over a split did.

    Clips (or anchor images) seen, labels written and skipped (already in the store), and the seconds
    it took. Only rank 0's summary is reported.
    """

    clips: int
    written: int
    skipped: int
    seconds: float
    rank: int = 0  # global rank of the process that made it: several share a job under Lightning
    #: The clips without a frame at some of the offsets asked for, each with those offsets (propagation).
    fewer: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainerOptions:
    """How Lightning's ``Trainer.predict`` shares a labelling job out (`label_with_trainer`)."""

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"

    @property
    def device_count(self) -> int | None:
        """Processes per node when ``devices`` is a count (``2`` or ``"2"``), else None."""
        if isinstance(self.devices, int):
            return self.devices
        return int(self.devices) if self.devices.isdigit() else None

    def for_work(self, items: int) -> TrainerOptions:
        """These options with no more processes per node than ``items`` can keep busy.

        Lightning's distributed sampler refuses a process without an item, so a job of one clip on
        ``--devices 2`` runs in one process (a count of devices only; ``auto``, ``-1`` and device
        indices are left to Lightning).
        """
        count = self.device_count
        if count is not None and count * self.num_nodes > items:
            return replace(self, devices=max(1, items // self.num_nodes))
        return self


def run_config(fmt: Format, split: str, engine: str, settings: dict[str, Any]) -> dict[str, Any]:
    """What a store's ``run.json`` records.

    Engine, settings, split, and the data set (`Format.describe`: format name, root and the reader's
    options).
    """
    return {"engine": engine, "settings": settings, "split": split, **fmt.describe()}


def labelling_progress(verb: str, unit: str, *, enabled: bool, console: Console | None = None) -> Progress:
    """The rich progress bar of a labelling loop: ``{verb} {split} ━━━ 3/10 {unit} 0:01 left 0:02``.

    With a ``console`` of its own (stderr, under a command whose output is its result) it goes when done.
    """
    return Progress(
        TextColumn(f"{verb} {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        disable=not enabled,
        console=console,
        transient=console is not None,
    )


@contextlib.contextmanager
def interrupts_held(note: str, *, second_stops: bool = False, many: bool = False) -> Iterator[list[int]]:
    """Note a Ctrl-C (SIGINT) while the block runs, log ``note`` at the first, and raise it once it ends.

    The block sees the list of signals noted, so that a loop can stop taking work and record the work
    under way whole. It is raised as the handler in place before raises it (KeyboardInterrupt). With
    ``second_stops`` (the work runs on this thread, or threads that stop when it is raised), a second
    Ctrl-C raises it at once, dropping the work under way (``many``: the clips, not the clip); else it
    is noted too. Off the main thread, or where SIGINT is ignored or left to the system, nothing changes.
    """
    noted: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous) or threading.current_thread() is not threading.main_thread():
        yield noted
        return

    def note_it(signum: int, frame: FrameType | None) -> None:
        if noted and second_stops:
            signal.signal(signal.SIGINT, previous)
            previous(signum, frame)
        if not noted:
            dropped = "the clips under way" if many else "the clip under way"
            logger.info(note + (f" (Ctrl-C again to stop now, dropping {dropped})" if second_stops else ""))
        noted.append(signum)

    signal.signal(signal.SIGINT, note_it)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)
    if noted:
        previous(signal.SIGINT, None)


def image_rng(seed: int, clip_id: str, offset: int = 0) -> np.random.Generator:
    """A generator for one image, so that results do not depend on the order images are done in."""
    return keyed_rng(seed, clip_id, offset + 2**16)  # numbers must be ≥ 0


def anchored_clips(fmt: Format, split: str, kind: LabelKind) -> list[Clip]:
    """The clips of ``split`` with a ``kind`` label on their anchor frame (offset 0), the ones a run labels.

    Raises:
        DataError: naming the data set root, the split and ``kind`` when no clip has one, so that a
            run with nothing to do fails before it writes the store's ``run.json``.
    """
    clips = fmt.clips(split)
    anchored = [clip for clip in clips if clip.label(0, kind) is not None]
    if not anchored:
        elsewhere = [(clip.clip_id, offset) for clip in clips for offset in _labelled(fmt, clip, kind)]
        raise DataError(
            fmt.root,
            f"split {split!r} has {len(clips)} clip(s), none with a {kind.value} label on its anchor frame "
            f"({ANCHOR_EXPLAINED}); nothing to label"
            + (
                f"; its {kind.value} labels are at other frames ({offsets_shown(elsewhere)})"
                if elsewhere
                else ""
            ),
        )
    return anchored


def _labelled(fmt: Format, clip: Clip, kind: LabelKind) -> list[int]:
    """The offsets of ``clip``'s ``kind`` labels; for ``fine`` its ground truth's too (a video's masks)."""
    truth = fmt.ground_truth(clip) if kind is LabelKind.FINE else {}
    return sorted({offset for offset in clip.labels if clip.label(offset, kind)} | set(truth))


def read_anchor(fmt: Format, clip: Clip, kind: LabelKind) -> tuple[np.ndarray, np.ndarray]:
    """The anchor frame of ``clip`` (H×W×3 RGB) and its ``kind`` label, checked to be of one size.

    Raises:
        DataError: naming the label file when its size differs from the frame's.
    """
    ref = clip.require_label(0, kind)
    path = ref.path
    label = fmt.read_label(ref)
    image = read_frame(clip.frame_path(0))
    if image.shape[:2] != label.shape:
        raise DataError(
            path, f"{kind.value} label of size {label.shape} does not match its frame's {image.shape[:2]}"
        )
    return image, label


def check_clip_files(fmt: Format, clip: Clip, kind: LabelKind, offsets: Sequence[int]) -> None:
    """Check, before a run writes anything, the files a clip's labelling reads.

    Its anchor's ``kind`` label decodes (classes in range), and each frame at ``offsets`` (and the
    anchor's) exists, is whole (not truncated) and has the label's size, from its header.

    Raises:
        DataError: naming the first file that fails.
    """
    ref = clip.require_label(0, kind)
    label = fmt.read_label(ref)
    height, width = label.shape
    sizes = {offset: image_size(clip.frame_path(offset)) for offset in sorted({0, *offsets})}
    check_label_size(ref.path, (width, height), list(sizes.values()), clip.frame_path(0))
    for offset, size in sizes.items():
        path = clip.frame_path(offset)
        if not whole_image(path):
            raise DataError(path, TRUNCATED_IMAGE)
        if size != (width, height):
            raise DataError(
                path,
                f"frame size {size[0]}×{size[1]} differs from the anchor label's {width}×{height} "
                f"({ref.path.name})",
            )


def check_label_size(
    label: Path, size: tuple[int, int], frame_sizes: list[tuple[int, int]], frame: Path
) -> None:
    """Refuse, naming the label, an anchor label of another size than its frames, which all agree.

    Where the frames differ among themselves, the odd frame is the one to name (checked after this).

    Args:
        label: the anchor label's file.
        size: its (W, H).
        frame_sizes: the (W, H) of each frame the run reads.
        frame: the anchor's own frame (named in the message).
    """
    if frame_sizes and size != frame_sizes[0] and len(set(frame_sizes)) == 1:
        shown = "×".join(map(str, frame_sizes[0]))
        raise DataError(
            label, f"label size {size[0]}×{size[1]} differs from its frames' {shown} ({frame.name})"
        )


def anchor_instance_ids(
    fmt: Format, clip: Clip, kind: LabelKind, shape: tuple[int, ...]
) -> np.ndarray | None:
    """`Format.instance_ids` of the anchor's ``kind`` label, checked to have the label's ``shape``."""
    return fmt.instance_ids(clip, kind, shape)
