"""The minimum cut's solver: known cuts of tiny graphs, and the 8-neighbour pairs of a tiny image."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.active.objects.tools.max_flow import (
    HARD,
    SCALE,
    contrast_weights,
    neighbour_pairs,
    source_side,
)


def test_each_node_alone_takes_its_cheaper_side() -> None:
    # Node 0 costs 10 as background and 1 as object; node 1 the other way round; no edge between them.
    side = source_side(2, [], np.array([10, 1]), np.array([1, 10]))
    assert side.tolist() == [True, False]


def test_a_strong_edge_pulls_a_node_to_its_neighbour_s_side_and_a_weak_one_does_not() -> None:
    # Node 0 is held as object. Node 1 would be background (3 as object, 2 as background), but as background
    # the cut also pays the edge to node 0: at 5 it joins node 0 (3 < 2 + 5); without the edge it stays.
    to_object, to_background = np.array([HARD, 2]), np.array([0, 3])
    for capacity, joined in ((5, True), (0, False)):
        edges = [(np.array([0, 1]), np.array([1, 0]), np.array([capacity, capacity]))]
        assert source_side(2, edges, to_object, to_background).tolist() == [True, joined]


def test_the_neighbour_pairs_of_a_two_by_two_image_and_their_contrast() -> None:
    # Lightness 0 on the left column and 10 on the right: the two horizontal and the two diagonal pairs
    # differ by 100 (squared), the two vertical ones by 0; β = 1 / (2 · mean) = 1 / (2 · 400 / 6).
    lab = np.zeros((2, 2, 3), np.float32)
    lab[:, 1, 0] = 10
    pairs, beta = neighbour_pairs(lab)
    found = sorted(
        (int(a), int(b), float(d2), round(dist, 3))
        for first, second, squared, dist in pairs
        for a, b, d2 in zip(first, second, squared, strict=True)
    )
    assert found == [
        (0, 1, 100.0, 1.0),
        (0, 2, 0.0, 1.0),
        (0, 3, 100.0, 1.414),
        (1, 2, 100.0, 1.414),
        (1, 3, 0.0, 1.0),
        (2, 3, 100.0, 1.0),
    ]
    assert beta == pytest.approx(1.0 / (2 * 400 / 6))


def test_an_edge_across_contrast_is_cheaper_and_a_diagonal_one_longer() -> None:
    # The image above: a vertical pair (no contrast) costs `SCALE` · weight, a horizontal one across the step
    # exp(−β · 100) of that, a diagonal one across it that over √2.
    lab = np.zeros((2, 2, 3), np.float32)
    lab[:, 1, 0] = 10
    beta = 1.0 / (2 * 400 / 6)
    found = {
        (int(a), int(b)): float(w)
        for first, second, weights in contrast_weights(lab, 2.0)
        for a, b, w in zip(first, second, weights, strict=True)
    }
    assert found[(0, 2)] == pytest.approx(SCALE * 2.0)
    assert found[(0, 1)] == pytest.approx(SCALE * 2.0 * np.exp(-beta * 100))
    assert found[(0, 3)] == pytest.approx(SCALE * 2.0 * np.exp(-beta * 100) / np.sqrt(2))
