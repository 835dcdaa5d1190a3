"""A negative click's part of a propagated mask that moves with the background: background dragged along.

Where optical flow fails at an object's edge, propagation carries background pixels along as object: on
DAVIS scooter-black, a camera panning after the scooter left 23,000 px of road and wall in the mask, moving
55 px a frame as the background does while the scooter stands still in the frame. The colours do not tell
that spill from the rider's grey suit, and the mask's prior holds it, so a negative click deep in it (49 px)
changed nothing (IoU 0.57 → 0.57). The motion tells it: the mask's pixels split into two motions, and the
click's part moves as the background does.

`release_dragged` finds, for each negative click inside the prior, the prior's pixels that move like the
click and unlike the rest of the mask (two clusters of the working-scale flow, started at the click's motion
and at that of the mask's pixels far from it), keeps the part connected to the click, and releases the prior
there: the cut then decides it by colour, motion and edges, as if the prior were silent. It acts only where
the two motions are `MOTION_APART` working pixels apart, the click's part is at most `DRAGGED_SHARE` of the
mask, and the click moves like the background outside it (`BACKGROUND_LIKE`); elsewhere the object itself
moves in parts (a dog's legs) and nothing is released.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from frugalseg.active.objects.tools.graph_cut import Point

#: The two motions must lie this many working pixels a frame apart. At 2, a walking dog's rump and legs split
#: from each other and a click beside the dog released its back (mean IoU after 1 click 0.83 → 0.80 on dog);
#: 3, 4 and 6 give the same answers on the 203 propagated DAVIS frames (`benchmarks/results/interactive.md`).
MOTION_APART = 4.0
#: The click's part is at most this share of the mask: a larger one is the object moving in parts.
DRAGGED_SHARE = 0.5
#: The click's motion lies nearer the background's (the median flow outside the mask, `BACKGROUND_GAP` working
#: pixels away from it) than this share of its distance to the rest of the mask's motion.
BACKGROUND_LIKE = 0.5
BACKGROUND_GAP = 5
#: The rest of the mask's motion starts from its pixels further from the click than this many times the
#: click's depth in the mask; the two clusters are then refined `CLUSTER_ROUNDS` times (2-medians).
FAR_PER_DEPTH = 2.0
CLUSTER_ROUNDS = 5
#: The constants a click model records in its settings.
SETTINGS = (
    "MOTION_APART",
    "DRAGGED_SHARE",
    "BACKGROUND_LIKE",
    "BACKGROUND_GAP",
    "FAR_PER_DEPTH",
    "CLUSTER_ROUNDS",
)


def dragged_part(flow: np.ndarray, inside: np.ndarray, x: int, y: int) -> np.ndarray | None:
    """The part of ``inside`` (bool mask) around a negative click at (x, y) that moves with the background.

    Args:
        flow: each pixel's optical flow towards the neighbouring frame (H×W×2, the mask's scale).
        inside: the prior mask (bool H×W); the click lies in it.
        x: the click's column.
        y: its row.

    Returns:
        The part (bool H×W), connected to the click; or None where the motion does not tell one
        (module docstring), as where the mask leaves no background to compare with.
    """
    if inside.all():
        return None
    depth = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5)[y, x]
    rows, cols = np.nonzero(inside)
    far = np.hypot(rows - y, cols - x) > FAR_PER_DEPTH * depth
    if far.sum() < 10:
        return None
    vectors = flow[rows, cols]
    own = np.median(flow[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].reshape(-1, 2), axis=0)
    rest = np.median(vectors[far], axis=0)
    for _ in range(CLUSTER_ROUNDS):
        mine = np.linalg.norm(vectors - own, axis=1) < np.linalg.norm(vectors - rest, axis=1)
        if mine.all() or not mine.any():
            return None
        own, rest = np.median(vectors[mine], axis=0), np.median(vectors[~mine], axis=0)
    apart = float(np.linalg.norm(own - rest))
    if apart < MOTION_APART or mine.mean() > DRAGGED_SHARE:
        return None
    gap = np.ones((2 * BACKGROUND_GAP + 1, 2 * BACKGROUND_GAP + 1), np.uint8)
    outside = cv2.dilate(inside.astype(np.uint8), gap) == 0
    if not outside.any() or np.linalg.norm(own - np.median(flow[outside], axis=0)) > BACKGROUND_LIKE * apart:
        return None
    like = np.zeros(inside.shape, np.uint8)
    like[rows[mine], cols[mine]] = 1
    _, parts = cv2.connectedComponents(like, connectivity=8)
    if parts[y, x] == 0:
        return None
    part: np.ndarray = parts == parts[y, x]
    return part


def release_dragged(
    flow: np.ndarray, prior: np.ndarray, confidence: np.ndarray | None, clicks: Sequence[Point]
) -> tuple[np.ndarray, np.ndarray | None]:
    """The prior (float, working scale) and its confidence with each negative click's `dragged_part` released.

    There the prior is 0.5 and its confidence 0: it weighs nothing, and the colour models learn the part
    as neither object nor background at first. Unchanged (the same arrays) where no part is found.

    Args:
        flow: each working pixel's optical flow towards the neighbouring frame (`appearance.work_flow`).
        prior: the correction's prior mask (float in [0, 1], working scale).
        confidence: the prior's confidence (float, working scale), or None (sure).
        clicks: the clicks, in working-scale pixels.
    """
    inside = prior >= 0.5
    released = np.zeros(prior.shape, bool)
    for click in clicks:
        if not click.positive and inside[click.y, click.x]:
            part = dragged_part(flow, inside, click.x, click.y)
            if part is not None:
                released |= part
    if not released.any():
        return prior, confidence
    sure = np.ones(prior.shape, np.float32) if confidence is None else confidence
    return np.where(released, 0.5, prior).astype(np.float32), np.where(released, 0.0, sure).astype(np.float32)
