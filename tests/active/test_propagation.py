"""Propagation from many annotated frames: two anchors, late objects, the cache (the fusion itself:
tests/autolabel/test_fusion.py)."""

from __future__ import annotations

import numpy as np
import pytest

from active.synthetic_clips import jaccard, moving_square
from frugalseg.active.propagation import PropagationCache, propagate_annotations
from frugalseg.autolabel.flow_propagate import FlowPropagator
from frugalseg.autolabel.propagate import PropagationEngine

pytestmark = pytest.mark.usefixtures("one_cv_thread")


def test_two_anchors_reproduce_a_square_with_known_motion() -> None:
    frames, truth = moving_square(21)
    engine = FlowPropagator()
    one = propagate_annotations(frames, {0: truth[0]}, engine)
    two = propagate_annotations(frames, {0: truth[0], 20: truth[20]}, engine)
    assert [jaccard(two.masks[t], truth[t]) for t in (0, 20)] == [1.0, 1.0]
    j_one = [jaccard(one.masks[t], truth[t]) for t in range(1, 20)]
    j_two = [jaccard(two.masks[t], truth[t]) for t in range(1, 20)]
    # every frame within a few pixels of the truth, and the fusion never worse than one anchor
    assert min(j_two) > 0.95, j_two
    assert np.mean(j_two) >= np.mean(j_one) - 0.005, (j_one, j_two)


def test_two_anchors_beat_one_where_the_object_comes_out_from_behind_an_occluder() -> None:
    frames, truth = moving_square(21, step=3, occluder=40)
    engine = FlowPropagator()
    one = propagate_annotations(frames, {0: truth[0]}, engine)
    two = propagate_annotations(frames, {0: truth[0], 20: truth[20]}, engine)
    j_one = np.mean([jaccard(one.masks[t], truth[t]) for t in range(1, 20)])
    j_two = np.mean([jaccard(two.masks[t], truth[t]) for t in range(1, 20)])
    assert j_two > j_one + 0.15, (j_one, j_two)
    # near the second anchor the fused masks follow it
    assert min(jaccard(two.masks[t], truth[t]) for t in (18, 19)) > 0.85
    # frames between the anchors report how much the directions disagree; annotated frames none
    assert two.disagreement[0] == two.disagreement[20] == 0
    assert max(two.disagreement[1:20]) > 0
    assert one.disagreement[5] == 0  # one side only: nothing to disagree with


def test_an_object_is_not_propagated_before_the_frame_it_first_appears_in() -> None:
    frames, truth = moving_square(12, late=6)
    result = propagate_annotations(
        frames, {0: truth[0], 6: truth[6]}, FlowPropagator(), first_frames={1: 0, 2: 6}
    )
    assert all(not (result.masks[t] == 2).any() for t in range(6))
    assert jaccard(result.masks[9], truth[9], obj=2) > 0.8


class CountingEngine(PropagationEngine):
    """Copies the anchor label to every target and counts the targets asked for."""

    name = "copy"
    settings: dict = {}

    def __init__(self) -> None:
        self.asked = 0

    def propagate(self, frames, anchor_index, anchor_label, targets):
        self.asked += len(targets)
        return {t: anchor_label.copy() for t in targets}


def test_the_cache_recomputes_only_the_segments_around_a_new_anchor() -> None:
    frames = [np.zeros((4, 4, 3), np.uint8)] * 20
    label = np.zeros((4, 4), np.uint8)
    engine, cache = CountingEngine(), PropagationCache()
    propagate_annotations(frames, {0: label}, engine, cache=cache)
    assert engine.asked == 19
    other = label.copy()
    other[0, 0] = 1
    propagate_annotations(frames, {0: label, 10: other}, engine, cache=cache)
    # frames 1…9 from 0 are known; 10 backward to 1…9 and forward to 11…19 are new
    assert engine.asked == 19 + 9 + 9 == cache.computed


