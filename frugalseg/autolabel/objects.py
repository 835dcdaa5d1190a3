"""Splitting a semantic label map into objects for mask trackers, and merging object logits back.

A tracker such as SAM 2 follows objects, not classes, so the annotated frame's label map becomes one
object per instance where an instance-id map exists (Cityscapes ``*_instanceIds.png``: a value
``v ≥ 1000`` is instance ``v % 1000`` of label id ``v // 1000``; values below 1000 are plain label
ids) and one object per 8-connected component of each class (or one per class) for the rest. Every
object keeps its class (train id), so the tracked logits merge back into a label map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from frugalseg.datamodules.clips import IGNORE_INDEX
from frugalseg.datamodules.io import DataError, label_ids_to_train_ids

STUFF_MODES = ("components", "class")
INSTANCE_ID_BASE = 1000
_INSTANCE_SUFFIX = "_instanceIds.png"
_LABEL_SUFFIXES = ("_labelTrainIds.png", "_labelIds.png")


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

    def mask(self, i: int) -> np.ndarray:
        """H×W bool mask of object ``i``."""
        return self.index == i

    def label_map(self) -> np.ndarray:
        """The label map the objects cover (each pixel its object's class, 255 elsewhere)."""
        table = np.append(np.asarray(self.classes, dtype=np.uint8), np.uint8(IGNORE_INDEX))
        return table[self.index]  # index −1 reads the last entry, 255


def split_objects(
    label: np.ndarray, instance_ids: np.ndarray | None = None, *, stuff: str = "components"
) -> LabelObjects:
    """Split an H×W uint8 train-id map (255 ignore) into objects.

    Instance objects come first, by instance id; each covers the pixels of its instance whose
    train id is the instance's class (pixels of an instance labelled otherwise, as left by
    resizing, join the rest). The remaining labelled pixels give one object per 8-connected
    component of each class (``stuff="components"``) or one object per class (``"class"``),
    ordered by class, then by component label.

    Args:
        label: H×W uint8 train ids.
        instance_ids: H×W Cityscapes instance-id map of the same frame, or None.
        stuff: how pixels outside instances are split (`STUFF_MODES`).
    """
    if stuff not in STUFF_MODES:
        raise ValueError(f"unknown stuff mode {stuff!r}; modes: {', '.join(STUFF_MODES)}")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(f"label must be an H×W uint8 map, got shape {label.shape} and dtype {label.dtype}")
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
            pixels = (instance_ids == value) & (label == train_id)
            if train_id != IGNORE_INDEX and pixels.any():
                index[pixels] = len(classes)
                classes.append(train_id)
                instances.append(value)
    rest = (index < 0) & (label != IGNORE_INDEX)
    for train_id in np.unique(label[rest]).tolist():
        pixels = rest & (label == train_id)
        if stuff == "class":
            count, components = 2, pixels.astype(np.int32)
        else:
            count, components = cv2.connectedComponents(
                pixels.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
            )
        for component in range(1, count):
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
