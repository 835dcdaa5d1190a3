"""Background a propagated object mask drags along: its pixels that move as the background does.

Where dense flow smooths an object's motion into the background at its edge, a label carried along that
flow takes background pixels with it, and once in the mask they move on with the background: a camera
panning after a scooter leaves the wall and the parked scooters behind it in the mask, frame after frame
(DAVIS scooter-black: J 0.55 at frame 30 of 40). Colour models do not tell that spill from the object, but
its motion does. `drop_dragged` takes each object's motion (the median flow of its core) and the
background's (the median flow away from every object); where the two lie at least `MIN_APART` of the
frame's size apart, an object pixel whose flow lies nearer the background's motion, and within
`NEAR_BACKGROUND` of the two motions' distance of it, becomes background. A part moving its own way (a
dancer's limb) lies between the two motions and is kept, and a part over `MAX_SHARE` of the object is its
own motion, not a spill. A foot planted on the ground moves as the ground does and is taken: the flow
engine therefore drops the dragged pixels from the labels it outputs, not from the label it carries on
(`frugalseg.autolabel.flow_propagate`; what it changes: `benchmarks/results/propagation_quality.md`,
issue 44, stop 77).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

#: The object's and the background's motions lie at least this share of the frame's size (the geometric
#: mean of its sides; 6.4 px at 854×480) apart, else nothing is taken.
MIN_APART = 0.01
#: A pixel is taken where its flow lies within this share of the two motions' distance of the background's.
NEAR_BACKGROUND = 0.15
#: The pixels taken are at most this share of the object's, else none are (its parts move apart).
MAX_SHARE = 0.5
#: The object's motion is the median flow of its mask eroded by this many px (or of the whole mask where
#: erosion leaves under `FEWEST` px); the background's, of the pixels this many px away from every object.
CORE_ERODE = 7
BACKGROUND_GAP = 10
FEWEST = 50


def drop_dragged(
    label: np.ndarray, flow: np.ndarray, objects: Iterable[int]
) -> tuple[np.ndarray, np.ndarray]:
    """``label`` with each object's dragged background set to 0, and where it was (bool H×W).

    Args:
        label: the propagated label of a frame (uint8 H×W: 0 background, object ids, 255 unknown).
        flow: that frame's optical flow to the frame the label was carried from (H×W×2, px).
        objects: the ids of the objects (not 0 or 255) to look at.
    """
    if flow.shape[:2] != label.shape:
        raise ValueError(f"flow of shape {flow.shape} for a label of shape {label.shape}")
    ids = [value for value in objects if value not in (0, 255)]
    dropped = np.zeros(label.shape, bool)
    if not ids:
        return label, dropped
    any_object = np.isin(label, ids).astype(np.uint8)
    gap = np.ones((2 * BACKGROUND_GAP + 1, 2 * BACKGROUND_GAP + 1), np.uint8)
    background = (cv2.dilate(any_object, gap) == 0) & (label != 255)
    if background.sum() < FEWEST:
        return label, dropped
    background_motion = np.median(flow[background], axis=0)
    least_apart = MIN_APART * float(np.sqrt(label.shape[0] * label.shape[1]))
    core_kernel = np.ones((2 * CORE_ERODE + 1, 2 * CORE_ERODE + 1), np.uint8)
    for value in ids:
        mask = label == value
        if mask.sum() < FEWEST:
            continue
        core = cv2.erode(mask.astype(np.uint8), core_kernel) > 0
        own_motion = np.median(flow[core if core.sum() >= FEWEST else mask], axis=0)
        apart = float(np.linalg.norm(own_motion - background_motion))
        if apart < least_apart:
            continue
        rows, cols = np.nonzero(mask)
        vectors = flow[rows, cols]
        to_background = np.linalg.norm(vectors - background_motion, axis=1)
        to_object = np.linalg.norm(vectors - own_motion, axis=1)
        taken = (to_background < to_object) & (to_background < NEAR_BACKGROUND * apart)
        if taken.sum() > MAX_SHARE * rows.size:
            continue
        dropped[rows[taken], cols[taken]] = True
    if dropped.any():
        label = np.where(dropped, np.uint8(0), label)
    return label, dropped
