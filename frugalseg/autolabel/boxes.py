"""Boxes → masks with SAM's box prompt, the stand-in for Box2Seg (paper 003, sections 3 and 5.1).

A box per instance of the instance classes (from the instance ids of the fine label, or every
8-connected component of an instance class where there are none, or boxes given by the user)
prompts SAM's image predictor for one mask, clipped to its box (the box bounds the object, as in
Box2Seg, which sees only the box crop). Masks are painted largest first so that smaller objects
in front stay visible; every pixel outside the masks is 255 (ignore): a box says nothing about the
stuff classes around it.

The simulated "filtering bad masks" of paper 003: where ground truth is known, a mask whose IoU
with its object's ground-truth mask is below ``min_iou`` is removed and its whole box becomes 255,
after all masks are painted (an ignored box also hides the parts of other masks inside it).

Boxes are (x0, y0, x1, y1) in pixel-edge coordinates, as SAM takes them: the box of an object
whose pixels span columns 3…7 and rows 2…4 is (3, 2, 8, 5). Each stored label gets
``{stem}_boxes.json`` beside it with the boxes, their IoU with the ground truth and whether they
were filtered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.autolabel.anchor_frames import label_anchor_frames
from frugalseg.autolabel.objects import iou, split_objects
from frugalseg.autolabel.refine import ImagePredictor
from frugalseg.autolabel.runs import (
    LabellingSummary,
    TrainerOptions,
    anchor_instance_ids,
    read_anchor,
)
from frugalseg.autolabel.store import LabelStore, read_json_list, side_json_path
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.data.formats import Format
from frugalseg.data.io import write_json_atomic
from frugalseg.errors import ConfigError, DataError


@dataclass(frozen=True)
class Box:
    """An object's box in pixel-edge coordinates (x1, y1 exclusive), its class and instance id."""

    x0: int
    y0: int
    x1: int
    y1: int
    train_id: int
    instance_id: int | None = None

    def as_xyxy(self) -> np.ndarray:
        """The box as SAM's ``box`` prompt (float32 x0, y0, x1, y1)."""
        return np.array([self.x0, self.y0, self.x1, self.y1], np.float32)

    def window(self) -> tuple[slice, slice]:
        """Row and column slices of the box's pixels."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def box_of(mask: np.ndarray, train_id: int, instance_id: int | None = None) -> Box:
    """The tight box of a non-empty bool mask."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("an empty mask has no box")
    return Box(
        int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1, train_id, instance_id
    )


def check_box(box: Box, shape: tuple[int, int]) -> str | None:
    """What is wrong with ``box`` in an image of ``shape`` (H, W), or None."""
    height, width = shape
    if not (0 <= box.x0 < box.x1 <= width and 0 <= box.y0 < box.y1 <= height):
        return f"box ({box.x0}, {box.y0}, {box.x1}, {box.y1}) is empty or leaves the {width}×{height} image"
    return None


def masks_from_boxes(image: np.ndarray, boxes: Sequence[Box], predictor: ImagePredictor) -> list[np.ndarray]:
    """SAM's mask for each box (one mask per prompt, clipped to the box)."""
    shape = image.shape[:2]
    for box in boxes:
        problem = check_box(box, shape)
        if problem is not None:
            raise ValueError(problem)
    if not boxes:
        return []
    predictor.set_image(image)
    masks = []
    for box in boxes:
        predicted, scores, _ = predictor.predict(box=box.as_xyxy(), multimask_output=False)
        inside = np.zeros(shape, bool)
        inside[box.window()] = True
        masks.append((np.asarray(predicted[int(np.argmax(scores))]) > 0.5) & inside)
    return masks


@dataclass(frozen=True)
class BoxResult:
    """One box, its IoU with the ground truth (None if unknown) and whether it was filtered out."""

    box: Box
    iou: float | None
    filtered: bool


