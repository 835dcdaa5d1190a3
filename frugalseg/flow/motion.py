"""Whole-object motion from tracked corners: a prior for where a fast object went.

Dense flow (DIS) is coarse to fine: a small or fast object, or one that moves against a textured
background, often gets the background's motion, and a label carried along that flow stays behind
(parts of the object are lost where it went, a trail is left where it was). Corners *on* the object
tracked with pyramidal Lucas-Kanade (large window, many levels) usually still follow it. A
similarity transform (shift, rotation, scale) fitted to the tracks that survive a forward-backward
check, with RANSAC, gives the object's overall motion; the previous mask moved by it is a prior for
the object's place in the new frame, which `FlowPropagator` hands to the colour cut
(`frugalseg.flow.refine.object_cut`) as the pixels to re-decide.
"""

from __future__ import annotations

import cv2
import numpy as np


def object_motion(
    first: np.ndarray,
    second: np.ndarray,
    mask: np.ndarray,
    *,
    max_corners: int = 300,
    min_tracks: int = 8,
    window: int = 21,
    levels: int = 4,
    round_trip: float = 1.0,
    ransac_threshold: float = 3.0,
) -> np.ndarray | None:
    """The similarity transform (2×3 float64) that moves the object ``mask`` of ``first`` onto ``second``.

    None when fewer than ``min_tracks`` corners of the object are tracked there and back within
    ``round_trip`` px, or fewer than ``min_tracks`` of them agree with one transform.

    Args:
        first: the frame the mask belongs to, H×W×3 uint8 RGB (or H×W grey).
        second: the frame to find the object in, same size.
        mask: H×W bool, the object in ``first``.
        max_corners: at most this many Shi-Tomasi corners inside the mask are tracked.
        min_tracks: fewest consistent tracks (and RANSAC inliers) to trust a transform.
        window: Lucas-Kanade window (px).
        levels: pyramid levels above the full resolution (reach grows ×2 per level).
        round_trip: largest distance (px) between a corner and its track tracked back.
        ransac_threshold: RANSAC's inlier distance (px).
    """
    if first.shape[:2] != second.shape[:2] or mask.shape != first.shape[:2]:
        raise ValueError(f"frames {first.shape}, {second.shape} and mask {mask.shape} differ in size")
    grey = [f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (first, second)]
    corners = cv2.goodFeaturesToTrack(grey[0], max_corners, 0.01, 5, mask=mask.astype(np.uint8))
    if corners is None or len(corners) < min_tracks:
        return None
    lk = {"winSize": (window, window), "maxLevel": levels}
    # OpenCV's stubs refuse None for the output points, which calc then allocates
    tracked, found, _ = cv2.calcOpticalFlowPyrLK(grey[0], grey[1], corners, None, **lk)  # type: ignore[call-overload]
    back, found_back, _ = cv2.calcOpticalFlowPyrLK(grey[1], grey[0], tracked, None, **lk)  # type: ignore[call-overload]
    good = (found[:, 0] == 1) & (found_back[:, 0] == 1)
    good &= np.linalg.norm((back - corners)[:, 0], axis=1) < round_trip
    if good.sum() < min_tracks:
        return None
    transform, inliers = cv2.estimateAffinePartial2D(
        corners[good], tracked[good], method=cv2.RANSAC, ransacReprojThreshold=ransac_threshold
    )
    if transform is None or int(inliers.sum()) < min_tracks:
        return None
    return np.asarray(transform, np.float64)


def moved_masks(
    label: np.ndarray, first: np.ndarray, second: np.ndarray, values: list[int]
) -> dict[int, np.ndarray]:
    """Each class of ``values`` in ``label`` (on ``first``) moved by its `object_motion` onto ``second``.

    Classes whose motion cannot be trusted are left out. Returns ``{class: H×W bool}``.
    """
    height, width = label.shape
    moved = {}
    for value in values:
        mask = label == value
        if not mask.any():
            continue
        transform = object_motion(first, second, mask)
        if transform is None:
            continue
        warped = cv2.warpAffine(mask.view(np.uint8), transform, (width, height), flags=cv2.INTER_NEAREST)
        moved[value] = warped > 0
    return moved
