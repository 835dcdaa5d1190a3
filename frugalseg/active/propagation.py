"""Masks for every frame of a video from all its annotated frames (the propagation stage of the loop).

Paper 002 predicts the mask of every frame from *all* annotated masks. With a single-anchor engine
(`FlowPropagator`: ``propagate(frames, anchor_index, anchor_label, targets)``) that is done here:
each frame takes the nearest annotated frame on each side, the engine carries both masks to it,
and the two results are fused per pixel by their reliability (`frugalseg.autolabel.fusion`):

* a side's weight is ``1 / distance`` (in frames) to its anchor, times the engine's per-pixel
  confidence where the engine offers one (``propagate_with_confidence``, returning
  ``{index: (label, confidence)}`` with confidence in 0…1), and zero where its label is 255
  (the engine was unsure);
* each pixel takes the label with the largest summed weight; where neither side has a label, the
  weighted majority of a small window around it, else background.

Frames before the first or after the last annotated frame have one side only. An object is never
output before the frame it first appears in (``first_frames``), so an object that enters late is not
dragged backwards into frames it is absent from.

Per frame the result also says how unreliable it is, for the `uncertainty` selector: the share of
the object area where the two directions disagree, times how evenly the two sides weigh
(2·min(w₁, w₂)/(w₁ + w₂): next to an annotated frame the far side's errors are outvoted and do not
count), and the share where a side was unsure (the engine's forward-backward and photometric
failures come out as 255), each side's counted by its weight.

Results of the engine are cached per (anchor frame, direction, anchor mask) in `PropagationCache`,
so an iteration recomputes only the two segments around the newly annotated frame, and several
strategies run on one video share what they have in common (masks drawn from the ground truth are
the same whichever strategy chose the frame). Reusing a longer chain for a shorter segment assumes
the engine's label of a frame depends only on the frames between the anchor and it, which holds
for `FlowPropagator`; the loop's resume test checks it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from frugalseg.autolabel.fusion import fuse_labels
from frugalseg.data.clips import IGNORE_INDEX


def mask_digest(mask: np.ndarray) -> str:
    """A short content hash of a label map (shape and bytes)."""
    digest = hashlib.sha1(np.ascontiguousarray(mask).tobytes())
    digest.update(repr(mask.shape).encode())
    return digest.hexdigest()[:16]


def _encode(label: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", label)
    if not ok:
        raise ValueError(f"cannot encode a label of shape {label.shape}")
    return data.tobytes()


def _decode(data: bytes) -> np.ndarray:
    label = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise ValueError("cannot decode a cached label: not a PNG")
    return label


@dataclass
class PropagationCache:
    """Engine results of one video, kept PNG-compressed: (anchor, direction, mask digest) → {frame: label}.

    ``computed`` counts the frames the engine was asked for (the work done, for benchmarks).
    """

    labels: dict[tuple[int, int, str], dict[int, tuple[bytes, bytes | None]]] = field(default_factory=dict)
    computed: int = 0

    def get(
        self,
        engine: Any,
        frames: Sequence[np.ndarray],
        anchor: int,
        mask: np.ndarray,
        targets: Sequence[int],
    ) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """The engine's (label, confidence or None) of each of ``targets`` (all on one side of ``anchor``)."""
        if not targets:
            return {}
        step = 1 if targets[0] > anchor else -1
        key = (anchor, step, mask_digest(mask))
        known = self.labels.setdefault(key, {})
        missing = [t for t in targets if t not in known]
        if missing:
            far = max(missing) if step > 0 else min(missing)
            lo, hi = (anchor, far) if step > 0 else (far, anchor)
            window = list(frames[lo : hi + 1])
            local = [t - lo for t in missing]
            for t, (label, confidence) in run_engine(engine, window, anchor - lo, mask, local).items():
                conf = None if confidence is None else _encode(np.round(confidence * 255).astype(np.uint8))
                known[t + lo] = (_encode(label), conf)
            self.computed += len(missing)
        out: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        for t in targets:
            label_png, conf_png = known[t]
            out[t] = (
                _decode(label_png),
                None if conf_png is None else _decode(conf_png).astype(np.float32) / 255,
            )
        return out


