"""A box's GrabCut and its tightness prior: the object meets every row and column of its box."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.active.objects.tools import grabcut
from frugalseg.active.objects.tools.grabcut import _untouched_lines, grabcut_box

RED, BLUE = (220, 40, 40), (40, 60, 200)


def test_a_run_of_empty_rows_gets_one_seed_where_its_middle_row_looks_like_the_answer() -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    image[:] = BLUE
    found = np.zeros((60, 80), bool)
    found[10:30, 28:52] = True  # the answer's rows 10–29 and every inner column of the box
    image[found] = RED
    image[38, 44] = RED  # the one pixel of the answer's colour on the empty rows' middle row
    box = (25, 5, 54, 54)  # inner rows (`TIGHT_SLACK`, 8 px, off each side): 13–46, of which 30–46 are empty
    window = (17, 0, 63, 60)
    assert _untouched_lines(found, box, image, window) == [(44, 38)]


def test_an_answer_that_meets_nearly_every_line_of_its_box_gets_no_seed() -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    image[:] = BLUE
    found = np.zeros((60, 80), bool)
    found[16:48, 28:52] = True  # rows 13, 14 and 15 empty: 3 of 34 inner rows, at most `TIGHT_GAP`
    image[found] = RED
    assert _untouched_lines(found, (25, 5, 54, 54), image, (17, 0, 63, 60)) == []


def test_a_box_s_rows_left_empty_by_grabcut_are_cut_again(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CamVid cyclist in dark clothes on a dark street: GrabCut alone finds nothing in the box."""
    root = shared_data / "camvid_dev"
    image = cv2.cvtColor(cv2.imread(str(root / "val" / "0016E5_07967.jpg")), cv2.COLOR_BGR2RGB)
    label = cv2.imread(str(root / "valannot" / "0016E5_07967.png"), cv2.IMREAD_GRAYSCALE)
    _, parts = cv2.connectedComponents((label == 10).astype(np.uint8), connectivity=8)  # 10: bicyclist
    truth, counted = parts == 2, label != 11  # 11: void
    box = (205, 160, 236, 246)  # the cyclist's box (210, 165, 231, 241) + 5 px

    def iou(found: np.ndarray) -> float:
        return float((found & truth & counted).sum() / ((found | truth) & counted).sum())

    with monkeypatch.context() as alone:
        alone.setattr(grabcut, "TIGHT_ROUNDS", 0)
        assert not grabcut_box(image, box).any()
    found = grabcut_box(image, box)
    assert iou(found) == pytest.approx(0.7163, abs=1e-4)
    inside = np.zeros_like(found)
    inside[160:247, 205:237] = True
    assert not (found & ~inside).any()


def test_a_box_past_the_frame_is_its_part_on_the_frame() -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    image[:] = BLUE
    image[30:60, 50:80] = RED  # a red square in the frame's corner
    on_frame = grabcut_box(image, (45, 25, 79, 59))
    assert np.array_equal(grabcut_box(image, (45, 25, 90, 70)), on_frame)
    assert on_frame[30:60, 50:80].all() and not on_frame[:, :45].any()
    assert not grabcut_box(image, (85, 65, 95, 70)).any()  # wholly off the frame: nothing
