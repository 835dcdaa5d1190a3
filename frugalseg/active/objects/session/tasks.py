"""A session's proposal as a task for an annotation tool: the frame with its current object masks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from frugalseg.active.objects.session.exports import object_name
from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import image_size
from frugalseg.interop import StoredFrame, with_frame_files, write_export
from frugalseg.interop.stored_frames import frame_name, frame_objects

if TYPE_CHECKING:
    from frugalseg.active.objects.session.proposals import Proposal
    from frugalseg.active.objects.session.session import AnnotationSession


def write_task(
    session: AnnotationSession,
    proposal: Proposal,
    path: str | Path,
    tool: str,
    *,
    frames_out: str | Path | None = None,
) -> int:
    """Write the proposed frame with its current object masks (none before the first annotation) to ``path``.

    The person corrects them in the tool; `label import` of its export gives the frame's object ids
    (``*_instanceIds.png``), which ``annotate add --mask`` takes. Each object is under the class name
    the person gave it (`object_name`, as the page's export names it); on the session's object data set
    `label import` takes any name as an object's. With ``frames_out`` the
    frame is also written there as an image file, and the task names that file (`with_frame_files`).

    Returns:
        How many objects' masks the task holds (its background region not counted).
    """
    fmt = session.format
    clip = Clip(proposal.video, session.settings.split, list(fmt.frame_paths(proposal.video)), 0)
    frame_path = clip.frame_path(proposal.frame)
    state = session.state(proposal.video)
    ids = session.current_mask(proposal.video, proposal.frame)
    width, height = image_size(frame_path)
    objects = (
        []
        if ids is None or state is None
        else [
            (kind, name if obj is None else object_name(state, obj), obj, mask)
            for kind, name, obj, mask in frame_objects(
                DavisFormat.to_label(ids), ids, fmt.class_names, LabelKind.PSEUDO
            )
        ]
    )
    frame = StoredFrame(clip, proposal.frame, frame_name(frame_path, fmt.root), (height, width), objects)
    classes = list(dict.fromkeys([*fmt.class_names, *(name for _, name, _, _ in objects)]))
    frames = [frame] if frames_out is None else with_frame_files([frame], frames_out)
    write_export(tool, Path(path), frames, classes)
    return sum(obj is not None for _, _, obj, _ in objects)
