"""A video's final masks as a label store: the training labels of a loop, from `simulate` or a session."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from frugalseg.active.objects.state import VideoState
from frugalseg.active.run_folder import LoopLabel, write_loop_labels
from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.formats.davis import DavisFormat


def video_labels(clip: Clip, indices: Sequence[int], state: VideoState) -> Iterator[LoopLabel]:
    """The final mask of every frame of one video as the labels of its label store.

    ``clip`` is the video's sequence as the data set's reader sees it (every frame, anchored at
    frame 0) and ``indices`` the sequence index of each loop frame, so each label lands on its own
    frame's offset. The labels are the format's two classes (`DavisFormat.to_label`: 0 background,
    1 any object), the label maps ``VideoSegDataModule`` trains DAVIS/MOSE from (a store of object
    ids would hold values beyond its classes); the object ids stay in the loop state's ``masks/``.
    Frames annotated with a mask are ``fine``, the others (clicks, propagated) ``pseudo``.
    """
    drawn = {a.frame for a in state.annotations if a.kind == "mask"}
    seconds: dict[int, float] = {}
    for a in state.annotations:
        seconds[a.frame] = seconds.get(a.frame, 0.0) + a.seconds
    for t, mask in enumerate(state.masks):
        offset = indices[t] - clip.anchor_index
        kind = LabelKind.FINE if t in drawn else LabelKind.PSEUDO
        yield LoopLabel(offset, kind, DavisFormat.to_label(mask), offset, seconds.get(t, 0.0))


def write_video_labels(
    folder: Path, clip: Clip, indices: Sequence[int], state: VideoState, config: dict[str, Any]
) -> int:
    """Write `video_labels` to the label store ``folder``; how many were written."""
    labels = video_labels(clip, indices, state)
    return write_loop_labels(
        folder, clip, config, labels, engine=config["engine"], settings=config["settings"]
    )
