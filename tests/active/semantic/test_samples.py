"""Sample granularities, the simulated semantic annotator and the sample selectors (paper 000)."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.active.semantic.samples import (
    Granularity,
    SampleKey,
    SamplePool,
    SampleView,
    SimulatedSemanticAnnotator,
    get_sample_selector,
)
from frugalseg.errors import ConfigError, DataError


def _frames(count: int = 3, height: int = 24, width: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _truth(count: int = 3, height: int = 24, width: int = 32) -> list[np.ndarray]:
    return [(np.indices((height, width)).sum(0) % 5 + t).astype(np.uint8) for t in range(count)]


def test_rectangles_tile_the_frame_and_the_edge_ones_are_cut():
    regions = Granularity("rectangle", size=10).regions(np.zeros((24, 32, 3), np.uint8))
    assert regions.max() + 1 == 3 * 4
    assert (regions == 0).sum() == 100
    assert (regions == 11).sum() == 4 * 2  # bottom-right: 4 rows × 2 columns left
    assert regions[9, 9] == 0 and regions[10, 9] == 4 and regions[9, 10] == 1


def test_a_rectangle_larger_than_the_frame_is_refused():
    with pytest.raises(
        ConfigError, match=r"size: rectangles of 25×25 pixels are larger than the 32×24 frame"
    ):
        SamplePool(_frames(), Granularity("rectangle", size=25))


@pytest.mark.parametrize("name", ["pixel", "Frame", ""])
def test_an_unknown_granularity_is_refused(name):
    with pytest.raises(
        ConfigError, match="granularity: unknown sample granularity.*frame, rectangle, superpixel"
    ):
        Granularity(name)


def test_superpixels_cover_every_pixel_once_and_follow_colour():
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[:, 16:] = 255  # two flat halves
    regions = Granularity("superpixel", segments=8).regions(frame)
    ids = np.unique(regions)
    assert ids.tolist() == list(range(len(ids))) and len(ids) > 1
    for region in ids:  # no superpixel crosses the colour edge
        columns = np.nonzero(regions == region)[1]
        assert columns.max() < 16 or columns.min() >= 16


@pytest.mark.parametrize(
    "granularity",
    [Granularity("frame"), Granularity("rectangle", size=8), Granularity("superpixel", segments=12)],
)
def test_the_annotator_labels_exactly_the_pixels_of_the_chosen_samples(granularity):
    frames, truth = _frames(), _truth()
    pool = SamplePool(frames, granularity)
    chosen = [pool.samples[0], pool.samples[-1]]
    labels = SimulatedSemanticAnnotator(truth).label(pool, chosen)
    covered = [np.zeros(t.shape, bool) for t in truth]
    for sample in chosen:
        covered[sample.frame] |= pool.mask(sample)
    for label, gt, mask in zip(labels, truth, covered, strict=True):
        assert np.array_equal(label[mask], gt[mask])
        assert (label[~mask] == 255).all()
    # a later iteration adds to the labels it is given
    more = SimulatedSemanticAnnotator(truth).label(pool, [pool.samples[1]], labels)
    assert ((more[0] != 255) == (covered[0] | pool.mask(pool.samples[1]))).all()


def test_the_annotator_refuses_a_sample_on_a_frame_without_ground_truth():
    truth: list[np.ndarray | None] = [*_truth(2), None]
    pool = SamplePool(_frames(), Granularity("frame"))
    with pytest.raises(DataError, match="street frame 2: no ground truth"):
        SimulatedSemanticAnnotator(truth, video="street").label(pool, [SampleKey(0, 0), SampleKey(2, 0)])


def test_pool_averages_a_feature_map_over_each_samples_pixels():
    pool = SamplePool([np.zeros((4, 4, 3), np.uint8)], Granularity("rectangle", size=2))
    features = np.arange(16, dtype=np.float64).reshape(1, 4, 4)
    assert pool.pool([features])[:, 0].tolist() == [2.5, 4.5, 10.5, 12.5]
    coarse = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # stride 2: one cell per rectangle
    assert pool.pool([coarse])[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]


def _view(labelled: set[int], **kwargs) -> SampleView:
    pool = SamplePool(_frames(5, 8, 8), Granularity("frame"))
    return SampleView(pool, labelled, key="street", **kwargs)


def test_diversity_picks_the_farthest_sample_from_the_labelled_ones_then_farthest_first():
    features = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [0.0, 3.0], [4.0, 1.0]])
    selector = get_sample_selector("diversity")
    assert selector.select(_view({0}, features=features), 1) == [2]
    # after 2 (distance 5), 3 is 3 from 0 while 4 is only √2 from 2
    assert selector.select(_view({0}, features=features), 2) == [2, 3]
    # nothing labelled: start at the sample nearest the mean (2, 0.8), i.e. 1, then the farthest from it
    assert selector.select(_view(set(), features=features), 2) == [1, 2]


def test_uncertainty_picks_the_samples_of_the_highest_mean_entropy():
    sure = np.zeros((3, 8, 8))
    sure[0] = 1.0
    unsure = np.full((3, 8, 8), 1 / 3)
    half = sure.copy()
    half[:, :4] = 1 / 3
    probabilities = [sure, unsure, half, sure, sure]
    selector = get_sample_selector("uncertainty")
    assert selector.select(_view(set(), probabilities=probabilities), 2) == [1, 2]
    assert selector.select(_view({1}, probabilities=probabilities), 1) == [2]


def test_random_is_seeded_and_picks_unlabelled_samples_only():
    view = _view({0, 2})
    first = get_sample_selector("random", seed=3).select(view, 2)
    assert first == get_sample_selector("random", seed=3).select(view, 2)
    assert len(set(first)) == 2 and not set(first) & {0, 2}


def test_uniform_spreads_frames_then_fills_the_widest_gap():
    selector = get_sample_selector("uniform")
    assert selector.select(_view(set()), 2) == [1, 3]
    assert selector.select(_view({1, 3}), 1) == [0]  # 0 and 4 are 1 from a labelled frame; earlier wins
    pool = SamplePool(_frames(2, 8, 8), Granularity("rectangle", size=4))
    with pytest.raises(ConfigError, match="'uniform' selector spreads whole frames"):
        selector.select(SampleView(pool, set()), 1)


def test_an_unknown_selector_or_missing_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown sample selector 'oracle'; choose from random, uniform"):
        get_sample_selector("oracle")
    with pytest.raises(ConfigError, match="'diversity' selector needs a feature vector per sample"):
        get_sample_selector("diversity").select(_view(set()), 1)
    with pytest.raises(ConfigError, match="'uncertainty' selector needs the current softmax"):
        get_sample_selector("uncertainty").select(_view(set()), 1)
    with pytest.raises(ConfigError, match="budget: each iteration must label ≥ 1 sample"):
        get_sample_selector("random").select(_view(set()), 0)


def test_pool_equals_the_mean_of_the_nearest_upsampled_map_over_each_superpixel():
    frames = _frames(2, 24, 30)
    pool = SamplePool(frames, Granularity("superpixel", segments=10))
    rng = np.random.default_rng(1)
    maps = [rng.normal(size=(4, 5, 7)) for _ in frames]
    pooled = pool.pool(maps)
    rows = np.arange(24) * 5 // 24
    cols = np.arange(30) * 7 // 30
    for i, sample in enumerate(pool.samples):
        upsampled = maps[sample.frame][:, rows][:, :, cols]
        assert np.allclose(pooled[i], upsampled[:, pool.mask(sample)].mean(1))
