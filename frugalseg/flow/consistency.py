"""Forward-backward consistency check (Sundaram et al. 2010): where flow is trustworthy."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from frugalseg.flow.warp import backward_warp, remap_at, sample_points

_STRIP = 16  # rows per strip of the numpy check


def forward_backward_mask_np(
    flow_ab: np.ndarray,
    flow_ba: np.ndarray,
    alpha: float = 0.01,
    beta: float = 0.5,
    points: np.ndarray | None = None,
) -> np.ndarray:
    """True where following a→b and back b→a returns near the start pixel.

    ``|f_ab + f_ba(p + f_ab)|² < alpha·(|f_ab|² + |f_ba(p + f_ab)|²) + beta``, and the target
    ``p + f_ab`` lies inside the image, its last row and column included (``0 ≤ x ≤ W−1``,
    ``0 ≤ y ≤ H−1``). Pixels of image a that fail are occluded or badly matched. ``points`` are
    ``f_ab``'s `frugalseg.flow.warp.sample_points` where the caller has them already.

    ``f_ba`` is read with border replication and "inside" is decided from the sample coordinates:
    a sample point exactly on the last row or column has a bilinear neighbour outside the image
    with weight 0, which a NaN border would still turn into NaN.
    """
    if flow_ab.shape != flow_ba.shape or flow_ab.ndim != 3 or flow_ab.shape[2] != 2:
        raise ValueError(f"flows of shapes {flow_ab.shape} and {flow_ba.shape} do not fit (H×W×2 each)")
    height, width = flow_ab.shape[:2]
    points = sample_points(flow_ab) if points is None else points
    flow_ba = np.ascontiguousarray(flow_ba, dtype=np.float32)
    consistent = np.empty((height, width), bool)
    # in strips of rows, so that the temporaries stay in the cache: the check is memory-bound
    for top in range(0, height, _STRIP):
        rows = slice(top, top + _STRIP)
        back = remap_at(flow_ba, points[rows], cv2.INTER_LINEAR, cv2.BORDER_REPLICATE)
        forward = flow_ab[rows]
        trip = forward + back
        np.multiply(trip, trip, out=trip)
        np.multiply(back, back, out=back)
        forward = forward * forward
        # the squared norms from the channels' squares, in the formula's order of sums
        bound = forward[..., 0] + forward[..., 1]
        bound += back[..., 0] + back[..., 1]
        bound *= alpha
        bound += beta
        np.less(trip[..., 0] + trip[..., 1], bound, out=consistent[rows])
    consistent &= cv2.inRange(points, (0.0, 0.0), (width - 1.0, height - 1.0)).view(bool)
    return consistent


def photometric_mask_np(
    image_a: np.ndarray, image_b: np.ndarray, points: np.ndarray, tol: float
) -> np.ndarray:
    """True where image b at ``p + f_ab(p)`` matches image a at ``p`` within ``tol`` grey levels.

    ``|I_b(p + f_ab(p)) − I_a(p)| ≤ tol`` with ``I_b`` read bilinearly (0 outside the image) at the
    flow's `frugalseg.flow.warp.sample_points`; images are H×W float32. Computed in strips of rows,
    as the forward-backward check is.
    """
    if image_a.shape != image_b.shape or points.shape[:2] != image_a.shape:
        raise ValueError(
            f"images of shapes {image_a.shape} and {image_b.shape} and points of shape {points.shape} "
            "do not fit"
        )
    matches = np.empty(image_a.shape, bool)
    for top in range(0, image_a.shape[0], _STRIP):
        rows = slice(top, top + _STRIP)
        sampled = remap_at(image_b, points[rows], cv2.INTER_LINEAR, cv2.BORDER_CONSTANT, 0)
        np.less_equal(cv2.absdiff(sampled, image_a[rows]), tol, out=matches[rows])
    return matches


def forward_backward_mask(
    flow_ab: torch.Tensor, flow_ba: torch.Tensor, alpha: float = 0.01, beta: float = 0.5
) -> torch.Tensor:
    """Batched torch version of :func:`forward_backward_mask_np` (flows B×2×H×W, result B×H×W bool)."""
    back, inside = backward_warp(flow_ba, flow_ab, mode="bilinear")
    round_trip = flow_ab + back
    bound = alpha * ((flow_ab**2).sum(1) + (back**2).sum(1)) + beta
    return inside & ((round_trip**2).sum(1) < bound)
