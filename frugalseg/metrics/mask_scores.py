"""J and F of one object's mask on one frame, the scores of J&F (`frugalseg.metrics.jf`), in numpy alone.

With void pixels (255 in the annotation) left out of both masks:

- **J** (region similarity) is the IoU of the predicted and the annotated mask; 1 when both are empty.
- **F** (contour accuracy) is the F-measure of boundary precision and recall. A mask's boundary is
  the set of pixels that differ from their right, lower or lower-right neighbour (an edge is marked
  on its top/left side, inside or outside the mask); the image border is not a boundary. A boundary
  pixel of one mask is matched when the other mask's boundary, dilated by a disk of radius
  ``ceil(0.008 · image diagonal)`` pixels (8 px at 854×480), covers it. With no predicted boundary
  precision is 1, with no annotated boundary recall is 1; both empty gives F = 1.

The annotation tools score their answers with these; they import neither torch nor torchmetrics.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

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
