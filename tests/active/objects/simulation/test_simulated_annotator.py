"""The simulated corrective annotator of paper 002: exact clicks on hand-made masks, and the click loop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from frugalseg.active import CorrectiveClick, corrective_click, simulate_corrective_clicks
from frugalseg.active.objects.simulation.simulated_annotator import (
    best_of_corrections,
    deepest_error_click,
    region_centre,
)


def square(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_no_error_no_click() -> None:
    truth = square((10, 10), 2, 2, 4)
    assert corrective_click(truth, truth) is None
    assert corrective_click(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) is None


def test_positive_click_in_the_centre_of_the_largest_missed_region() -> None:
    truth = square((20, 20), 2, 2, 7) | square((20, 20), 12, 12, 5)
    prediction = np.zeros((20, 20), bool)
    prediction[2:9, 2:4] = True  # of the 7×7 square only the two left columns are found
    prediction[12:17, 12:17] = True  # the 5×5 square is found
    prediction[15:20, 0:5] = True  # a 5×5 false positive, smaller than the 7×5 miss
    click = corrective_click(prediction, truth)
    # the miss spans rows 2…8 and columns 4…8: its deepest pixel is row 5, column 6, 3 px from its edge
    assert click == CorrectiveClick(x=6, y=5, positive=True, region_area=35, depth=3.0)


def test_negative_click_when_the_false_positive_is_larger() -> None:
    truth = square((20, 20), 0, 0, 3)
    prediction = square((20, 20), 8, 6, 9)  # 81 px false positive; the 9 px object is missed
    assert corrective_click(prediction, truth) == CorrectiveClick(
        x=10, y=12, positive=False, region_area=81, depth=5.0
    )


def test_ties_between_regions_prefer_the_miss() -> None:
    truth = square((12, 12), 0, 0, 3)
    prediction = square((12, 12), 8, 8, 3)
    click = corrective_click(prediction, truth)
    assert (click.x, click.y, click.positive) == (1, 1, True)


def test_centre_is_the_deepest_pixel_and_lies_inside_a_non_convex_region() -> None:
    # an L of 4 px wide bars whose centroid (x 5.4, y 9.6) falls in the notch, outside it
    region = np.zeros((16, 16), bool)
    region[1:15, 1:5] = True
    region[11:15, 1:15] = True
    x, y, depth = region_centre(region)
    # the corner is deepest: 3 px from the left and bottom edges, √8 from the notch at (5, 10)
    assert (x, y) == (3, 12) and depth == pytest.approx(np.sqrt(8), abs=1e-5)
    # an elongated bar: every pixel of its middle row is 2 px deep, the middle of that ridge is taken
    bar = np.zeros((5, 11), bool)
    bar[1:4, 1:10] = True
    assert region_centre(bar) == (5, 2, 2.0)
    # the image border counts as boundary
    assert region_centre(square((10, 10), 0, 0, 5)) == (2, 2, 3.0)


def test_ignored_pixels_are_not_errors() -> None:
    truth = square((10, 10), 0, 0, 4)
    prediction = square((10, 10), 5, 5, 5)
    click = corrective_click(prediction, truth, ignore=prediction)
    assert (click.x, click.y, click.positive, click.region_area) == (1, 1, True, 16)


class ComponentSAM:
    """Stand-in predictor: candidates are the true objects under the positive clicks, everything, nothing.

    Logits of call n are filled with n, so the fed-back ``mask_input`` shows which call it came from.
    """

    def __init__(self, truth: np.ndarray) -> None:
        self.truth = truth
        self.calls: list[dict] = []

    def set_image(self, image: np.ndarray) -> None:
        pass

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        self.calls.append(
            {"points": point_coords.tolist(), "labels": point_labels.tolist(), "mask_input": mask_input}
        )
        _, parts = cv2.connectedComponents(self.truth.astype(np.uint8), connectivity=8)
        found = np.zeros_like(self.truth)
        for (x, y), label in zip(point_coords.astype(int), point_labels, strict=True):
            if label == 1 and parts[y, x]:
                found |= parts == parts[y, x]
        masks = np.stack([found, np.ones_like(found), np.zeros_like(found)]).astype(np.float32)
        n = len(self.calls)
        return masks, np.array([0.5, 0.9, 0.1]), np.full((3, 256, 256), float(n), np.float32)


def test_ritms_clicker_clicks_the_deeper_error_not_the_larger_region() -> None:
    truth = square((60, 200), 5, 5, 10)  # missed whole: 100 px, 5 px deep at rows and columns 9–10
    prediction = np.zeros((60, 200), bool)
    prediction[40:42, :] = True  # a spill of 400 px, 1 px deep
    larger = corrective_click(prediction, truth)
    assert larger is not None and not larger.positive and larger.region_area == 400
    assert deepest_error_click(prediction, truth) == CorrectiveClick(9, 9, True, region_area=100, depth=5.0)
    # a pixel clicked before is not clicked again: the next of the greatest depth in raster order
    assert deepest_error_click(prediction, truth, clicked=[(9, 9)]) == CorrectiveClick(10, 9, True, 100, 5.0)
    assert deepest_error_click(truth, truth) is None


def test_ritms_clicker_ties_go_negative_and_ignored_pixels_are_no_error() -> None:
    truth = square((30, 30), 2, 2, 6)
    spill = square((30, 30), 20, 20, 6)  # as deep as the miss
    click = deepest_error_click(spill, truth)
    assert click == CorrectiveClick(22, 22, False, region_area=36, depth=3.0)
    assert deepest_error_click(spill, truth, ignore=spill) == CorrectiveClick(4, 4, True, 36, 3.0)
    assert deepest_error_click(spill, truth, ignore=spill | truth) is None


def test_click_loop_accumulates_clicks_feeds_back_logits_and_stops_when_exact() -> None:
    truth = square((20, 20), 1, 1, 9) | square((20, 20), 14, 14, 5)
    sam = ComponentSAM(truth)
    mask, clicks = simulate_corrective_clicks(sam, np.zeros((20, 20, 3), np.uint8), truth, num_clicks=3)
    assert np.array_equal(mask, truth)
    assert [(c.x, c.y, c.positive) for c in clicks] == [(5, 5, True), (16, 16, True)]
    assert [c["points"] for c in sam.calls] == [[[5, 5]], [[5, 5], [16, 16]]]
    assert [c["labels"] for c in sam.calls] == [[1], [1, 1]]
    assert sam.calls[0]["mask_input"] is None
    assert sam.calls[1]["mask_input"].shape == (1, 256, 256) and (sam.calls[1]["mask_input"] == 1).all()


def test_click_loop_starts_from_an_initial_mask_with_a_negative_click() -> None:
    truth = square((20, 20), 1, 1, 4)
    initial = truth | square((20, 20), 8, 8, 9)
    sam = ComponentSAM(truth)
    mask, clicks = simulate_corrective_clicks(
        sam, np.zeros((20, 20, 3), np.uint8), truth, num_clicks=1, initial=initial
    )
    assert [(c.x, c.y, c.positive) for c in clicks] == [(12, 12, False)]
    assert sam.calls[0]["labels"] == [0]
    # SAM found nothing under no positive click: of (nothing, everything, nothing) the oracle keeps
    # the candidate with the best IoU with the truth, everything (16/400)
    assert np.array_equal(mask, np.ones_like(truth))


def test_best_of_corrections_keeps_the_best_answer_and_clicks_on_the_one_shown_last() -> None:
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    start = np.zeros_like(truth)
    worse = np.ones_like(truth)  # the first answer spills over everything: J 0.25
    better = truth.copy()
    better[5:15, 5:7] = False  # the second misses two columns: J 0.8
    answers = [worse, better, better]
    seen: list[list[CorrectiveClick]] = []

    def answer(made: list[CorrectiveClick]) -> np.ndarray:
        seen.append(made)
        return answers[len(made) - 1]

    best, made = best_of_corrections(start, truth, answer, clicks=3)
    assert best is better and len(made) == 3
    assert made[0].positive and not made[1].positive  # the 2nd click is on the spill of the answer shown
    assert [len(m) for m in seen] == [1, 2, 3]
    exact, none = best_of_corrections(truth, truth, answer, clicks=3)  # nothing to correct: no click
    assert exact is truth and none == []


def test_best_of_corrections_clicks_on_what_the_tool_shows_and_keeps_the_person_s_mask_on_ties() -> None:
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    mine = truth.copy()
    mine[5:15, 5:10] = False  # the person's mask: the left half missed, J 0.5
    shown = np.zeros_like(truth)  # what the tool shows of it (SAM's fit): nothing
    also_half = truth.copy()
    also_half[5:15, 10:15] = False  # the answer: the right half missed, J 0.5 too

    best, made = best_of_corrections(shown, truth, lambda made: also_half, clicks=1, kept=mine)
    assert best is mine  # a tie: the person keeps their own mask
    assert made[0].positive and made[0].x >= 9  # in the middle of the empty mask shown, not of mine's miss