def test_frames_before_every_object_s_first_frame_are_background_and_never_carried_to() -> None:
    """A late object's pass (its objects from frame 10 on) had carried them back to frame 0 to remove them
    there: half its work for nothing, beside the others' pass on the same cores (a helper on the page)."""
    frames = [np.zeros((4, 4, 3), np.uint8)] * 20
    late = np.zeros((4, 4), np.uint8)
    late[1:3, 1:3] = 2
    engine, reported = CountingEngine(), {}
    result = propagate_annotations(
        frames,
        {10: late},
        engine,
        first_frames={2: 10},
        on_frame=lambda t, *rest: reported.setdefault(t, rest),
    )
    assert engine.asked == 9  # frames 11…19 only
    assert all(not result.masks[t].any() for t in range(10)) and result.masks[15][1, 1] == 2
    assert result.unsure[:10] == [0.0] * 10 and result.disagreement[:10] == [0.0] * 10
    assert sorted(reported) == list(range(20))
    # an object without a first frame may be anywhere: every frame is carried to
    propagate_annotations(frames, {10: late}, engine)
    assert engine.asked == 9 + 19


class HalfWrong(PropagationEngine):
    """A stand-in engine: forwards (the anchor first in the frames it is given) every frame gets the
    anchor's mask, backwards it gets it shifted 8 px right (a side that is off), 255 on column 0."""

    name = "half-wrong"
    settings: dict = {}

    def propagate(self, frames, anchor, mask, targets):
        backwards = anchor > 0
        shifted = np.roll(mask, 8 if backwards else 0, axis=1)
        if backwards:
            shifted[:, 0] = 255
        return {t: shifted.copy() for t in targets}


def test_disagreement_counts_by_how_evenly_the_two_sides_weigh() -> None:
    """Beside an anchor the far side's errors are outvoted and count little: a frame t between
    anchors 0 and 10 reports its raw disagreement times 2·min(w)/(w₀ + w₁) with w = 1/distance,
    and each side's unsure share by its weight."""
    frames = [np.zeros((20, 40, 3), np.uint8)] * 11
    square = np.zeros((20, 40), np.uint8)
    square[5:15, 10:20] = 1
    result = propagate_annotations(frames, {0: square, 10: square}, HalfWrong())
    area = (square != 0) | (np.roll(square, 8, axis=1) != 0)
    differ = (square != np.roll(square, 8, axis=1)) & area
    raw = differ.sum() / area.sum()  # the 255 column lies outside the object area
    lost_share = 20 / max(area.sum() + 20, 8)  # the far side's 255 column over area ∪ column
    for t in (1, 5, 9):
        w0, w1 = 1 / t, 1 / (10 - t)
        assert result.disagreement[t] == pytest.approx(2 * min(w0, w1) / (w0 + w1) * raw, abs=1e-5), t
        assert result.unsure[t] == pytest.approx(w1 * lost_share / (w0 + w1), abs=1e-5), t
    assert result.disagreement[5] > 4 * result.disagreement[1]


def test_frames_are_reported_as_they_are_fused_nearest_a_new_anchor_first() -> None:
    """`on_frame` gets every frame once, with the values of the result; a streaming engine's new anchor
    fills its neighbours outwards, while frames whose sides are cached come at once."""
    frames, truth = moving_square(21)
    engine, cache = FlowPropagator(), PropagationCache()
    propagate_annotations(frames, {0: truth[0], 20: truth[20]}, engine, cache=cache)
    seen: list[tuple[int, np.ndarray, float, float]] = []
    annotated = {0: truth[0], 10: truth[10], 20: truth[20]}
    result = propagate_annotations(
        frames, annotated, engine, cache=cache, on_frame=lambda t, m, d, u: seen.append((t, m, d, u))
    )
    order = [t for t, *_ in seen]
    assert sorted(order) == list(range(21))
    assert order[:3] == [0, 10, 20]  # the annotated frames first
    for t, mask, disagreement, unsure in seen:
        assert np.array_equal(mask, result.masks[t])
        assert (disagreement, unsure) == (result.disagreement[t], result.unsure[t])
    # each side of the new anchor in order of distance to it
    assert [t for t in order if 10 < t < 20] == list(range(11, 20))
    assert [t for t in order if 0 < t < 10] == list(range(9, 0, -1))
    # the same masks without reporting, and without the cache
    fresh = propagate_annotations(frames, annotated, FlowPropagator())
    assert all(np.array_equal(a, b) for a, b in zip(fresh.masks, result.masks, strict=True))


