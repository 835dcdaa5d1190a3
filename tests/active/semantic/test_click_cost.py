"""Click cost of semantic labels (paper 000): polygon vertices per class and connected region."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.active.semantic.click_cost import full_clicks, label_clicks, region_clicks, samples_cost
from frugalseg.active.semantic.samples import Granularity, SampleKey, SamplePool
from frugalseg.data.costs import DEFAULT_COSTS
from frugalseg.errors import DataError


def _square(size: int = 20, top: int = 3, left: int = 4, side: int = 8) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_a_square_costs_four_clicks():
    assert region_clicks(_square()) == 4


def test_a_triangle_costs_three_clicks():
    mask = np.tril(np.ones((12, 12), bool))
    assert region_clicks(np.pad(mask, 2)) == 3


def test_two_regions_add_up_and_classes_are_counted_apart():
    mask = _square(top=1, left=1, side=5) | _square(top=10, left=10, side=6)
    assert region_clicks(mask) == 8
    label = np.full((20, 20), 255, np.uint8)
    label[_square(top=1, left=1, side=5)] = 0
    label[_square(top=10, left=10, side=6)] = 3
    assert label_clicks(label) == 8
    label[_square(top=1, left=12, side=4)] = 3  # a second region of class 3
    assert label_clicks(label) == 12


def test_a_frame_split_into_two_halves_costs_two_rectangles():
    label = np.zeros((10, 16), np.uint8)
    label[:, 8:] = 1
    assert label_clicks(label) == 8
    assert full_clicks([label, label]) == 16


def test_samples_cost_counts_each_sample_in_its_own_label_and_prices_the_clicks():
    truth = np.zeros((16, 16), np.uint8)
    truth[4:12, 4:12] = 1  # a square in the middle of the frame
    frames = [np.zeros((16, 16, 3), np.uint8)] * 2
    pool = SamplePool(frames, Granularity("rectangle", size=8))
    # rectangle 0 (top-left quarter): background L-shape (6 vertices) + a 4×4 corner of the square (4)
    chosen = [SampleKey(0, 0), SampleKey(1, 3)]
    cost = samples_cost([truth, truth], pool, chosen)
    assert cost.per_sample == (10, 10)
    assert cost.clicks == 20
    assert cost.full_clicks == 2 * label_clicks(truth) == 16
    assert cost.percent == pytest.approx(125.0)
    seconds = 2 * DEFAULT_COSTS.clicks_seconds(10)
    assert cost.hours == pytest.approx(seconds / 3600)


def test_a_frame_without_ground_truth_has_no_cost():
    frames = [np.zeros((8, 8, 3), np.uint8)] * 2
    pool = SamplePool(frames, Granularity("frame"))
    with pytest.raises(DataError, match="street frame 1: no ground truth"):
        samples_cost([np.zeros((8, 8), np.uint8), None], pool, [SampleKey(0, 0)], video="street")
