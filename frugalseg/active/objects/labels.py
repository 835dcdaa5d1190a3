"""A video's final masks (and a person's clicks and boxes) as a label store: a loop's training labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.active.objects.state import Annotation, VideoState
from frugalseg.active.run_folder import LoopLabel, source_frame, write_loop_labels
from frugalseg.autolabel.boxes import Box, boxes_json, boxes_to_label
from frugalseg.autolabel.clicks import Click, clicks_json
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.data.formats.davis import DavisFormat


def video_labels(
    clip: Clip, indices: Sequence[int], state: VideoState, *, object_ids: bool = False
) -> Iterator[LoopLabel]:
    """The final mask of every frame of one video, and a person's clicks and boxes, as store labels.

    ``clip`` is the video's sequence as the data set's reader sees it (every frame, anchored at
    frame 0) and ``indices`` the sequence index of each loop frame, so each label lands on its own
    frame's offset. The labels are the format's two classes (`DavisFormat.to_label`: 0 background,
    1 any object), the label maps ``VideoSegDataModule`` trains DAVIS/MOSE from (a store of object
    ids would hold values beyond its classes); the object ids stay in the loop state's ``masks/``
    and, with ``object_ids`` (a person's session), beside each label as its ``_instanceIds.png``
    (`object_ids_of`), so `label export` of the store keeps the objects apart.

    Each label is of the kind it is. A frame's mask is ``fine`` when the annotation that made it
    (`VideoState.made_by`: a later mask replaces clicks, a look that kept the mask changes nothing)
    drew every object on the frame (``mask``), else ``pseudo`` (propagated, made from clicks or a box
    by a click model, or with objects propagated beside one drawn). A person's clicks on a frame are
    also a ``clicks`` label (`clicks_label`) and their boxes a ``boxes`` label (`boxes_label`), in the
    forms `frugalseg.autolabel.clicks` and `frugalseg.autolabel.boxes` write, so a recipe can train
    from what the person gave (what still stands: `VideoState.standing`). The frame's human seconds go
    to the label of the kind they were spent on (the mask's, when no clicks or box label holds them).

    Each label's source offset is the store's (`frugalseg.autolabel.store`): the frame it was made
    from. A person's annotations on a frame (its clicks and boxes labels, and its mask) come from that
    frame itself; a frame nobody annotated was propagated from the annotated frames, and its source is
    the nearest of them (`source_frame`), so `frugalseg.autolabel.report` charges nothing for it.
    """
    by_frame: dict[int, list[Annotation]] = {}
    for a in state.annotations:
        by_frame.setdefault(a.frame, []).append(a)
    annotated = sorted(state.annotated)
    for t, mask in enumerate(state.masks):
        offset = indices[t] - clip.anchor_index
        source = indices[source_frame(annotated, t)] - clip.anchor_index
        own = by_frame.get(t, [])
        label = DavisFormat.to_label(mask)
        seconds = sum(a.seconds for a in own)
        ids = state.annotated.get(t, mask)
        standing = state.standing(t) if own else []
        for kind, (annotation_type, make) in _SPARSE.items():
            given = make(ids, standing)
            if given is not None:
                sparse, side, sparse_ids = given
                spent = sum(a.seconds for a in standing if a.kind == annotation_type)
                seconds -= spent
                yield LoopLabel(offset, kind, sparse, offset, spent, side, sparse_ids if object_ids else None)
        made = state.made_by(t)
        on_frame = {int(v) for v in np.unique(mask) if v != 0}
        drawn = bool(made) and all(a.kind == "mask" for a in made) and on_frame <= {a.object for a in made}
        kind = LabelKind.FINE if drawn else LabelKind.PSEUDO
        instances = object_ids_of(label, mask) if object_ids else None
        yield LoopLabel(offset, kind, label, source, seconds, None, instances)


def object_ids_of(label: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The object ids of a label's object pixels (class 1) in the mask ``ids``; 0 elsewhere (uint8)."""
    return np.where(label == 1, ids, 0).astype(np.uint8)


def clicks_label(
    ids: np.ndarray, annotations: Sequence[Annotation]
) -> tuple[np.ndarray, dict[str, Any], np.ndarray] | None:
    """The ``clicks`` label of a frame's annotations, its side JSON and its object ids (None without points).

    Each clicked pixel holds the click's own class (`DavisFormat.to_label` of what the person said
    the pixel is: a positive click its object's, a negative one background), whatever the frame's
    final mask ``ids`` holds there (a later annotation may have changed it), every other pixel 255
    (ignore). The object ids are the positive clicks' objects at their pixels, 0 elsewhere; a later
    click on the same pixel wins, as in the label.
    """
    points = [(a.object, x, y, positive) for a in annotations for x, y, positive in a.points]
    if not points:
        return None
    label = np.full(ids.shape, IGNORE_INDEX, np.uint8)
    instances = np.zeros(ids.shape, np.uint8)
    clicks = []
    for obj, x, y, positive in points:
        instance = obj if positive else 0
        train_id = int(DavisFormat.to_label(np.array([instance], np.uint8))[0])
        label[y, x] = train_id
        instances[y, x] = instance
        clicks.append(Click(x, y, train_id, instance or None, "given"))
    return label, clicks_json(clicks, ids.shape, 0), instances


def boxes_label(
    ids: np.ndarray, annotations: Sequence[Annotation]
) -> tuple[np.ndarray, dict[str, Any], np.ndarray] | None:
    """The ``boxes`` label of a frame's annotations, its side JSON and its object ids (None without a box).

    Each boxed object's mask in ``ids`` inside its box, 255 (ignore) elsewhere (`boxes_to_label`);
    the object ids are those of ``ids`` at its object pixels (`object_ids_of`).
    """
    boxes = [Box(*a.box, train_id=1, instance_id=a.object) for a in annotations if a.box is not None]
    if not boxes:
        return None
    masks = []
    for box in boxes:
        inside = np.zeros(ids.shape, bool)
        inside[box.window()] = True
        masks.append(inside & (ids == box.instance_id))
    label, results = boxes_to_label(ids.shape[:2], boxes, masks)
    return label, boxes_json(results, ids.shape, None), object_ids_of(label, ids)


#: The sparse label kinds of a person's annotations: the annotation type whose seconds each carries
#: and what makes the label of a frame.
_SPARSE = {LabelKind.CLICKS: ("clicks", clicks_label), LabelKind.BOXES: ("box", boxes_label)}


def write_video_labels(
    folder: Path,
    clip: Clip,
    indices: Sequence[int],
    state: VideoState,
    config: dict[str, Any],
    *,
    object_ids: bool = False,
) -> int:
    """Write `video_labels` (with ``object_ids``: their object ids too) to the label store ``folder``.

    Returns:
        How many labels were written.
    """
    labels = video_labels(clip, indices, state, object_ids=object_ids)
    return write_loop_labels(
        folder, clip, config, labels, engine=config["engine"], settings=config["settings"]
    )
