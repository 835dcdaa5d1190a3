"""`snap_labels`: reliable pixels stay, an unreliable misplaced boundary moves to the colour edge,
and label maps with many classes are left alone. `object_cut`: a part the flow lost comes back
with the anchor's colour models. Their steps: the cut's box, the order of the classes, the masks
GrabCut starts from."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.flow.refine import (
    _background_and_objects,
    _class_counts,
    _grown_box,
    _object_trimap,
    _snap_trimap,
    anchor_colour_models,
    object_cut,
    snap_labels,
)

H, W = 60, 80
GC_BGD, GC_FGD, GC_PR_BGD, GC_PR_FGD = 0, 1, 2, 3  # OpenCV's GrabCut mask values


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy red disc (class 1) on a noisy green background (class 0), and its true label."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:H, 0:W]
    truth = ((ys - 30) ** 2 + (xs - 40) ** 2 <= 15**2).astype(np.uint8)
    frame = np.where(truth[..., None] == 1, [170, 50, 50], [60, 140, 60]).astype(np.float32)
    frame += rng.normal(0, 12, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8), truth


def test_reliable_pixels_are_never_changed() -> None:
    frame, truth = scene()
    shifted = np.roll(truth, 4, axis=1)
    out, changed = snap_labels(shifted, np.ones((H, W), bool), frame)
    assert (out == shifted).all() and not changed.any()


def test_an_unreliable_misplaced_boundary_snaps_to_the_colour_edge() -> None:
    frame, truth = scene()
    shifted = np.roll(truth, 4, axis=1)  # the label drifted 4 px right
    reliable = np.ones((H, W), bool)
    reliable[:, 20:65] = False  # the flow could not vouch for the pixels around the disc
    out, changed = snap_labels(shifted, reliable, frame)
    wrong_before, wrong_after = (shifted != truth).sum(), (out != truth).sum()
    print(wrong_before, wrong_after)
    assert wrong_after <= 0.2 * wrong_before
    assert (changed == (out != shifted)).all()


def test_unlabelled_pixels_the_cut_leaves_outside_stay_unlabelled() -> None:
    frame, truth = scene()
    label = truth.copy()
    label[:, :5] = 255
    reliable = label != 255
    out, _ = snap_labels(label, reliable, frame)
    assert (out[:, :5] == 255).all()


def test_many_classes_or_one_are_left_alone() -> None:
    frame, truth = scene()
    many = (np.arange(W)[None, :] // 10 * np.ones((H, 1))).astype(np.uint8)  # 8 classes
    out, changed = snap_labels(many, np.zeros((H, W), bool), frame, max_classes=4)
    assert (out == many).all() and not changed.any()
    single = np.zeros((H, W), np.uint8)
    assert (snap_labels(single, np.zeros((H, W), bool), frame)[0] == 0).all()
    with pytest.raises(ValueError, match="differ in size"):
        snap_labels(truth, np.ones((H, W + 1), bool), frame)


def test_a_cut_on_a_shrunk_box_still_snaps_and_keeps_reliable_pixels() -> None:
    frame, truth = scene()
    shifted = np.roll(truth, 4, axis=1)
    reliable = np.ones((H, W), bool)
    reliable[:, 20:65] = False
    out, _ = snap_labels(shifted, reliable, frame, downscale=2)
    assert (out != truth).sum() <= 0.3 * (shifted != truth).sum()
    assert (out[reliable] == shifted[reliable]).all()
    with pytest.raises(ValueError, match="downscale"):
        snap_labels(shifted, reliable, frame, downscale=0)


def test_object_cut_gives_back_a_part_the_flow_lost() -> None:
    """Known answer: the anchor's models are learnt on another noisy view of the scene; the warped
    label lost the right half of the disc (labelled background, unreliable): the cut restores it."""
    anchor_frame, truth = scene(seed=1)
    models = anchor_colour_models(truth, anchor_frame)
    assert sorted(models) == [1] and all(m.shape == (1, 65) for m in models[1])
    frame, _ = scene(seed=2)
    lost = truth.copy()
    lost[:, 40:] = 0  # the right half of the disc was lost
    reliable = np.ones((H, W), bool)
    reliable[(truth == 1) & (lost == 0)] = False
    out, changed = object_cut(lost, reliable, frame, models)
    wrong_before, wrong_cut = (lost != truth).sum(), (out != truth).sum()
    assert wrong_cut <= 0.1 * wrong_before
    assert (changed == (out != lost)).all()


def test_object_cut_keeps_a_right_label_and_leaves_unmodelled_maps_alone() -> None:
    anchor_frame, truth = scene(seed=1)
    models = anchor_colour_models(truth, anchor_frame)
    frame, _ = scene(seed=2)
    out, changed = object_cut(truth, np.ones((H, W), bool), frame, models)
    assert changed.mean() < 0.01  # only the 1-px rim of the reliable object is open
    many = (np.arange(W)[None, :] // 10 * np.ones((H, 1))).astype(np.uint8)
    assert anchor_colour_models(many, frame, max_classes=4) == {}
    out, changed = object_cut(truth, np.zeros((H, W), bool), frame, {})
    assert (out == truth).all() and not changed.any()
    with pytest.raises(ValueError, match="differ in size"):
        object_cut(truth, np.ones((H, W + 1), bool), frame, models)


def test_the_cut_box_is_the_region_grown_by_the_margin_and_clipped_to_the_map() -> None:
    region = np.zeros((10, 12), bool)
    region[2, 3] = region[5, 8] = True
    assert _grown_box(region, 0) == (slice(2, 6), slice(3, 9))
    assert _grown_box(region, 2) == (slice(0, 8), slice(1, 11))
    assert _grown_box(region, 5) == (slice(0, 10), slice(0, 12))


def test_the_rarest_class_is_cut_first_and_the_most_frequent_is_the_background() -> None:
    label = np.array([[0, 0, 0, 0], [0, 2, 2, 2], [255, 5, 255, 0]], np.uint8)
    values, counts = _class_counts(label, ignore=255)
    assert values.tolist() == [0, 2, 5] and counts.tolist() == [6, 3, 1]
    assert _background_and_objects(values, counts) == (0, [5, 2])


def test_class_counts_are_exact_on_both_sides_of_the_float32_histogram_limit() -> None:
    # OpenCV's histogram counts in float32 (exact below 2**24 per bin); larger maps count with numpy
    for side in (64, 4096):  # 4096² = 2**24 pixels: numpy's count
        label = np.zeros((side, side), np.uint8)
        label[0, :3] = 7
        label[1, 0] = 255
        values, counts = _class_counts(label, ignore=255)
        assert values.tolist() == [0, 7] and counts.tolist() == [side * side - 4, 3]


def test_a_snap_fixes_the_closed_pixels_and_opens_the_others_by_their_label() -> None:
    current = np.array([[True, True, False, False]])
    open_ = np.array([[False, True, True, False]])
    assert _snap_trimap(current, open_).tolist() == [[GC_FGD, GC_PR_FGD, GC_PR_BGD, GC_BGD]]


def test_an_object_cut_fixes_reliable_pixels_and_opens_the_rest_of_the_grown_object() -> None:
    current = np.zeros((7, 7), bool)
    current[2:5, 2:5] = True
    reliable = np.ones((7, 7), bool)
    reliable[2, 2:5] = False  # the object's top row
    reliable[1, 3] = False  # and the pixel above it
    zone, mask = _object_trimap(current, reliable, grow=1, erode=0)
    grown = current.copy()  # grown by a 3×3 cross: the square without its outer corners
    grown[1, 2:5] = grown[5, 2:5] = grown[2:5, 1] = grown[2:5, 5] = True
    assert (zone == grown).all()
    expected = np.full((7, 7), GC_BGD)
    expected[1, 3] = GC_PR_BGD  # unreliable, in the zone, outside the object
    expected[2, 2:5] = GC_PR_FGD  # unreliable object pixels
    expected[3:5, 2:5] = GC_FGD  # reliable object pixels
    assert (mask == expected).all()
    _, eroded = _object_trimap(current, np.ones((7, 7), bool), grow=1, erode=1)
    assert eroded[3, 3] == GC_FGD and (eroded[current & (eroded != GC_FGD)] == GC_PR_FGD).all()
    assert (eroded[grown & ~current] == GC_PR_BGD).all()  # the band of ``erode`` px outside stays open
