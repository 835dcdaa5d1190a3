"""The intelligent scissors' work is bounded before it starts: each path is searched in a window of its
anchors, and a call that would search more than `MAX_SCISSORS_WORK` pixels is refused before any search."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from frugalseg.active.objects.tools.tools import MAX_SCISSORS_WORK, IntelligentScissors, scissors_window
from frugalseg.errors import ConfigError

SHAPE = (480, 854)


def disc_image() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """An 854×480 frame with a bright disc of radius 200, and 500 anchor points on its edge (2.5 px apart)."""
    image = np.full((*SHAPE, 3), 40, np.uint8)
    cv2.circle(image, (427, 240), 200, (220, 220, 220), -1)
    angles = np.linspace(0, 2 * np.pi, 500, endpoint=False)
    anchors = [(round(427 + 200 * np.cos(a)), round(240 + 200 * np.sin(a))) for a in angles]
    return image, anchors


def test_500_anchors_far_apart_are_refused_before_any_search() -> None:
    image, _ = disc_image()
    rng = np.random.default_rng(0)
    spread = list(zip(rng.integers(0, 854, 500).tolist(), rng.integers(0, 480, 500).tolist(), strict=True))
    scissors = IntelligentScissors()
    work = scissors.work(image, spread)
    assert work > 50 * MAX_SCISSORS_WORK  # today: every path searched over the whole frame, 132 s
    with pytest.raises(ConfigError, match=r"^scissors: the paths through these 500 anchor points would"):
        scissors.contour(image, spread)
    assert scissors.work(image, spread) == work  # nothing was searched and kept


def test_500_anchors_along_an_edge_are_answered_within_the_bound() -> None:
    image, anchors = disc_image()
    scissors = IntelligentScissors()
    work = scissors.work(image, anchors, closed=True)
    assert work <= 500 * (2 * 16 + 4) ** 2 < MAX_SCISSORS_WORK  # a window of about 36×36 px a path
    found = scissors.mask(image, anchors)
    disc = np.zeros(SHAPE, np.uint8)
    cv2.circle(disc, (427, 240), 200, 1, -1)
    assert (found & (disc > 0)).sum() / (found | (disc > 0)).sum() > 0.98
    # what is kept is not searched again: the page's next anchor costs one window
    assert scissors.work(image, anchors, closed=True) == 0
    window = scissors_window(anchors[-1], (430, 40), SHAPE)
    assert scissors.work(image, [*anchors, (430, 40)]) == (window[2] - window[0]) * (window[3] - window[1])


def test_the_window_holds_an_edge_that_bulges_from_the_chord() -> None:
    start, end = (100, 240), (300, 240)  # half a circle's edge between them bulges 100 px
    x0, y0, x1, y1 = scissors_window(start, end, SHAPE)
    assert (x0, x1) == (0, 402) and y0 <= 140 and y1 >= 341
    assert scissors_window((5, 5), (6, 5), SHAPE) == (0, 0, 23, 22)  # at least 16 px around, cut to the frame
