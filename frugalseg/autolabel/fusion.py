"""One frame's label from several propagated labels of it, and how sure the result is.

A frame between annotated frames gets a label from each of them (a propagation engine carries
each anchor's label to it); `fuse_labels` makes one label of them, per pixel, by their
reliability. Each side is ``(label, weight, confidence or None)``: ``weight`` is what the side is
worth as a whole (the annotation loop uses ``1 / distance`` in frames to its anchor), ``confidence``
the engine's per-pixel confidence in 0…1 (``FlowPropagator.propagate_with_confidence``; None
trusts every labelled pixel fully). A side labels nothing where its label is 255.

Per pixel, with ``cᵢ`` the side's confidence (1 without a map, 0 where it says 255) and
``sᵢ = wᵢ · cᵢ`` its support:

* the label is the one of the largest summed support (ties: the smaller label value);
* the confidence is the winner's share of the support, ``S_win / Σ sᵢ``, times the chance that
  at least one of the sides giving the winning label is right, ``1 − Π (1 − cᵢ)`` over those
  sides: one side alone keeps its own confidence, two that agree raise it
  (``1 − (1 − c₁)(1 − c₂)``: two independent routes to the same answer), a disagreement lowers
  the winner's by the loser's share.

Pixels no side labels take the weighted majority of the ``window`` × ``window`` box around them
(background, 0, where the box is empty too), with confidence 0: nothing labelled them.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from frugalseg.data.clips import IGNORE_INDEX

FILL_WINDOW = 9

Side = tuple[np.ndarray, float, np.ndarray | None]


def _check(sides: Sequence[Side]) -> None:
    if not sides:
        raise ValueError("fusion needs at least one propagated label")
    shape = sides[0][0].shape
    for label, weight, confidence in sides:
        shapes = [label.shape] if confidence is None else [label.shape, confidence.shape]
        if any(s != shape for s in shapes):
            found = ", ".join(
                f"{label.shape}" + ("" if confidence is None else f" (confidence {confidence.shape})")
                for label, _, confidence in sides
            )
            raise ValueError(f"labels and confidences differ in shape: {found}")
        if not (np.isfinite(weight) and weight > 0):
            raise ValueError(f"a side's weight must be a finite number > 0, got {weight}")


def fuse_labels(sides: Sequence[Side], window: int = FILL_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """The fused label of one frame and its confidence (see the module docstring).

    Args:
        sides: ``(label, weight, confidence or None)`` per propagated label: H×W uint8 label
            (255 = unsure), weight > 0, H×W confidence in 0…1 or None.
        window: side (px) of the box whose majority fills pixels that no side labels.

    Returns:
        the fused H×W uint8 label and its H×W float32 confidence in 0…1.

    Raises:
        ValueError: no side, labels or confidences of different shapes, or a weight ≤ 0.
    """
    _check(sides)
    shape = sides[0][0].shape
    values = sorted({int(v) for label, _, _ in sides for v in np.unique(label) if v != IGNORE_INDEX} | {0})
    votes = np.zeros((len(values), *shape), np.float32)
    sure = []
    for label, weight, confidence in sides:
        support = np.full(shape, weight, np.float32) if confidence is None else weight * confidence
        for row, value in enumerate(values):
            votes[row] += np.where(label == value, support, 0)
        own = np.ones(shape, np.float32) if confidence is None else confidence.astype(np.float32)
        sure.append(np.where(label == IGNORE_INDEX, 0, own))
    total = votes.sum(0)
    winner = votes.argmax(0)
    fused = np.asarray(values, np.uint8)[winner]
    doubt = np.ones(shape, np.float32)
    for (label, _, _), confidence in zip(sides, sure, strict=True):
        doubt *= np.where(label == fused, 1 - confidence, 1)
    share = np.take_along_axis(votes, winner[None], 0)[0] / np.maximum(total, np.finfo(np.float32).tiny)
    fused_confidence = np.clip(share * (1 - doubt), 0, 1).astype(np.float32)
    empty = total <= 0
    if empty.any():
        spread = np.stack([cv2.boxFilter(v, -1, (window, window), normalize=False) for v in votes])
        filled = np.asarray(values, np.uint8)[spread.argmax(0)]
        fused[empty] = np.where(spread.sum(0)[empty] > 0, filled[empty], 0)
        fused_confidence[empty] = 0
    return fused, fused_confidence


__all__ = ["FILL_WINDOW", "fuse_labels"]
