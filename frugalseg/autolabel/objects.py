"""Splitting a semantic label map into objects, finding instance ids, and merging object logits back.

SAM 2 follows objects, not classes, and clicks, boxes and coarse refinement all work object by
object, so a label map becomes one object per instance where an instance-id map exists (Cityscapes
``*_instanceIds.png``: a value ``v ≥ 1000`` is instance ``v % 1000`` of label id ``v // 1000``;
values below 1000 are plain label ids) and one object per 8-connected component of each class (or
one per class) for the rest. Every object keeps its class (train id), so tracked logits merge back
into a label map.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from frugalseg.datamodules.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.datamodules.io import DataError, label_ids_to_train_ids

STUFF_MODES = ("components", "class")
INSTANCE_ID_BASE = 1000
_INSTANCE_SUFFIX = "_instanceIds.png"
_LABEL_SUFFIXES = ("_labelTrainIds.png", "_labelIds.png")


@dataclass(frozen=True)
class LabelObject:
    """One object of a label map: its class, its pixels and its instance id (None for a component)."""

    train_id: int
    mask: np.ndarray  # H×W bool
    instance_id: int | None = None

    @property
    def area(self) -> int:
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
        return self.index == i

    def label_map(self) -> np.ndarray:
        """The label map the objects cover (each pixel its object's class, 255 elsewhere)."""
        table = np.append(np.asarray(self.classes, dtype=np.uint8), np.uint8(IGNORE_INDEX))
        return table[self.index]  # index −1 reads the last entry, 255


def split_objects(
    label: np.ndarray,
    instance_ids: np.ndarray | None = None,
    *,
    stuff: str = "components",
    train_ids: Sequence[int] | None = None,
    min_component_area: int = 1,
) -> LabelObjects:
    """Split an H×W uint8 train-id map (255 ignore) into objects.

    Instance objects come first, by instance id; each covers the pixels of its instance whose
    train id is the instance's class (pixels of an instance labelled otherwise, as left by
    resizing, join the rest). The remaining labelled pixels give one object per 8-connected
    component of each class (``stuff="components"``) or one object per class (``"class"``),
    ordered by class, then by OpenCV's component label (it scans two rows at a time, so this is
    top to bottom but not strictly raster order).

    Args:
        label: H×W uint8 train ids.
        instance_ids: H×W Cityscapes instance-id map of the same frame, or None.
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
    index = np.full(label.shape, -1, dtype=np.int32)
    classes: list[int] = []
    instances: list[int | None] = []
    if instance_ids is not None:
        if instance_ids.shape != label.shape:
            raise ValueError(
                f"instance-id map of shape {instance_ids.shape} does not fit the label of shape {label.shape}"
            )
        values = np.unique(instance_ids[instance_ids >= INSTANCE_ID_BASE])
        instance_classes = label_ids_to_train_ids((values // INSTANCE_ID_BASE).clip(0, 255).astype(np.uint8))
        for value, train_id in zip(values.tolist(), instance_classes.tolist(), strict=True):
            if train_id == IGNORE_INDEX or (wanted is not None and train_id not in wanted):
                continue
            pixels = (instance_ids == value) & (label == train_id)
            if pixels.any():
                index[pixels] = len(classes)
                classes.append(train_id)
                instances.append(value)
    rest = (index < 0) & (label != IGNORE_INDEX)
    for train_id in np.unique(label[rest]).tolist():
        if wanted is not None and train_id not in wanted:
            continue
        pixels = rest & (label == train_id)
        if stuff == "class":
            count, components, areas = 2, pixels.astype(np.int32), [0, int(pixels.sum())]
        else:
            count, components, stats, _ = cv2.connectedComponentsWithStats(
                pixels.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
            )
            areas = stats[:, cv2.CC_STAT_AREA].tolist()
        for component in range(1, count):
            if areas[component] < min_component_area:
                continue
            index[components == component] = len(classes)
            classes.append(train_id)
            instances.append(None)
    return LabelObjects(index=index, classes=classes, instance_ids=instances)


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


def instance_ids_path(label_path: str | Path) -> Path | None:
    """The ``*_instanceIds.png`` beside a ``*_labelTrainIds.png``/``*_labelIds.png`` label, if it exists."""
    label_path = Path(label_path)
    for suffix in _LABEL_SUFFIXES:
        if label_path.name.endswith(suffix):
            candidate = label_path.with_name(label_path.name[: -len(suffix)] + _INSTANCE_SUFFIX)
            return candidate if candidate.is_file() else None
    return None


def read_instance_ids(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a Cityscapes instance-id map (16-bit or 8-bit PNG) as H×W int32.

    With ``shape``, a map of another size is rejected (it would not fit the label it goes with).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "instance-id map does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        raise DataError(
            path,
            f"instance-id map must be a single-channel 8- or 16-bit image, got {image.shape} {image.dtype}",
        )
    if shape is not None and image.shape != tuple(shape):
        raise DataError(
            path, f"instance-id map is {image.shape[1]}×{image.shape[0]}, its label {shape[1]}×{shape[0]}"
        )
    return image.astype(np.int32)


def instance_ids_for(clip: Clip, kind: LabelKind, shape: tuple[int, int]) -> np.ndarray | None:
    """The instance ids beside the clip's ``kind`` label of offset 0 (`instance_ids_path`), or None."""
    ref = clip.label(0, kind)
    path = None if ref is None else instance_ids_path(ref.path)
    return None if path is None else read_instance_ids(path, shape)
