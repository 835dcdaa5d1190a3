"""Splitting a semantic label map into objects, finding instance ids, and merging object logits back.

SAM 2 follows objects, not classes, and clicks, boxes and coarse refinement all work object by
object, so a label map becomes one object per instance where the data set has instance ids
(`Format.instance_ids`: a non-zero id per instance, e.g. Cityscapes ``*_instanceIds.png`` or the
object ids of a DAVIS mask) and one object per 8-connected component of each class (or one per
class) for the rest. Every object keeps its class (train id), so tracked logits merge back into a
label map.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from frugalseg.data.clips import IGNORE_INDEX

STUFF_MODES = ("components", "class")


@dataclass(frozen=True)
class LabelObject:
    """One object of a label map: its class, its pixels and its instance id (None for a component)."""

    train_id: int
    mask: np.ndarray  # H×W bool
    instance_id: int | None = None

    @property
    def area(self) -> int:
        """Pixels of the object."""
        return int(self.mask.sum())


@dataclass
class LabelObjects:
    """The objects of one label map, held as a single map of object indices.

    Attributes:
        index: H×W int32, the object each pixel belongs to (−1: none, the pixel is ignore).
        classes: train id of each object.
        instance_ids: the instance id each object came from, or None for a component or class object.
    """

    index: np.ndarray
    classes: list[int]
    instance_ids: list[int | None]

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, i: int) -> LabelObject:
        """Object ``i`` with its own mask."""
        train_id, instance_id = self.classes[i], self.instance_ids[i]  # IndexError past the end
        return LabelObject(train_id, self.mask(i % len(self)), instance_id)

    def __iter__(self) -> Iterator[LabelObject]:
        return (self[i] for i in range(len(self)))

    def mask(self, i: int) -> np.ndarray:
        """H×W bool mask of object ``i``."""
        result: np.ndarray = self.index == i
        return result

    def _add(self, pixels: np.ndarray, train_id: int, instance_id: int | None) -> None:
        """Append an object of class ``train_id`` made of ``pixels`` (H×W bool, unclaimed so far)."""
        self.index[pixels] = len(self.classes)
        self.classes.append(train_id)
        self.instance_ids.append(instance_id)

    def label_map(self) -> np.ndarray:
        """The label map the objects cover (each pixel its object's class, 255 elsewhere)."""
        table = np.append(np.asarray(self.classes, dtype=np.uint8), np.uint8(IGNORE_INDEX))
        result: np.ndarray = table[self.index]  # index −1 reads the last entry, 255
        return result


def split_objects(
    label: np.ndarray,
    instance_ids: np.ndarray | None = None,
    *,
    stuff: str = "components",
    train_ids: Sequence[int] | None = None,
    min_component_area: int = 1,
) -> LabelObjects:
    """Split an H×W uint8 train-id map (255 ignore) into objects.

    Instance objects come first, by instance id; an instance's class is the most frequent train id
    under it, and it covers the pixels of the instance with that class (pixels of an instance
    labelled otherwise, as left by resizing, join the rest). The remaining labelled pixels give one
    object per 8-connected component of each class (``stuff="components"``) or one object per class
    (``"class"``), ordered by class, then by OpenCV's component label (it scans two rows at a time,
    so this is top to bottom but not strictly raster order).

    Args:
        label: H×W uint8 train ids.
        instance_ids: H×W instance ids of the same frame (0: no instance), or None.
        stuff: how pixels outside instances are split (`STUFF_MODES`).
        train_ids: only objects of these classes (None: every class).
        min_component_area: components (or class objects) with fewer pixels are left out;
            instances are always kept.
    """
    if stuff not in STUFF_MODES:
        raise ValueError(f"unknown stuff mode {stuff!r}; modes: {', '.join(STUFF_MODES)}")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(f"label must be an H×W uint8 map, got shape {label.shape} and dtype {label.dtype}")
    wanted = None if train_ids is None else {int(t) for t in train_ids}
    objects = LabelObjects(index=np.full(label.shape, -1, dtype=np.int32), classes=[], instance_ids=[])
    if instance_ids is not None:
        if instance_ids.shape != label.shape:
            raise ValueError(
                f"instance-id map of shape {instance_ids.shape} does not fit the label of shape {label.shape}"
            )
        _add_instances(objects, label, instance_ids, wanted)
    rest = (objects.index < 0) & (label != IGNORE_INDEX)
    for train_id in np.unique(label[rest]).tolist():
        if wanted is not None and train_id not in wanted:
            continue
        count, components, areas = _pieces(rest & (label == train_id), stuff)
        for component in range(1, count):
            if areas[component] >= min_component_area:
                objects._add(components == component, train_id, None)
    return objects


def _add_instances(
    objects: LabelObjects, label: np.ndarray, instance_ids: np.ndarray, wanted: set[int] | None
) -> None:
    """Add one object per instance of ``instance_ids`` (by id) whose class is ``wanted``.

    Args:
        objects: the objects so far (none), added to.
        label: H×W uint8 train ids.
        instance_ids: H×W instance ids (0: no instance).
        wanted: the classes kept, None for all.
    """
    labelled = (instance_ids > 0) & (label != IGNORE_INDEX)
    for value in np.unique(instance_ids[labelled]).tolist():
        pixels = labelled & (instance_ids == value)
        train_id = int(np.bincount(label[pixels]).argmax())
        if wanted is not None and train_id not in wanted:
            continue
        objects._add(pixels & (label == train_id), train_id, value)


def _pieces(pixels: np.ndarray, stuff: str) -> tuple[int, np.ndarray, list[int]]:
    """The objects one class's pixels make: one per 8-connected component, or the class as one.

    Args:
        pixels: H×W bool, the class's pixels outside instances.
        stuff: ``"components"`` or ``"class"`` (`STUFF_MODES`).

    Returns:
        ``(count, pieces, areas)`` as OpenCV's connected components give them: pieces labelled
        1…count−1 in an H×W int32 map (0: not the class), and each label's pixel count.
    """
    if stuff == "class":
        return 2, pixels.astype(np.int32), [0, int(pixels.sum())]
    count, pieces, stats, _ = cv2.connectedComponentsWithStats(
        pixels.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    areas: list[int] = stats[:, cv2.CC_STAT_AREA].tolist()
    return count, pieces, areas


def merge_objects(
    logits: np.ndarray | torch.Tensor,
    classes: Sequence[int],
    size: tuple[int, int] | None = None,
    *,
    chunk: int = 16,
) -> np.ndarray:
    """Merge per-object logits into an H×W uint8 label map.

    Each pixel takes the class of the object with the highest logit; a pixel that no object claims
    (every logit ≤ 0, SAM's mask threshold) becomes 255. Objects are taken ``chunk`` at a time and,
    with ``size``, upsampled bilinearly to it (as SAM 2 upsamples its masks), so memory stays at a
    few H×W maps however many objects there are. Ties go to the earlier object.

    Args:
        logits: N×h×w (or N×1×h×w) object logits, numpy or torch (on any device).
        classes: train id of each object.
        size: (H, W) of the output; None keeps h×w.
        chunk: objects upsampled at once.
    """
    scores = torch.as_tensor(logits)
    if scores.ndim == 4 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 3 or scores.shape[0] != len(classes):
        raise ValueError(
            f"logits of shape {tuple(scores.shape)} do not fit {len(classes)} objects (expected N×h×w)"
        )
    out_size = tuple(scores.shape[-2:]) if size is None else tuple(size)
    table = torch.as_tensor(list(classes), dtype=torch.uint8, device=scores.device)
    best = torch.zeros(out_size, dtype=torch.float32, device=scores.device)
    merged = torch.full(out_size, IGNORE_INDEX, dtype=torch.uint8, device=scores.device)
    for start in range(0, scores.shape[0], chunk):
        part = scores[start : start + chunk].float()
        if tuple(part.shape[-2:]) != out_size:
            part = F.interpolate(part[:, None], size=out_size, mode="bilinear", align_corners=False)[:, 0]
        value, which = part.max(dim=0)
        better = value > best  # strictly: claimed only above 0, earlier objects win ties
        best = torch.where(better, value, best)
        merged = torch.where(better, table[start + which], merged)
    return merged.cpu().numpy()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = int(np.logical_or(a, b).sum())
    return 1.0 if union == 0 else int(np.logical_and(a, b).sum()) / union
