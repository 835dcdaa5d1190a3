"""J&F, the DAVIS measure of video object segmentation (Perazzi et al. 2016; DAVIS 2017 protocol).

For one object in one frame, with void pixels (255 in the annotation) left out of both masks:

- **J** (region similarity) is the IoU of the predicted and the annotated mask; 1 when both are empty.
- **F** (contour accuracy) is the F-measure of boundary precision and recall. A mask's boundary is
  the set of pixels that differ from their right, lower or lower-right neighbour (an edge is marked
  on its top/left side, inside or outside the mask); the image border is not a boundary. A boundary
  pixel of one mask is matched when the other mask's boundary, dilated by a disk of radius
  ``ceil(0.008 · image diagonal)`` pixels (8 px at 854×480), covers it. With no predicted boundary
  precision is 1, with no annotated boundary recall is 1; both empty gives F = 1.

As the DAVIS 2017 evaluation does, the first frame (the given masks) and the last frame of a
sequence are not scored, each object's J and F are averaged over its frames, and the reported
J, F and J&F are means over all objects of all sequences (not over sequences). The objects of a
sequence are ids 1…n, n the largest id on its first annotated frame.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

VOID = 255
BOUNDARY_TOLERANCE = 0.008


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """H×W bool: pixels of ``mask`` that differ from their right, lower or lower-right neighbour."""
    mask = mask.astype(bool)
    edge = np.zeros_like(mask)
    edge[:, :-1] |= mask[:, :-1] ^ mask[:, 1:]
    edge[:-1, :] |= mask[:-1, :] ^ mask[1:, :]
    edge[:-1, :-1] |= mask[:-1, :-1] ^ mask[1:, 1:]
    return edge


def boundary_radius(height: int, width: int, tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """Matching distance in pixels: ``tolerance`` itself if ≥ 1, else ``ceil(tolerance · diagonal)``."""
    return int(tolerance) if tolerance >= 1 else math.ceil(tolerance * math.hypot(height, width))


def _disk(radius: int) -> np.ndarray:
    """uint8 disk structuring element: offsets (y, x) with y² + x² ≤ radius²."""
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk: np.ndarray = (y * y + x * x <= radius * radius).astype(np.uint8)
    return disk


def _outside_void(
    pred: np.ndarray, target: np.ndarray, void: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool with the ``void`` pixels cleared."""
    pred, target = pred.astype(bool), target.astype(bool)
    if void is None:
        return pred, target
    keep = ~void.astype(bool)
    return pred & keep, target & keep


def region_similarity(pred: np.ndarray, target: np.ndarray, void: np.ndarray | None = None) -> float:
    """J: IoU of two H×W bool masks outside ``void``; 1.0 when their union is empty."""
    pred, target = _outside_void(pred, target, void)
    union = int(np.count_nonzero(pred | target))
    return 1.0 if union == 0 else int(np.count_nonzero(pred & target)) / union


def contour_accuracy(
    pred: np.ndarray,
    target: np.ndarray,
    void: np.ndarray | None = None,
    tolerance: float = BOUNDARY_TOLERANCE,
) -> float:
    """F: boundary F-measure of two H×W bool masks, void pixels removed from both first."""
    pred, target = _outside_void(pred, target, void)
    pred_edge, target_edge = boundary_map(pred), boundary_map(target)
    n_pred, n_target = int(np.count_nonzero(pred_edge)), int(np.count_nonzero(target_edge))
    if n_pred == 0 or n_target == 0:
        return 1.0 if n_pred == n_target else 0.0  # one side empty: P or R is 0, so F = 0
    height, width = pred.shape
    disk = _disk(boundary_radius(height, width, tolerance))
    pred_near = cv2.dilate(pred_edge.view(np.uint8), disk).astype(bool)
    target_near = cv2.dilate(target_edge.view(np.uint8), disk).astype(bool)
    precision = np.count_nonzero(pred_edge & target_near) / n_pred
    recall = np.count_nonzero(target_edge & pred_near) / n_target
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _as_ids(x: Tensor, name: str) -> np.ndarray:
    if x.is_floating_point():
        if x.dim() != 4:
            raise ValueError(f"{name}: expected T×H×W object ids or T×K×H×W scores, got {tuple(x.shape)}")
        x = x.argmax(1)
    if x.dim() != 3:
        raise ValueError(f"{name}: expected T×H×W object ids, got {tuple(x.shape)}")
    return x.detach().cpu().numpy()


