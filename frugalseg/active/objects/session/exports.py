"""A session's export as a person takes it: a label store, and tool files of each object under its name.

`export_with_tools` is what the annotation page's Export button (`frugalseg.app.SessionService.export`)
and ``annotate export`` both do: `AnnotationSession.export` writes the store (the format's two classes,
each label's object ids beside it), then every tool writer's file of the store's frames
(`frugalseg.interop.write_tool_files`) goes to ``<store>-tools/``, each object under its own id and the
class name the person gave it (`UNNAMED` when none, `named_objects`), no background but on a frame without
any object, whose background region says so (a frame no shape covers is no frame to a tool's file).
`object_name` is the one rule of an object's name, which ``annotate propose --task`` files follow too.
Frames inside a video file, which no tool can show, are written as PNGs into ``<store>-tools/frames/``
(`FRAMES`), and the tool files name those.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from frugalseg.active.objects.state import VideoState
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.errors import ConfigError
from frugalseg.interop.stored_frames import ExportObject, StoredFrame

if TYPE_CHECKING:
    from frugalseg.active.objects.session.session import AnnotationSession

#: The tool files' name of an object the person named not.
UNNAMED = "object"
#: The folder of ``<store>-tools`` that holds the exported frames of a video file as PNGs (Label Studio's
#: local files root, CVAT's files), which the tool files then name.
FRAMES = "frames"


def object_name(state: VideoState, obj: int) -> str:
    """The class name the person gave object ``obj`` of ``state``'s video (`UNNAMED` when none)."""
    return state.names.get(obj, UNNAMED)


def tools_folder(store: str | Path) -> Path:
    """The folder of a store's tool files: ``<store>-tools`` beside it."""
    return Path(f"{store}-tools")


def import_command(session: AnnotationSession, store: str | Path) -> str:
    """The ``label import`` that brings the COCO file of ``store``'s tool files back, once edited in a tool.

    The person's names are objects' names on the session's data set, so it needs no ``--map``; another tool
    file takes its own ``--tool``; ``NEW_STORE`` is the person's to name.
    """
    settings = session.settings
    words = ["frugalseg", "label", "import", str(tools_folder(store) / "coco.json"), "--tool", "coco"]
    words += ["--format", settings.format, "--root", settings.root, "--split", settings.split]
    return " ".join(map(shlex.quote, words)) + " --out NEW_STORE"


def export_with_tools(
    session: AnnotationSession,
    out: str | Path,
    *,
    new: bool,
    states: Mapping[str, VideoState] | None = None,
) -> tuple[int, int, list[Path]]:
    """Export ``session`` to the label store ``out`` and its objects to tool files in `tools_folder`.

    Args:
        session: the session.
        out: the label store's folder.
        new: ``out`` is made by this export: a failure removes it and its tool files (nothing is left
            half-written); an existing store is kept as it was.
        states: video → its state as the caller holds it (the page's cache); None: the saved ones.

    Returns:
        The labels written to the store, the frames of the tool files, and the tool files' paths.

    Raises:
        ConfigError: no video has been annotated yet, or a new store's tool folder holds files already.
        LabelStoreError: ``out`` holds a store of another export or run.
    """
    from frugalseg.autolabel.store import LabelStore
    from frugalseg.data.videos import split_frame_path
    from frugalseg.interop import stored_frames, with_frame_files, write_tool_files

    out = Path(out)
    tools = tools_folder(out)
    if new and tools.is_dir() and any(tools.iterdir()):  # not this export's: neither overwritten nor removed
        raise ConfigError(
            "--out",
            f"{tools} holds files of its own, and a new export writes its tool files there: move them, or "
            "give another --out",
        )
    try:
        written = session.export(out)
        frames = named_frames(session, stored_frames(LabelStore(out), session.format), states)
        if any(split_frame_path(f.clip.frame_path(f.offset)) is not None for f in frames):
            frames = with_frame_files(frames, tools / FRAMES)  # a tool shows no frame inside a video file
        classes = sorted({name for frame in frames for _, name, _, _ in frame.objects}) or [UNNAMED]
        files = write_tool_files(frames, classes, tools)
    except BaseException:
        if new:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(tools, ignore_errors=True)
        raise
    return written, len(frames), files


def named_frames(
    session: AnnotationSession, frames: list[StoredFrame], states: Mapping[str, VideoState] | None = None
) -> list[StoredFrame]:
    """The frames of ``session``'s store with the session's objects and names (`named_objects`).

    Raises:
        ValueError: a frame of a video without a state.
    """
    named = []
    for frame in frames:
        video = frame.clip.clip_id
        state = states.get(video) if states is not None else session.state(video)
        if state is None:
            raise ValueError(f"video {video!r} has no state to export")
        t = session.frames(video).index(frame.clip.anchor_index + frame.offset)
        named.append(named_objects(frame, state, t))
    return named


def named_objects(frame: StoredFrame, state: VideoState, t: int) -> StoredFrame:
    """``frame`` (of a session's store) with loop frame ``t``'s objects of ``state``, each under its name.

    Every object's mask is of the frame's dense kind (``fine`` or ``pseudo``), and a frame without any
    holds its stored background region (the objects left it: it is labelled too); where the store holds
    the person's clicks or boxes of the frame, each object's positive clicks (its clicked pixels) and
    its box (its mask inside the box) are objects of those kinds too. Negative clicks say what an
    object is not, which a tool's object cannot hold: they stay in the store alone.
    """
    kinds = {kind for kind, _, _, _ in frame.objects}
    dense = next((k for k in kinds if k not in (LabelKind.CLICKS, LabelKind.BOXES)), LabelKind.PSEUDO)
    ids = state.masks[t]
    objects: list[ExportObject] = [
        (dense, object_name(state, obj), obj, ids == obj)
        for obj in np.unique(ids).tolist()
        if obj not in (0, IGNORE_INDEX)
    ]
    if not objects:
        objects = [o for o in frame.objects if o[0] is dense and o[2] is None]  # the background region
    for a in state.standing(t):
        name = object_name(state, a.object)
        clicked = np.zeros(ids.shape, bool)
        for x, y, positive in a.points:
            clicked[y, x] |= positive
        if LabelKind.CLICKS in kinds and clicked.any():
            objects.append((LabelKind.CLICKS, name, a.object, clicked))
        if LabelKind.BOXES in kinds and a.box is not None:
            x0, y0, x1, y1 = a.box
            boxed = np.zeros(ids.shape, bool)
            boxed[y0:y1, x0:x1] = ids[y0:y1, x0:x1] == a.object
            objects.append((LabelKind.BOXES, name, a.object, boxed))
    return replace(frame, objects=objects)