def run_engine(
    engine: Any, frames: Sequence[np.ndarray], anchor: int, mask: np.ndarray, targets: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
    """(label, confidence) per target; confidence None unless the engine has ``propagate_with_confidence``."""
    with_confidence = getattr(engine, "propagate_with_confidence", None)
    if with_confidence is not None:
        return {
            t: (label, np.asarray(conf, np.float32))
            for t, (label, conf) in with_confidence(frames, anchor, mask, list(targets)).items()
        }
    return {t: (label, None) for t, label in engine.propagate(frames, anchor, mask, list(targets)).items()}


@dataclass
class Propagated:
    """The loop's current masks: one object-id map per frame, and how unreliable each frame is."""

    masks: list[np.ndarray]
    disagreement: list[float]
    unsure: list[float]

    @property
    def unreliability(self) -> list[float]:
        """Per frame: the weighted shares of the object area where the sides disagree or one was unsure."""
        return [d + u for d, u in zip(self.disagreement, self.unsure, strict=True)]


def object_share(flags: np.ndarray, area: np.ndarray) -> float:
    """``flags`` counted over ``area`` (at least 1 % of the frame, so empty frames do not divide by ~0)."""
    floor = max(1, flags.size // 100)
    return round(float(np.count_nonzero(flags & area)) / max(int(np.count_nonzero(area)), floor), 6)


def nearest_annotated(keys: Sequence[int], n: int) -> tuple[list[int | None], list[int | None]]:
    """Per frame of ``n``, the nearest annotated frame (of sorted ``keys``) at or before it, and after it."""
    left_of: list[int | None] = [None] * n
    right_of: list[int | None] = [None] * n
    for a in keys:
        left_of[a] = right_of[a] = a
    for t in range(1, n):
        left_of[t] = left_of[t] if left_of[t] is not None else left_of[t - 1]
    for t in range(n - 2, -1, -1):
        right_of[t] = right_of[t] if right_of[t] is not None else right_of[t + 1]
    return left_of, right_of


def _fuse_sides(
    t: int, sides: list[tuple[np.ndarray, float, np.ndarray | None]], first_frames: Mapping[int, int]
) -> tuple[np.ndarray, float, float]:
    """Frame ``t``'s mask fused from its sides (label, weight, confidence), its disagreement and unsure share.

    An object is removed before the first frame it appears in (``first_frames``).
    """
    mask, _ = fuse_labels(sides)
    for obj, first in first_frames.items():
        if t < first:
            mask[mask == obj] = 0
    objects = [(label != 0) & (label != IGNORE_INDEX) for label, _, _ in sides]
    area = np.logical_or.reduce(objects) | (mask != 0)
    losts = [label == IGNORE_INDEX for label, _, _ in sides]
    lost = np.logical_or.reduce(losts)
    weights = [weight for _, weight, _ in sides]
    disagreement = 0.0
    if len(sides) == 2:
        # Beside an annotated frame the far side is poor but outvoted: count the disagreement by
        # how evenly the two sides weigh (1 halfway between two anchors, → 0 next to one).
        balance = 2 * min(weights) / sum(weights)
        differ = (sides[0][0] != sides[1][0]) & ~lost
        disagreement = round(balance * object_share(differ, area), 6)
    shares = [w * object_share(one, area | one) for w, one in zip(weights, losts, strict=True)]
    return mask, disagreement, round(sum(shares) / sum(weights), 6)


def propagate_annotations(
    frames: Sequence[np.ndarray],
    annotated: Mapping[int, np.ndarray],
    engine: Any,
    *,
    first_frames: Mapping[int, int] | None = None,
    cache: PropagationCache | None = None,
) -> Propagated:
    """Masks of every frame from the annotated object-id maps ``annotated`` (frame index → H×W uint8).

    Args:
        frames: the video, H×W×3 uint8 RGB.
        annotated: the annotated frames and their masks (at least one).
        engine: a single-anchor engine (`FlowPropagator`).
        first_frames: object id → the first frame it appears in; it is removed before that frame.
        cache: engine results to reuse and extend (a fresh one when None).
    """
    if not annotated:
        raise ValueError("propagation needs at least one annotated frame")
    cache = PropagationCache() if cache is None else cache
    keys = sorted(annotated)
    n = len(frames)
    if keys[0] < 0 or keys[-1] >= n:
        raise ValueError(f"annotated frames {keys} outside the {n} frames given")
    left_of, right_of = nearest_annotated(keys, n)
    forward: dict[int, dict[int, tuple[np.ndarray, np.ndarray | None]]] = {}
    backward: dict[int, dict[int, tuple[np.ndarray, np.ndarray | None]]] = {}
    for a in keys:
        ahead = [t for t in range(a + 1, n) if left_of[t] == a and t not in annotated]
        behind = [t for t in range(a - 1, -1, -1) if right_of[t] == a and t not in annotated][::-1]
        forward[a] = cache.get(engine, frames, a, annotated[a], ahead)
        backward[a] = cache.get(engine, frames, a, annotated[a], behind)
    masks: list[np.ndarray] = []
    disagreement: list[float] = []
    unsure: list[float] = []
    for t in range(n):
        if t in annotated:
            masks.append(np.asarray(annotated[t], np.uint8).copy())
            disagreement.append(0.0)
            unsure.append(0.0)
            continue
        sides = []
        left, right = left_of[t], right_of[t]
        if left is not None:
            label, conf = forward[left][t]
            sides.append((label, 1.0 / (t - left), conf))
        if right is not None:
            label, conf = backward[right][t]
            sides.append((label, 1.0 / (right - t), conf))
        mask, doubt, lost = _fuse_sides(t, sides, first_frames or {})
        masks.append(mask)
        disagreement.append(doubt)
        unsure.append(lost)
    return Propagated(masks, disagreement, unsure)