def sequence_jf(
    preds: Tensor,
    target: Tensor,
    num_objects: int | None = None,
    tolerance: float = BOUNDARY_TOLERANCE,
    skip_first_last: bool = True,
) -> tuple[Tensor, Tensor]:
    """Per-object J and F (float64 tensors of length n) of one sequence, each averaged over frames.

    ``preds`` T×H×W object ids (or T×K×H×W scores, arg-maxed), ``target`` T×H×W object ids with
    255 = void. ``num_objects`` defaults to the largest id on the first target frame.
    """
    pred_ids, gt_ids = _as_ids(preds, "preds"), _as_ids(target, "target")
    if pred_ids.shape != gt_ids.shape:
        raise ValueError(f"preds {pred_ids.shape} and target {gt_ids.shape} must have the same T×H×W")
    if num_objects is None:
        first = gt_ids[0]
        num_objects = int(first[first != VOID].max(initial=0))
    frames = range(1, len(gt_ids) - 1) if skip_first_last else range(len(gt_ids))
    if len(frames) == 0:
        raise ValueError(
            f"a sequence of {len(gt_ids)} frames has no frame to score "
            f"({'first and last are skipped, as in DAVIS' if skip_first_last else 'empty'})"
        )
    j = np.zeros((num_objects, len(frames)))
    f = np.zeros((num_objects, len(frames)))
    for col, t in enumerate(frames):
        void = gt_ids[t] == VOID
        for obj in range(1, num_objects + 1):
            pred_mask, gt_mask = pred_ids[t] == obj, gt_ids[t] == obj
            j[obj - 1, col] = region_similarity(pred_mask, gt_mask, void)
            f[obj - 1, col] = contour_accuracy(pred_mask, gt_mask, void, tolerance)
    return torch.from_numpy(j.mean(1)), torch.from_numpy(f.mean(1))


class JF(Metric):
    """DAVIS J, F and J&F accumulated over sequences (summed per-object means; exact under DDP).

    ``update(preds, target, num_objects=None)`` takes one whole sequence (see :func:`sequence_jf`).
    ``compute()`` returns ``{"J": …, "F": …, "JF": …}``, means over every object seen;
    ``last_sequence`` holds the per-object (J, F) of the latest sequence (this process only).
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True
    j_sum: Tensor
    f_sum: Tensor
    objects: Tensor

    def __init__(
        self, tolerance: float = BOUNDARY_TOLERANCE, skip_first_last: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if tolerance <= 0:
            raise ValueError(
                f"tolerance must be > 0 (fraction of the diagonal, or pixels if ≥ 1), got {tolerance}"
            )
        self.tolerance = tolerance
        self.skip_first_last = skip_first_last
        self.add_state("j_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("f_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("objects", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.last_sequence: tuple[Tensor, Tensor] | None = None

    def update(self, preds: Tensor, target: Tensor, num_objects: int | None = None) -> None:
        """Add the per-object J and F of one sequence."""
        j, f = sequence_jf(preds, target, num_objects, self.tolerance, self.skip_first_last)
        self.last_sequence = (j, f)
        self.j_sum += j.sum().to(self.j_sum.device)
        self.f_sum += f.sum().to(self.f_sum.device)
        self.objects += len(j)

    def compute(self) -> dict[str, Tensor]:
        """Mean J, F and their average J&F over all objects (NaN before any object was seen)."""
        count = self.objects.double()
        j = torch.where(count > 0, self.j_sum / count.clamp(min=1), torch.full_like(count, float("nan")))
        f = torch.where(count > 0, self.f_sum / count.clamp(min=1), torch.full_like(count, float("nan")))
        return {"J": j.float(), "F": f.float(), "JF": ((j + f) / 2).float()}