def cached_labels(cache: PropagationCache) -> int:
    """How many labels the engine made into ``cache``."""
    return sum(len(labels) for labels in cache.labels.values())


def test_an_error_from_on_frame_stops_the_propagation_and_keeps_what_it_made() -> None:
    """What the page's superseded propagation relies on: the engine stops at the frame whose report
    fails, the labels made so far stay in the cache, and a later propagation reuses them."""
    frames, truth = moving_square(21)
    cache = PropagationCache()

    def stop(t: int, mask: np.ndarray, disagreement: float, unsure: float) -> None:
        if t == 3:
            raise KeyboardInterrupt  # any error stops it, not only an Exception

    with pytest.raises(KeyboardInterrupt):
        propagate_annotations(frames, {0: truth[0]}, FlowPropagator(), cache=cache, on_frame=stop)
    assert sorted(next(iter(cache.labels.values()))) == [1, 2, 3]
    whole = propagate_annotations(frames, {0: truth[0]}, FlowPropagator(), cache=cache)
    fresh = propagate_annotations(frames, {0: truth[0]}, FlowPropagator())
    assert all(np.array_equal(a, b) for a, b in zip(whole.masks, fresh.masks, strict=True))


def test_an_error_from_on_frame_stops_every_segment_at_its_next_label() -> None:
    """Frames 11… are fused as they come (one side), so frame 11's report stops the propagation while
    the segment from frame 0 is still running: that one stops at its next label, and the third segment
    (10 back to 1) makes at most one. Without the stop they would make all 9 + 10 + 9 labels."""
    frames, truth = moving_square(21)
    cache = PropagationCache()

    def stop(t: int, mask: np.ndarray, disagreement: float, unsure: float) -> None:
        if t not in (0, 10):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        propagate_annotations(
            frames, {0: truth[0], 10: truth[10]}, FlowPropagator(), cache=cache, on_frame=stop
        )
    assert cached_labels(cache) <= 9 + 1 + 1


def test_a_streaming_engine_reports_each_label_as_it_is_made() -> None:
    frames, truth = moving_square(9)
    made: list[tuple[int, np.ndarray]] = []
    labels = FlowPropagator().propagate(
        frames, 4, truth[4], [0, 2, 3, 4, 5, 8], on_label=lambda t, label, conf: made.append((t, label))
    )
    assert sorted(t for t, _ in made) == [0, 2, 3, 4, 5, 8]
    assert [t for t, _ in made if t > 4] == [5, 8] and [t for t, _ in made if t < 4] == [3, 2, 0]
    assert all(np.array_equal(label, labels[t]) for t, label in made)


def test_unreliability_is_a_share_from_disagreement_unsure_and_coverage() -> None:
    """``1 − (1 − d)(1 − u)·5/(g + 5)`` with g the distance to the nearest annotated frame: 0 on an
    annotated frame, below 1 however large d and u are each, and growing away from the annotations."""
    from frugalseg.active.propagation import COVERAGE_FRAMES, unreliability

    assert COVERAGE_FRAMES == 5
    d = [0.0, 0.5, 0.0, 0.0, 0.9, 0.0]
    u = [0.0, 0.2, 0.0, 0.0, 0.9, 0.0]
    shares = unreliability(d, u, {0, 3})
    # frame 1: g = 1 → 1 − 0.5·0.8·5/6; frame 2: g = 1 → 1 − 5/6; frame 4: g = 1; frame 5: g = 2
    assert shares == pytest.approx([0.0, 1 - 0.4 * 5 / 6, 1 / 6, 0.0, 1 - 0.01 * 5 / 6, 2 / 7], abs=1e-6)
    assert all(0.0 <= s < 1.0 for s in shares)
    # the former d + u reached 1.8 on frame 4; a value past 1 (a rounding) counts as 1
    assert unreliability([1.2, 0.0], [0.0, 0.0], {1})[0] == 1.0
    assert unreliability([0.0] * 3, [0.0] * 3, set()) == pytest.approx([1 - 5 / 8] * 3)