def boxes_to_label(
    shape: tuple[int, int],
    boxes: Sequence[Box],
    masks: Sequence[np.ndarray],
    *,
    truths: Sequence[np.ndarray | None] | None = None,
    min_iou: float | None = None,
) -> tuple[np.ndarray, list[BoxResult]]:
    """Paint the box masks into a label map (255 elsewhere), filtering bad masks when asked.

    Args:
        shape: (H, W) of the label.
        boxes: the prompt boxes.
        masks: one mask per box.
        truths: the ground-truth mask of each box's object (None where unknown), for the IoU.
        min_iou: with truths, a mask with IoU below this is replaced by 255 over its whole box.
    """
    if len(masks) != len(boxes) or (truths is not None and len(truths) != len(boxes)):
        raise ValueError(f"got {len(boxes)} boxes, {len(masks)} masks and {len(truths or [])} truths")
    truths = list(truths) if truths is not None else [None] * len(boxes)
    label = np.full(shape, IGNORE_INDEX, np.uint8)
    for index in sorted(range(len(boxes)), key=lambda i: -int(masks[i].sum())):
        label[masks[index]] = boxes[index].train_id
    results = []
    for box, mask, truth in zip(boxes, masks, truths, strict=True):
        score = None if truth is None else iou(mask, truth)
        filtered = min_iou is not None and score is not None and score < min_iou
        if filtered:
            label[box.window()] = IGNORE_INDEX
        results.append(BoxResult(box, score, filtered))
    return label, results


def boxes_json(results: Sequence[BoxResult], shape: tuple[int, ...], min_iou: float | None) -> dict[str, Any]:
    """The boxes of one image as ``{stem}_boxes.json`` holds them: each box, its IoU, whether filtered."""
    return {
        "image_size": list(shape),
        "min_iou": min_iou,
        "boxes": [{**asdict(r.box), "iou": r.iou, "filtered": r.filtered} for r in results],
    }


def read_boxes_json(path: str | Path, shape: tuple[int, int]) -> list[Box]:
    """Read given boxes (``{"boxes": [{"x0", "y0", "x1", "y1", "train_id"}, …]}``) for an image of ``shape``.

    Raises:
        DataError: missing file, bad JSON or fields, or a box that is empty or leaves the image.
    """
    boxes = read_json_list(
        path,
        "boxes",
        lambda item: Box(
            int(item["x0"]),
            int(item["y0"]),
            int(item["x1"]),
            int(item["y1"]),
            int(item["train_id"]),
            None if item.get("instance_id") is None else int(item["instance_id"]),
        ),
        '{"boxes": [{"x0", "y0", "x1", "y1", "train_id"}, …]}',
    )
    for number, box in enumerate(boxes, start=1):
        problem = check_box(box, shape)
        if problem is not None:
            raise DataError(path, f"box {number}: {problem}")
    return boxes


def boxes_json_path(label_path: str | Path) -> Path:
    """Where the boxes of a stored ``boxes`` label live: ``{stem}_boxes.json`` beside its PNG."""
    return side_json_path(label_path, LabelKind.BOXES.value)


def box_split(
    fmt: Format,
    split: str,
    store: LabelStore,
    predictor: ImagePredictor,
    *,
    min_iou: float | None = None,
    model: dict[str, Any] | None = None,
    progress: bool = True,
    trainer: TrainerOptions | None = None,
) -> LabellingSummary:
    """Write ``boxes`` labels for the anchor frame of every clip of ``split`` with a fine label.

    A box per instance of the instance classes (from the fine label's instance ids, else per
    8-connected component) → SAM mask → label; with ``min_iou`` bad masks are filtered against
    the fine label's objects. ``model`` (SAM 2 config, checkpoint) is recorded with the settings.
    Resumable like `frugalseg.autolabel.propagate.propagate_split`.
    With ``trainer`` the images are shared out among Lightning's processes (`label_anchor_frames`).
    """
    if min_iou is not None and not 0.0 <= min_iou <= 1.0:
        raise ConfigError("min_iou", f"must lie in [0, 1], got {min_iou}")
    things = list(fmt.classes.instance_classes)

    def make_label(clip: Clip) -> np.ndarray:
        image, fine = read_anchor(fmt, clip, LabelKind.FINE)
        objects = split_objects(
            fine, anchor_instance_ids(fmt, clip, LabelKind.FINE, fine.shape), train_ids=things
        )
        boxes = [box_of(obj.mask, obj.train_id, obj.instance_id) for obj in objects]
        masks = masks_from_boxes(image, boxes, predictor)
        label, results = boxes_to_label(
            fine.shape, boxes, masks, truths=[obj.mask for obj in objects], min_iou=min_iou
        )
        write_json_atomic(
            boxes_json_path(store.label_path(clip, 0, LabelKind.BOXES)),
            boxes_json(results, fine.shape, min_iou),
        )
        return label

    return label_anchor_frames(
        fmt,
        split,
        store,
        source=LabelKind.FINE,
        kind=LabelKind.BOXES,
        engine="sam_boxes",
        settings={"min_iou": min_iou, "instance_train_ids": things, "model": model or {}},
        make_label=make_label,
        progress=progress,
        verb="boxing",
        trainer=trainer,
        movable=[predictor],
    )
