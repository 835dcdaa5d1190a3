"""Snapping a warped label map to the evidence of its own frame: colour models and edges (GrabCut).

A label carried along optical flow drifts: each warp misplaces the boundary by a little, the
misplacement is carried on, and pixels whose flow failed the checks take a guess. `snap_labels`
re-decides, on the target frame itself, the pixels near a label boundary whose flow was unreliable,
with OpenCV's GrabCut (Rother et al. 2004): colour models (Gaussian mixtures) of the class and of
its surroundings learned from the confident pixels of the frame around the object, and a graph
cut that puts boundaries on colour edges. Reliable pixels stay fixed, so on a short, well-matched
step the label is unchanged and only the pixels the flow could not vouch for move.

A class is snapped against the rest (one GrabCut per class), so the step is meant for object masks
(a few classes on a background); label maps with more classes than ``max_classes`` are returned
unchanged (street scenes: dozens of classes, wide regions, where a one-against-rest cut per class
would cost seconds a frame).
"""

from __future__ import annotations

import cv2
import numpy as np


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def snap_labels(
    label: np.ndarray,
    reliable: np.ndarray,
    frame: np.ndarray,
    *,
    band: int = 3,
    reach: int = 20,
    iterations: int = 2,
    max_classes: int = 4,
    ignore: int = 255,
    margin: int = 20,
    downscale: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-decide the unreliable pixels near each class's boundary on ``frame``; returns the label
    and where it changed.

    For each class except the most frequent one (the background), GrabCut gets as *probable* class
    / not-class the pixels of ``label`` that are unreliable and within ``band`` px of the class's
    boundary, or unreliable and within ``reach`` px of it; every other pixel is fixed to what
    ``label`` says. The cut runs on the bounding box of that zone, grown by ``margin`` px, so the
    colour models are local. A pixel the cut takes from the class gets the background class, one it
    gives to the class gets the class; a ``ignore`` pixel the cut leaves outside stays ``ignore``.

    Args:
        label: H×W uint8 label map (``ignore`` = unlabelled).
        reliable: H×W bool, where the label was carried by a flow that passed its checks.
        frame: the H×W×3 uint8 RGB frame the label belongs to.
        band: width (px) of the boundary band open to the cut wherever the flow was unreliable.
        reach: how far (px) from the boundary an unreliable pixel is still open to the cut.
        iterations: GrabCut iterations (colour model re-estimation and cut).
        max_classes: label maps with more classes than this are returned unchanged.
        ignore: the unlabelled value.
        margin: growth (px) of the cut's box around the zone open to it.
        downscale: run the cut on the box shrunk by this factor (faster; the open pixels take the
            cut's answer upsampled, the fixed ones keep theirs).
    """
    if downscale < 1:
        raise ValueError(f"downscale must be >= 1, got {downscale}")
    if label.shape != reliable.shape or label.shape != frame.shape[:2]:
        raise ValueError(
            f"label {label.shape}, reliable {reliable.shape} and frame {frame.shape} differ in size"
        )
    out = label.copy()
    values, counts = np.unique(label[label != ignore], return_counts=True)
    if not 2 <= values.size <= max_classes:
        return out, np.zeros(label.shape, bool)
    background = int(values[counts.argmax()])
    height, width = label.shape
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    for value in values[np.argsort(counts)]:
        if value == background:
            continue
        current = out == value
        obj = current.view(np.uint8)
        near = (cv2.dilate(obj, _disk(band)) > 0) & (cv2.erode(obj, _disk(band)) == 0)
        wide = (cv2.dilate(obj, _disk(reach)) > 0) & (cv2.erode(obj, _disk(reach)) == 0)
        open_ = (near | wide) & ~reliable
        if not open_.any():
            continue
        mask = np.where(current, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
        mask[open_ & current] = cv2.GC_PR_FGD
        mask[open_ & ~current] = cv2.GC_PR_BGD
        ys, xs = np.nonzero(wide | current)
        y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, height)
        x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, width)
        sub = np.ascontiguousarray(mask[y0:y1, x0:x1])
        image = np.ascontiguousarray(bgr[y0:y1, x0:x1])
        if downscale > 1:
            small = (max((x1 - x0) // downscale, 1), max((y1 - y0) // downscale, 1))
            sub = cv2.resize(sub, small, interpolation=cv2.INTER_NEAREST)
            image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
        if not (sub == cv2.GC_BGD).any() and not (sub == cv2.GC_PR_BGD).any():
            continue  # the class fills the box: nothing to learn the surroundings from
        models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(image, sub, None, *models, iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error:
            continue  # too few samples of one side for a colour model: keep the label
        inside = ((sub == cv2.GC_FGD) | (sub == cv2.GC_PR_FGD)).view(np.uint8)
        if downscale > 1:
            inside = cv2.resize(inside, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
        inside = np.where(open_[y0:y1, x0:x1], inside > 0, current[y0:y1, x0:x1])
        window = out[y0:y1, x0:x1]
        was = window == value
        window[inside] = value
        window[was & ~inside] = background
    return out, out != label
