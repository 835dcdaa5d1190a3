"""`drop_dragged`: an object's pixels that move as the background does become background, on known flows."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.flow.dragged import MIN_APART, drop_dragged

HEIGHT, WIDTH = 100, 100  # the frame's size is 100 px: motions 1 px apart are the least (`MIN_APART`)


def scene(part_flow: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Object 1 (rows 30–69, columns 30–59) still, a 10-px strip of it right of that moving ``part_flow``,
    the background panning (−8, 0); one pixel unknown (255) in the background."""
    label = np.zeros((HEIGHT, WIDTH), np.uint8)
    label[30:70, 30:70] = 1
    label[0, 0] = 255
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[...] = (-8.0, 0.0)
    flow[30:70, 30:60] = (0.0, 0.0)
    flow[30:70, 60:70] = part_flow
    return label, flow


def test_the_strip_moving_with_the_background_becomes_background_and_nothing_else() -> None:
    label, flow = scene((-8.0, 0.0))
    dropped_label, dropped = drop_dragged(label, flow, [1])
    expected = np.zeros((HEIGHT, WIDTH), bool)
    expected[30:70, 60:70] = True
    assert (dropped == expected).all()
    assert (dropped_label == np.where(expected, 0, label)).all() and dropped_label[0, 0] == 255


def test_a_part_between_the_two_motions_is_kept() -> None:
    """A limb moving its own way: 3 px from the background's motion is over 0.25 × 8 px."""
    label, flow = scene((-5.0, 0.0))
    dropped_label, dropped = drop_dragged(label, flow, [1])
    assert not dropped.any() and dropped_label is label


def test_motions_closer_than_the_least_apart_take_nothing() -> None:
    label, flow = scene((-0.9, 0.0))
    flow[flow[..., 0] == -8.0] = (-0.9, 0.0)  # the background now moves 0.9 px: under MIN_APART × 100
    assert MIN_APART * 100 == pytest.approx(1.0)
    assert not drop_dragged(label, flow, [1])[1].any()


@pytest.mark.parametrize(("lines", "taken"), [(11, True), (13, False)])
def test_a_part_over_half_the_object_is_kept(lines: int, taken: bool) -> None:
    """Thin lines of the object (1 px tall, 100 px long, outside its core) panning with the background:
    11 lines are 1,100 of 2,300 px and are taken; 13 are 1,300 of 2,500, over half, and nothing is."""
    label, flow = scene((0.0, 0.0))
    label[30:70, 60:70] = 0
    rows = list(range(72, 72 + 2 * lines, 2))
    label[rows] = 1
    dropped = drop_dragged(label, flow, [1])[1]
    expected = np.zeros((HEIGHT, WIDTH), bool)
    expected[rows] = taken
    assert (dropped == expected).all()


def test_only_the_objects_named_are_looked_at_and_a_flow_of_another_size_is_refused() -> None:
    label, flow = scene((-8.0, 0.0))
    assert not drop_dragged(label, flow, [2])[1].any()
    assert not drop_dragged(label, flow, [0, 255])[1].any()
    with pytest.raises(ValueError, match=r"flow of shape \(100, 99, 2\) for a label of shape \(100, 100\)"):
        drop_dragged(label, flow[:, :99], [1])
