"""J&F (DAVIS): exact J and F on hand-made masks, boundary definition, averaging over objects."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from frugalseg.metrics import JF
from frugalseg.metrics.jf import sequence_jf
from frugalseg.metrics.mask_scores import boundary_map, boundary_radius, contour_accuracy, region_similarity


def _square(top: int, left: int, side: int = 20, size: tuple[int, int] = (100, 100)) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_boundary_is_the_top_left_side_of_each_edge_and_not_the_image_border() -> None:
    # A 20×20 square at rows 40..59, cols 30..49: the column left of it (rows 39..59), the row above
    # it (cols 29..49), its own right column and its own bottom row — 4·20 = 80 pixels.
    edge = boundary_map(_square(40, 30))
    expected = np.zeros((100, 100), dtype=bool)
    expected[39:60, 29] = True
    expected[39, 29:50] = True
    expected[40:60, 49] = True
    expected[59, 30:50] = True
    assert edge.sum() == 80
    assert np.array_equal(edge, expected)
    assert not boundary_map(np.ones((10, 10), dtype=bool)).any()


def test_tolerance_is_the_ceiling_of_0_008_of_the_diagonal() -> None:
    assert boundary_radius(480, 854) == 8  # 0.008 · 979.6 = 7.84
    assert boundary_radius(100, 100) == 2  # 0.008 · 141.4 = 1.13
    assert boundary_radius(100, 100, tolerance=3) == 3


def test_identical_masks_give_one_and_disjoint_masks_zero() -> None:
    a = _square(40, 30)
    assert region_similarity(a, a) == 1.0 and contour_accuracy(a, a) == 1.0
    b = _square(10, 70)
    assert region_similarity(a, b) == 0.0 and contour_accuracy(a, b) == 0.0
    empty = np.zeros_like(a)
    assert region_similarity(empty, empty) == 1.0 and contour_accuracy(empty, empty) == 1.0
    assert region_similarity(a, empty) == 0.0 and contour_accuracy(a, empty) == 0.0


def test_shifted_square_within_the_tolerance_has_perfect_boundary() -> None:
    a, b = _square(40, 30), _square(40, 32)  # shift 2 px = the tolerance at 100×100
    assert region_similarity(a, b) == pytest.approx(18 * 20 / (22 * 20))
    assert contour_accuracy(a, b) == 1.0


def test_shifted_square_beyond_the_tolerance() -> None:
    # Shift 4 px with a 2-px tolerance. Counted by hand: of the 80 boundary pixels of the prediction
    # 42 lie within 2 px of the target's boundary (top row 19, right column 5, bottom row 18), and
    # 42 of the target's 80 lie within 2 px of the prediction's (left column 6, top row 18, bottom
    # row 18): P = R = F = 42/80. J = 16·20 / (24·20).
    pred, target = _square(40, 30), _square(40, 34)
    assert region_similarity(pred, target) == pytest.approx(2 / 3)
    assert contour_accuracy(pred, target) == pytest.approx(42 / 80)
    # An explicit 4-px tolerance matches every boundary pixel again.
    assert contour_accuracy(pred, target, tolerance=4) == 1.0


def test_void_pixels_count_for_neither_mask() -> None:
    target = _square(40, 30)
    pred = target.copy()
    pred[40:60, 50:60] = True  # a 10-px strip too many …
    void = np.zeros_like(target)
    void[:, 50:] = True  # … all of it void
    assert region_similarity(pred, target) == pytest.approx(400 / 600)
    assert region_similarity(pred, target, void) == 1.0
    assert contour_accuracy(pred, target, void) == 1.0


def _sequence(objects: list[list[np.ndarray]]) -> torch.Tensor:
    """T×H×W id maps from per-object lists of per-frame masks (object k+1 = objects[k])."""
    frames = len(objects[0])
    ids = np.zeros((frames, 100, 100), dtype=np.int64)
    for k, masks in enumerate(objects):
        for t, mask in enumerate(masks):
            ids[t][mask] = k + 1
    return torch.from_numpy(ids)


def test_sequence_scores_skip_first_and_last_frames_and_average_per_object() -> None:
    gt_1 = [_square(40, 30)] * 4
    gt_2 = [_square(5, 70, side=10)] * 4
    target = _sequence([gt_1, gt_2])
    # Object 1: exact on frames 1, 2; frame 3 (last, not scored) wrong. Object 2: exact on frame 1, lost
    # on frame 2 (J = F = 0); frame 0 wrong but it is the given frame.
    empty = np.zeros((100, 100), dtype=bool)
    pred = _sequence([[gt_1[0], gt_1[0], gt_1[0], empty], [empty, gt_2[0], empty, gt_2[0]]])
    j, f = sequence_jf(pred, target)
    assert j.tolist() == [1.0, 0.5] and f.tolist() == [1.0, 0.5]
    j_all, _ = sequence_jf(pred, target, skip_first_last=False)
    assert j_all.tolist() == [0.75, 0.5]
    # Scores (T×K×H×W) are arg-maxed into ids.
    scores = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    assert sequence_jf(scores, target)[0].tolist() == [1.0, 0.5]
    with pytest.raises(ValueError, match="no frame to score"):
        sequence_jf(pred[:2], target[:2])


def test_metric_averages_over_objects_of_all_sequences_and_sums_states() -> None:
    one = _sequence([[_square(40, 30)] * 3])
    two_target = _sequence([[_square(40, 30)] * 3, [_square(5, 70, side=10)] * 3])
    lost = np.zeros((100, 100), dtype=bool)
    two_pred = _sequence([[_square(40, 30)] * 3, [lost] * 3])  # object 2 lost: J = F = 0
    metric = JF()
    metric.update(one, one)
    metric.update(two_pred, two_target)
    result = metric.compute()
    # Objects (1, 1, 0): mean 2/3; a mean over sequences would give (1 + 0.5) / 2 = 0.75.
    assert result["J"].item() == pytest.approx(2 / 3)
    assert result["F"].item() == pytest.approx(2 / 3)
    assert result["JF"].item() == pytest.approx(2 / 3)
    # States are sums, so two processes' states add up to one process's (what DDP's reduction does).
    first, second = JF(), JF()
    first.update(one, one)
    second.update(two_pred, two_target)
    for name in ("j_sum", "f_sum", "objects"):
        assert getattr(first, name) + getattr(second, name) == getattr(metric, name)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(JF().compute()["JF"].item())


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="same T×H×W"):
        JF().update(torch.zeros(3, 10, 10, dtype=torch.long), torch.zeros(3, 10, 12, dtype=torch.long))
