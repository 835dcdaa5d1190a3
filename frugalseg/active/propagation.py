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

Per frame the result also says how unreliable it is: the *disagreement*, the share of the object
area where the two directions disagree, times how evenly the two sides weigh (2·min(w₁, w₂)/(w₁ + w₂):
next to an annotated frame the far side's errors are outvoted and do not count), and the *unsure*
share, where a side was unsure (the engine's forward-backward and photometric failures come out as
255), each side's counted by its weight. `unreliability` combines them with the frame's distance to
the nearest annotated frame into one share in 0…1 that the `uncertainty` selector and the page read.

Results of the engine are cached per (anchor frame, direction, anchor mask) in `PropagationCache`,
so an iteration recomputes only the two segments around the newly annotated frame, and several
strategies run on one video share what they have in common (masks drawn from the ground truth are
the same whichever strategy chose the frame). Reusing a longer chain for a shorter segment assumes
the engine's label of a frame depends only on the frames between the anchor and it, which holds
for `FlowPropagator`; the loop's resume test checks it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np

from frugalseg.autolabel.fusion import fuse_labels
from frugalseg.autolabel.propagate import LabelReady, PropagationEngine
from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.files import array_sha1


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
    """Engine results of one video, kept as PNG: (anchor, direction, mask shape, mask sha1) → {frame: label}.

    ``computed`` counts the frames the engine was asked for (the work done, for benchmarks).
    """

    labels: dict[tuple[int, int, tuple[int, ...], str], dict[int, tuple[bytes, bytes | None]]] = field(
        default_factory=dict
    )
    computed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def get(
        self,
        engine: PropagationEngine,
        frames: Sequence[np.ndarray],
        anchor: int,
        mask: np.ndarray,
        targets: Sequence[int],
        *,
        on_label: LabelReady | None = None,
    ) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """The engine's (label, confidence or None) of each of ``targets`` (all on one side of ``anchor``).

        ``on_label(t, label, confidence)`` is called with each target's result as it becomes known:
        the cached ones at once, the others as the engine makes them (nearest ``anchor`` first where
        the engine streams), with the values the cache gives back later (confidence to 1/255).
        """
        if not targets:
            return {}
        step = 1 if targets[0] > anchor else -1
        key = (anchor, step, mask.shape, array_sha1(mask))
        with self._lock:
            known = self.labels.setdefault(key, {})
        missing = [t for t in targets if t not in known]
        if on_label is not None:
            for t in targets:
                if t in known:
                    on_label(t, *_decoded(known[t]))
        if missing:
            far = max(missing) if step > 0 else min(missing)
            lo, hi = (anchor, far) if step > 0 else (far, anchor)

            def made(local: int, label: np.ndarray, confidence: np.ndarray | None) -> None:
                quantised = None if confidence is None else np.round(confidence * 255).astype(np.uint8)
                known[local + lo] = (_encode(label), None if quantised is None else _encode(quantised))
                if on_label is not None:
                    on_label(
                        local + lo, label, None if quantised is None else quantised.astype(np.float32) / 255
                    )

            local = [t - lo for t in missing]
            run_engine(engine, list(frames[lo : hi + 1]), anchor - lo, mask, local, on_label=made)
            with self._lock:
                self.computed += len(missing)
        return {t: _decoded(known[t]) for t in targets}


def _decoded(entry: tuple[bytes, bytes | None]) -> tuple[np.ndarray, np.ndarray | None]:
    """A cached (label, confidence) as arrays (confidence float32 in 0…1, or None)."""
    label_png, conf_png = entry
    return _decode(label_png), None if conf_png is None else _decode(conf_png).astype(np.float32) / 255


def run_engine(
    engine: PropagationEngine,
    frames: Sequence[np.ndarray],
    anchor: int,
    mask: np.ndarray,
    targets: Sequence[int],
    *,
    on_label: LabelReady | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
    """(label, confidence) per target; confidence None unless the engine ``makes_confidence``.

    ``on_label`` gets each result as the engine makes it where the engine streams
    (``streams_labels``), else all of them when the engine returns.
    """
    streams = on_label is not None and engine.streams_labels
    given = {"on_label": on_label} if streams else {}
    found: dict[int, tuple[np.ndarray, np.ndarray | None]]
    if engine.makes_confidence:
        made = engine.propagate_with_confidence(frames, anchor, mask, list(targets), **given)
        found = {t: (label, np.asarray(conf, np.float32)) for t, (label, conf) in made.items()}
    else:
        plain = engine.propagate(frames, anchor, mask, list(targets), **given)
        found = {t: (label, None) for t, label in plain.items()}
    if on_label is not None and not streams:
        for t, (label, conf) in found.items():
            on_label(t, label, conf)
    return found


@dataclass
class Propagated:
    """The loop's current masks: one object-id map per frame, and how unreliable each frame is."""

    masks: list[np.ndarray]
    disagreement: list[float]
    unsure: list[float]


#: The distance (frames) to the nearest annotated frame at which coverage alone makes a frame half unreliable.
COVERAGE_FRAMES = 5


def unreliability(
    disagreement: Sequence[float], unsure: Sequence[float], annotated: Collection[int]
) -> list[float]:
    """Per frame, how unreliable its propagated mask is: a share in 0…1 (0 on an annotated frame).

    ``1 − (1 − d)(1 − u)(1 − c)``: the chance that a frame is wrong were its three signs independent:
    the disagreement ``d`` and unsure share ``u`` of `propagate_annotations` (each in 0…1), and the
    coverage ``c = g / (g + COVERAGE_FRAMES)`` of its distance ``g`` to the nearest annotated frame.
    Coverage carries it where the others are blind: a frame past the last annotated one has a single
    side, so nothing to disagree with, yet the largest errors. On the development clips it ranks
    frames by their real error (Spearman with 1 − J: 0.62 ± 0.33 within a clip and an annotated set,
    against 0.47 ± 0.45 for the former ``d + u``, which also reached 1.8;
    ``benchmarks/results/unreliability.md``).

    Args:
        disagreement: per frame, in 0…1.
        unsure: per frame, in 0…1.
        annotated: the annotated frames (none: every frame counts as far from one).
    """
    n = len(disagreement)
    left_of, right_of = nearest_annotated(sorted(annotated), n)
    shares = []
    for t, (d, u) in enumerate(zip(disagreement, unsure, strict=True)):
        near = [abs(t - a) for a in (left_of[t], right_of[t]) if a is not None]
        gap = min(near, default=n)
        reliable = (1 - min(d, 1.0)) * (1 - min(u, 1.0)) * COVERAGE_FRAMES / (gap + COVERAGE_FRAMES)
        shares.append(round(1 - reliable, 6))
    return shares


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


FrameReady = Callable[[int, np.ndarray, float, float], None]
"""Called with a frame's index, its fused mask, disagreement and unsure share as soon as it is known."""


def propagate_annotations(
    frames: Sequence[np.ndarray],
    annotated: Mapping[int, np.ndarray],
    engine: PropagationEngine,
    *,
    first_frames: Mapping[int, int] | None = None,
    cache: PropagationCache | None = None,
    on_frame: FrameReady | None = None,
) -> Propagated:
    """Masks of every frame from the annotated object-id maps ``annotated`` (frame index → H×W uint8).

    The segments on each side of every annotated frame run on two threads (the two directions of a
    new annotation at once), and each frame is fused as soon as its sides are known: the annotated
    frames and those whose sides are cached first, then the others nearest their anchor first
    where the engine streams its labels (``streams_labels``). A frame before every object's first
    frame holds none of them: it is background at once, with no doubt, and never carried to (a late
    object's pass had carried it back to the video's start, to remove it there).

    Args:
        frames: the video, H×W×3 uint8 RGB.
        annotated: the annotated frames and their masks (at least one).
        engine: a single-anchor engine (`FlowPropagator`).
        first_frames: object id → the first frame it appears in; it is removed before that frame.
        cache: engine results to reuse and extend (a fresh one when None).
        on_frame: called with each frame's result as soon as it is known (from any thread); an
            error it raises stops the propagation (each segment at its next frame) and comes out here.
    """
    if not annotated:
        raise ValueError("propagation needs at least one annotated frame")
    cache = PropagationCache() if cache is None else cache
    keys = sorted(annotated)
    n = len(frames)
    if keys[0] < 0 or keys[-1] >= n:
        raise ValueError(f"annotated frames {keys} outside the {n} frames given")
    left_of, right_of = nearest_annotated(keys, n)
    fusion = _Fusion(n, left_of, right_of, first_frames or {}, on_frame)
    for t in keys:
        fusion.done(t, np.asarray(annotated[t], np.uint8).copy(), 0.0, 0.0)
    start = _first_object_frame(annotated, first_frames or {})
    for t in range(start):
        if t not in annotated:
            fusion.done(t, np.zeros(frames[t].shape[:2], np.uint8), 0.0, 0.0)
    segments = []
    for a in keys:
        ahead = [t for t in range(max(a + 1, start), n) if left_of[t] == a and t not in annotated]
        behind = [t for t in range(a - 1, start - 1, -1) if right_of[t] == a and t not in annotated][::-1]
        segments += [(a, targets) for targets in (ahead, behind) if targets]

    def run(segment: tuple[int, list[int]]) -> None:
        a, targets = segment
        cache.get(engine, frames, a, annotated[a], targets, on_label=partial(fusion.side, a))

    with ThreadPoolExecutor(2, thread_name_prefix="segment") as pool:
        for _ in pool.map(run, segments):  # raises the first failure here
            pass
    return fusion.result()


def _first_object_frame(annotated: Mapping[int, np.ndarray], first_frames: Mapping[int, int]) -> int:
    """The first frame any object of the annotated masks may appear in (0 for one without a first frame)."""
    objects = {int(v) for mask in annotated.values() for v in np.unique(mask)} - {0, IGNORE_INDEX}
    return min((first_frames.get(obj, 0) for obj in objects), default=0)


class _Fusion:
    """Frames fused as their sides arrive (from the segments' threads), and the result once all are."""

    def __init__(
        self,
        n: int,
        left_of: list[int | None],
        right_of: list[int | None],
        first_frames: Mapping[int, int],
        on_frame: FrameReady | None,
    ) -> None:
        self.left_of, self.right_of, self.first_frames, self.on_frame = (
            left_of,
            right_of,
            first_frames,
            on_frame,
        )
        self.masks: list[np.ndarray | None] = [None] * n
        self.disagreement = [0.0] * n
        self.unsure = [0.0] * n
        self._sides: dict[int, dict[int, tuple[np.ndarray, np.ndarray | None]]] = {}
        self._lock = threading.Lock()
        self._stopped: BaseException | None = None

    def side(self, anchor: int, t: int, label: np.ndarray, confidence: np.ndarray | None) -> None:
        """Frame ``t``'s label carried from ``anchor``; fuse the frame once both its sides are here.

        Once ``on_frame`` has raised, every segment stops at its next label with that error.
        """
        if self._stopped is not None:
            raise self._stopped
        needed = [a for a in (self.left_of[t], self.right_of[t]) if a is not None]
        with self._lock:
            arrived = self._sides.setdefault(t, {})
            arrived[anchor] = (label, confidence)
            if len(arrived) < len(needed):
                return
            del self._sides[t]
        sides = [(arrived[a][0], 1.0 / abs(t - a), arrived[a][1]) for a in needed]
        self.done(t, *_fuse_sides(t, sides, self.first_frames))

    def done(self, t: int, mask: np.ndarray, disagreement: float, unsure: float) -> None:
        """Record frame ``t``'s result and report it."""
        self.masks[t], self.disagreement[t], self.unsure[t] = mask, disagreement, unsure
        if self.on_frame is not None:
            try:
                self.on_frame(t, mask, disagreement, unsure)
            except BaseException as err:
                self._stopped = err
                raise

    def result(self) -> Propagated:
        """Every frame's result (all must be known)."""
        missing = [t for t, mask in enumerate(self.masks) if mask is None]
        if missing:
            raise RuntimeError(f"frames {missing} were never propagated")
        return Propagated([m for m in self.masks if m is not None], self.disagreement, self.unsure)
