"""Click-to-mask models of the ``clicks`` type: GrabCut as it always was, SAM prompted the EVA-VOS way.

The SAM logic is checked against stand-in predictors whose candidates are known (which candidate is
kept, what each call is prompted with, when the image is embedded); SAM 2 itself runs with random
weights, which checks the pipeline (a valid object-id mask, the cost ledger), not mask quality.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from active.synthetic_clips import jaccard, moving_square
from frugalseg.active.objects.simulation.annotation_types import (
    GivenClick,
    annotate_clicks,
    annotate_given_clicks,
    visible_objects,
)
from frugalseg.active.objects.simulation.simulated_annotator import CorrectiveClick, corrective_click
from frugalseg.active.objects.tools import click_models, grabcut
from frugalseg.active.objects.tools.click_models import (
    FIT_ROUNDS,
    GrabCutClicks,
    SAM2Clicks,
    SAMClicks,
    StarCutClicks,
    get_click_model,
    mask_logits,
)
from frugalseg.active.objects.tools.grabcut import (
    BOX_ITERATIONS,
    BOX_PIXELS,
    click_radius,
    grabcut_box,
    grabcut_clicks,
    local_grabcut_clicks,
    paint_clicks,
)
from frugalseg.errors import ConfigError, DataError
from frugalseg.metrics.mask_scores import region_similarity
from frugalseg.options import given_options

SIZE = 64  # the stand-ins' image_size: their low-resolution masks are 16×16
BLACK = np.zeros((20, 20, 3), np.uint8)


def box(rows: tuple[int, int], cols: tuple[int, int], shape: tuple[int, int] = (20, 20)) -> np.ndarray:
    """Bool mask with rows ``rows[0]…rows[1]`` and columns ``cols[0]…cols[1]`` (inclusive) set."""
    mask = np.zeros(shape, bool)
    mask[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    return mask


# The object of most tests: 7 rows × 14 columns; the current mask has its left 7 columns.
TRUTH = box((2, 8), (2, 15))
CURRENT = box((2, 8), (2, 8))
NOTHING, EVERYTHING = np.zeros((20, 20), bool), np.ones((20, 20), bool)


class ScriptedSAM:
    """Stand-in image predictor: call n answers with the n-th scripted (candidates, scores).

    The low-resolution logits of candidate i of call n are filled with 10 n + i, so a fed-back
    ``mask_input`` shows which call and which candidate it came from.
    """

    def __init__(self, replies: list[tuple[list[np.ndarray], list[float]]]) -> None:
        self.replies = replies
        self.calls: list[dict] = []
        self.images: list[np.ndarray] = []

    def set_image(self, image: np.ndarray) -> None:
        self.images.append(np.array(image))

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        self.calls.append(
            {
                "points": None if point_coords is None else point_coords.tolist(),
                "labels": None if point_labels is None else point_labels.tolist(),
                "box": None if box is None else box.tolist(),
                "mask_input": mask_input,
                "multimask": multimask_output,
            }
        )
        n = len(self.calls)
        masks, scores = self.replies[n - 1]
        low = np.stack([np.full((SIZE // 4, SIZE // 4), 10.0 * n + i, np.float32) for i in range(len(masks))])
        return np.stack(masks).astype(np.float32), np.asarray(scores, np.float32), low


class ObjectSAM:
    """Stand-in image predictor that answers any prompt with the true object under its first positive
    point, everything and nothing (one image's object ids, set with ``truth``)."""

    def __init__(self, truth: np.ndarray) -> None:
        self.truth = truth
        self.images: list[np.ndarray] = []

    def set_image(self, image: np.ndarray) -> None:
        self.images.append(np.array(image))

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        x, y = next(p for p, label in zip(point_coords.astype(int), point_labels, strict=True) if label == 1)
        found = (self.truth == self.truth[y, x]) & (self.truth > 0)
        masks = np.stack([found, np.ones_like(found), np.zeros_like(found)]).astype(np.float32)
        return masks, np.array([0.5, 0.9, 0.1], np.float32), np.zeros((3, SIZE // 4, SIZE // 4), np.float32)


def clicked(clicks: list[CorrectiveClick]) -> list[tuple[int, int, bool]]:
    return [(c.x, c.y, c.positive) for c in clicks]


# --- GrabCut: today's behaviour, byte for byte ------------------------------------------------------


def annotate_clicks_before_click_models(image, current, truth, clicks_per_object=3):
    """The body of ``annotate_clicks`` before the click models existed, kept to pin GrabCutClicks to it."""
    void = truth == 255
    objects = sorted(set(visible_objects(truth)) | {int(v) for v in np.unique(current) if v not in (0, 255)})
    mask = np.where(current == 255, 0, current).astype(np.uint8)
    radius = click_radius(truth.shape)
    made = {}
    for obj in objects:
        target, found, clicks = truth == obj, current == obj, []
        for _ in range(clicks_per_object):
            click = corrective_click(found, target, ignore=void)
            if click is None:
                break
            clicks.append(click)
            candidates = [
                grabcut_clicks(image, found, clicks, radius=radius),
                paint_clicks(found, clicks, radius),
            ]
            found = max(candidates, key=lambda c, target=target: region_similarity(c, target, void))
        mask[(mask == obj) & ~found] = 0
        mask[found] = obj
        made[obj] = len(clicks)
    return mask, made


@pytest.mark.parametrize("shift", [0, 3, 7])
def test_grabcut_clicks_give_exactly_what_annotate_clicks_gave_before(shift: int) -> None:
    """Equal for equal inputs, OpenCV's random state included: GrabCut's k-means start draws from it."""
    frames, truth = moving_square(6, late=2, occluder=6)
    for t in (2, 5):
        current = np.roll(truth[t - 1], shift, axis=1)
        current[5:12, 5:15] = 3  # an object that is not in the truth: negative clicks only
        target = truth[t].copy()
        target[40:44, 60:90] = 255  # void: no error either way
        for clicks in (1, 3):
            cv2.setRNGSeed(t)
            mask, made = annotate_clicks_before_click_models(frames[t], current, target, clicks)
            for model in (GrabCutClicks(),):  # the model named; None is the default, starcut
                cv2.setRNGSeed(t)
                result = annotate_clicks(frames[t], current, target, clicks_per_object=clicks, model=model)
                assert np.array_equal(result.mask, mask) and result.clicks == made
                assert result.seconds == {o: 1.5 * n + (o == min(made)) for o, n in made.items()}


def test_grabcut_simulate_returns_the_clicks_it_made() -> None:
    frames, truth = moving_square(2)
    cv2.setRNGSeed(0)
    found, clicks = GrabCutClicks().simulate(frames[1], truth[0] == 1, truth[1] == 1, clicks=3)
    # the square moved 2 px right: the missed 40×2 strip (columns 50, 51) beats the equal false
    # positive; all its pixels are 1 px deep, the first of the four nearest its middle is taken
    assert clicked(clicks)[0] == (50, 47, True)
    assert region_similarity(found, truth[1] == 1) > region_similarity(truth[0] == 1, truth[1] == 1)


def test_grabcut_correct_is_local_grabcut_within_three_click_radii() -> None:
    frames, truth = moving_square(2)
    prior = truth[0] == 1
    clicks = [GivenClick(1, 49, 47, True), GivenClick(1, 30, 20, False)]
    radius = click_radius(prior.shape)  # 2 px at 96×128
    cv2.setRNGSeed(0)  # GrabCut's k-means start draws from OpenCV's random state
    expected = local_grabcut_clicks(frames[1], prior, clicks, radius=radius, reach=3 * radius)
    cv2.setRNGSeed(0)
    assert np.array_equal(GrabCutClicks().correct(frames[1], prior, clicks), expected)
    for model in (GrabCutClicks(),):  # the model named; None is the default, starcut
        cv2.setRNGSeed(0)
        result = annotate_given_clicks(frames[1], truth[0], clicks, model=model)
        assert np.array_equal(result.mask == 1, expected) and result.seconds == {1: 4.0}


def test_negative_clicks_on_an_empty_mask_take_nothing_and_give_nothing() -> None:
    """A negative click on a frame without the object (Label Studio's) had been answered with much of it."""
    frames, truth = moving_square(1)
    empty = np.zeros(truth[0].shape, bool)
    background = GivenClick(1, 5, 5, False)  # the square covers columns 10-49, rows 28-67: outside it
    for model in (StarCutClicks(), GrabCutClicks()):
        assert not model.correct(frames[0], empty, [background]).any(), type(model).__name__
    inside = GivenClick(1, 30, 48, True)  # the square's middle
    found = StarCutClicks().correct(frames[0], empty, [background, inside])
    assert found[48, 30] and not found[5, 5]
    assert np.array_equal(
        found, StarCutClicks().correct(frames[0], empty, [inside])
    )  # the far negative: nothing


# --- the current mask as SAM 2 logits -----------------------------------------------------------------


def test_mask_logits_are_sam2s_own_plus_minus_ten_at_a_quarter_of_the_input_size() -> None:
    left = np.zeros((64, 64), bool)
    left[:, :32] = True
    logits = mask_logits(left, 64)
    assert logits.shape == (1, 16, 16) and logits.dtype == np.float32
    # each 16×16 cell covers 4×4 px; the antialiased bilinear kernel of cell 7 spans px 26…33 with
    # weights 1, 3, 5, 7, 7, 5, 3, 1 (/32): (1+3+5+7+7+5 − 3−1) / 32 × 10 = 7.5
    row = [10.0] * 7 + [7.5, -7.5] + [-10.0] * 7
    assert np.allclose(logits[0], np.array(row)[None, :], atol=1e-5)
    # a 96×128 frame is squashed into the square input, as SAM 2 resizes the image
    wide = np.zeros((96, 128), bool)
    wide[:, :64] = True
    assert np.allclose(mask_logits(wide, 64), logits, atol=1e-5)
    assert np.allclose(mask_logits(np.ones((5, 7), bool), 256), np.full((1, 64, 64), 10.0), atol=1e-5)


# --- SAM, the simulated annotator -----------------------------------------------------------------------


def test_sam_keeps_the_candidate_closest_to_the_truth_with_every_click_and_the_previous_logits() -> None:
    partial = box((2, 8), (2, 12))  # IoU 77/98 with the truth
    sam = ScriptedSAM(
        [
            ([EVERYTHING, partial, NOTHING], [0.9, 0.1, 0.5]),  # the best-scored is not the closest
            ([TRUTH, partial, NOTHING], [0.2, 0.3, 0.9]),
        ]
    )
    found, clicks = SAMClicks(sam, SIZE).simulate(BLACK, CURRENT, TRUTH, clicks=3)
    assert np.array_equal(found, TRUTH)
    # the centre of the 7×7 miss, then of the 7×3 miss left by the kept candidate; exact: no third
    assert clicked(clicks) == [(12, 5, True), (14, 5, True)]
    assert [c["points"] for c in sam.calls] == [[[12, 5]], [[12, 5], [14, 5]]]
    assert [c["labels"] for c in sam.calls] == [[1], [1, 1]]
    assert all(c["multimask"] for c in sam.calls)
    assert np.array_equal(sam.calls[0]["mask_input"], mask_logits(CURRENT, SIZE))
    assert sam.calls[1]["mask_input"].shape == (1, 16, 16) and np.all(sam.calls[1]["mask_input"] == 11)


def test_sam_starts_from_no_mask_input_when_the_current_mask_is_empty() -> None:
    sam = ScriptedSAM([([TRUTH, EVERYTHING, NOTHING], [0.1, 0.2, 0.3])])
    found, clicks = SAMClicks(sam, SIZE).simulate(BLACK, NOTHING, TRUTH, clicks=3)
    assert np.array_equal(found, TRUTH) and len(clicks) == 1 and sam.calls[0]["mask_input"] is None


def test_sam_never_returns_a_mask_worse_than_the_current_one() -> None:
    current = TRUTH & ~box((0, 19), (15, 15))  # IoU 91/98
    far = box((12, 18), (12, 18))
    sam = ScriptedSAM([([NOTHING, EVERYTHING, far], [0.9, 0.5, 0.1])] * 3)
    found, clicks = SAMClicks(sam, SIZE).simulate(BLACK, current, TRUTH, clicks=3)
    assert np.array_equal(found, current)
    # clicks go to the errors of what SAM showed (everything but the clicked pixel: negative clicks off
    # the object), and every click made is charged even when none of SAM's masks is kept
    assert clicked(clicks) == [(15, 5, True), (9, 14, False), (14, 14, False)]
    again = SAMClicks(ScriptedSAM([([NOTHING, EVERYTHING, far], [0.9, 0.5, 0.1])] * 3), SIZE)
    result = annotate_clicks(BLACK, current.astype(np.uint8), TRUTH.astype(np.uint8), model=again)
    assert np.array_equal(result.mask, current.astype(np.uint8)) and result.seconds == {1: 3 * 1.5 + 1}


def test_sam_keeps_the_best_mask_it_showed_not_the_last() -> None:
    partial = box((2, 8), (2, 12))
    sam = ScriptedSAM(
        [([partial, NOTHING, EVERYTHING], [0.1, 0.2, 0.3]), ([NOTHING, EVERYTHING], [0.5, 0.5])]
    )
    found, clicks = SAMClicks(sam, SIZE).simulate(BLACK, CURRENT, TRUTH, clicks=2)
    assert np.array_equal(found, partial) and len(clicks) == 2
    assert np.all(sam.calls[1]["mask_input"] == 10)  # call 1's candidate 0 fed back


def test_sam_embeds_each_frame_once_for_all_its_objects() -> None:
    frames, truth = moving_square(4, late=1)
    sam = ObjectSAM(truth[2])
    model = SAMClicks(sam, SIZE)
    result = annotate_clicks(frames[2], truth[1], truth[2], model=model)
    # every object exact after one positive click in its missed part
    assert np.array_equal(result.mask, truth[2]) and result.clicks == {1: 1, 2: 1}
    assert result.seconds == {1: 1.5 + 1.0, 2: 1.5} and len(sam.images) == 1
    annotate_given_clicks(frames[2], truth[1], [GivenClick(1, 40, 40, True)], model=model)
    assert len(sam.images) == 1  # the same frame again: its embedding is reused
    sam.truth = truth[3]
    annotate_clicks(frames[3], truth[2], truth[3], model=model)
    annotate_clicks(frames[2].copy(), truth[1], truth[2], model=model)  # equal bytes, another array
    assert len(sam.images) == 3
    assert np.array_equal(sam.images[1], frames[3]) and np.array_equal(sam.images[2], frames[2])


def test_sam_fit_prompts_sam_towards_the_current_mask_without_charging_it() -> None:
    fitted = box((2, 8), (2, 9))  # IoU 49/56 = 0.875 with the current mask: above 0.8, the fit stops
    sam = ScriptedSAM(
        [
            ([NOTHING, fitted, EVERYTHING], [0.9, 0.1, 0.5]),
            ([TRUTH, NOTHING, EVERYTHING], [0.1, 0.2, 0.3]),
        ]
    )
    found, clicks = SAMClicks(sam, SIZE, start="fit").simulate(BLACK, CURRENT, TRUTH, clicks=3)
    assert np.array_equal(found, TRUTH)
    # the fit's middle click (the centre of the current mask) stays in the prompt, uncharged; the
    # charged click goes to the largest error of the fitted mask
    assert clicked(clicks) == [(12, 5, True)]
    assert [c["points"] for c in sam.calls] == [[[5, 5]], [[5, 5], [12, 5]]]
    assert sam.calls[0]["mask_input"] is None and np.all(sam.calls[1]["mask_input"] == 11)


def test_a_failed_fit_starts_sam_afresh() -> None:
    sam = ScriptedSAM(
        [([NOTHING, EVERYTHING, NOTHING], [0.1, 0.2, 0.3])] * (1 + FIT_ROUNDS) + [([TRUTH], [0.5])]
    )
    found, clicks = SAMClicks(sam, SIZE, start="fit").simulate(BLACK, CURRENT, TRUTH, clicks=1)
    assert len(sam.calls) == 1 + FIT_ROUNDS + 1 and np.array_equal(found, TRUTH)
    # the annotator clicks on the current mask's errors; SAM gets no prompt from the fit
    assert sam.calls[-1]["points"] == [[12, 5]] and sam.calls[-1]["mask_input"] is None
    assert clicked(clicks) == [(12, 5, True)]


# --- SAM, a person's clicks ----------------------------------------------------------------------------


def test_sam_correct_keeps_the_best_scored_candidate_one_or_three_as_sams_docs_advise() -> None:
    partial = box((2, 8), (2, 12))
    sam = ScriptedSAM([([EVERYTHING, partial, NOTHING], [0.2, 0.9, 0.5]), ([TRUTH], [0.1])])
    model = SAMClicks(sam, SIZE)
    assert np.array_equal(model.correct(BLACK, CURRENT, [GivenClick(1, 12, 5, True)]), partial)
    two = [GivenClick(1, 12, 5, True), GivenClick(1, 5, 15, False)]
    assert np.array_equal(model.correct(BLACK, CURRENT, two), TRUTH)
    assert [c["multimask"] for c in sam.calls] == [True, False]
    assert sam.calls[1]["points"] == [[12, 5], [5, 15]] and sam.calls[1]["labels"] == [1, 0]
    for call in sam.calls:  # no truth, no previous logits: the current mask's own
        assert np.array_equal(call["mask_input"], mask_logits(CURRENT, SIZE))
    assert len(sam.images) == 1


# --- what every model's mask holds: the clicks' own pixels, the box -----------------------------------


def test_sams_mask_holds_each_clicks_own_pixel_and_stays_inside_a_box() -> None:
    """SAM may miss a positive click's pixel, keep a negative one's, cross the box: the mask shown may not."""
    positive, negative = GivenClick(1, 12, 5, True), GivenClick(1, 3, 4, False)
    spilt = box((0, 19), (0, 9))  # misses (12, 5), holds (3, 4), crosses the box below
    sam = ScriptedSAM([([spilt], [0.9]), ([spilt], [0.9]), ([NOTHING] * 3, [0.9, 0.5, 0.1])])
    model = SAMClicks(sam, SIZE)
    expected = spilt.copy()
    expected[5, 12], expected[4, 3] = True, False
    assert np.array_equal(model.correct(BLACK, CURRENT, [positive, negative]), expected)
    outside = GivenClick(1, 5, 17, True)  # below the box: the box overrules it
    boxed = model.box(BLACK, (2, 2, 15, 8), [positive, outside])
    expected = box((2, 8), (2, 9))
    expected[5, 12] = True
    assert np.array_equal(boxed, expected)
    simulated, made = model.simulate(BLACK, NOTHING, TRUTH, clicks=1)  # SAM shows nothing: the click's pixel
    assert clicked(made) == [(8, 5, True)] and np.array_equal(np.argwhere(simulated), [[5, 8]])


def test_grabcuts_box_and_click_stay_inside_the_box_where_its_correction_grows_past_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GrabCut re-decides a disk around a click after a box, which reaches past the box's edge."""
    monkeypatch.setattr(grabcut, "TIGHT_ROUNDS", 0)  # the box's guess empty (red all round): the click rules
    image = np.zeros((60, 60, 3), np.uint8)
    image[10:50, 10:50] = (200, 60, 60)  # a red square larger than the box drawn on it
    drawn = (10, 10, 29, 49)  # its left half
    clicks = [GivenClick(1, 27, 30, True)]
    model = GrabCutClicks()
    own = model._box(image, drawn, clicks)
    assert own[:, 30:].any()  # the model's own answer crosses the box: the check below can fail
    boxed = model.box(image, drawn, clicks)
    assert not boxed[:, 30:].any() and not boxed[:10].any()
    assert np.array_equal(boxed, own & box((10, 49), (10, 29), (60, 60)))


@pytest.mark.parametrize("model", [GrabCutClicks(), StarCutClicks()], ids=lambda m: m.name)
def test_a_box_reaching_past_the_frame_is_its_part_on_the_frame(model) -> None:
    """StarCut's box past the left edge gave an empty mask: its slice from a negative corner held nothing."""
    image = np.full((60, 80, 3), (40, 90, 40), np.uint8)
    image[15:45, 0:30] = (220, 40, 40)  # a red object at the frame's left edge
    on_frame = model.box(image, (0, 10, 40, 50))
    assert 800 < int(on_frame.sum()) < 1100  # about the object's 900 px: the check below can fail
    np.testing.assert_array_equal(model.box(image, (-5, 10, 40, 50)), on_frame)
    np.testing.assert_array_equal(model.box(image, (-5, 10, 40, 70)), model.box(image, (0, 10, 40, 59)))
    with pytest.raises(ValueError, match=r"box \(-10, 0, -3, 3\) holds no pixel of the 80×60 frame"):
        model.box(image, (-10, 0, -3, 3))


@pytest.mark.parametrize("model", [GrabCutClicks(), StarCutClicks()], ids=lambda m: m.name)
def test_a_box_the_model_finds_nothing_in_is_its_own_mask(model) -> None:
    """A small box inside an object (or on an even patch) had come back empty, and on the page's replace
    mode erased the object it was drawn on; it is the box's pixels now, and never outside them."""
    image = np.full((60, 80, 3), (40, 90, 40), np.uint8)
    image[10:50, 10:70] = (220, 40, 40)  # a large red object
    for drawn in [(30, 25, 34, 29), (30, 25, 30, 25), (-3, -3, 2, 2)]:
        found = model.box(image, drawn)
        expected = box((max(drawn[1], 0), drawn[3]), (max(drawn[0], 0), drawn[2]), (60, 80))
        np.testing.assert_array_equal(found, expected)
    assert 2300 < int(model.box(image, (5, 5, 74, 54)).sum()) < 2500  # the object's 2,400 px, as before


def test_a_box_s_grabcut_runs_shrunk_to_box_pixels_and_its_mask_comes_back_at_full_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A box over most of an 854×480 frame: GrabCut on at most `BOX_PIXELS` pixels, `BOX_ITERATIONS` times."""
    image = np.full((480, 854, 3), (40, 90, 160), np.uint8)
    cv2.ellipse(image, (427, 240), (300, 160), 0, 0, 360, (220, 190, 60), thickness=-1)
    truth = np.all(image == (220, 190, 60), axis=2)
    seen: list[tuple[tuple[int, int], int]] = []
    run = cv2.grabCut

    def spy(roi: np.ndarray, *args: object) -> object:
        seen.append((roi.shape[:2], int(args[-2])))  # type: ignore[call-overload]
        return run(roi, *args)  # type: ignore[call-overload]

    monkeypatch.setattr(grabcut.cv2, "grabCut", spy)
    found = grabcut_box(image, (117, 70, 737, 410))
    (((height, width), iterations),) = seen
    assert height * width <= BOX_PIXELS < 2 * height * width and iterations == BOX_ITERATIONS
    assert found.shape == truth.shape and jaccard(found, truth) > 0.97


# --- SAM 2 (random weights) end to end ---------------------------------------------------------------


@pytest.mark.parametrize("start", ["mask", "fit"])
def test_sam2_runs_end_to_end_through_the_clicks_type(
    sam2_clicks: SAM2Clicks, start: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames, truth = moving_square(3, late=1)
    monkeypatch.setattr(sam2_clicks, "start", start)
    sam2_clicks.to("cpu")  # forget the image embedded by an earlier test
    embedded = []
    real = sam2_clicks.predictor.set_image
    monkeypatch.setattr(sam2_clicks.predictor, "set_image", lambda image: (embedded.append(1), real(image)))
    result = annotate_clicks(frames[2], truth[1], truth[2], model=sam2_clicks)
    assert result.kind == "clicks" and result.mask.shape == (96, 128) and result.mask.dtype == np.uint8
    assert set(np.unique(result.mask)) <= {0, 1, 2} and len(embedded) == 1
    made = result.clicks
    assert set(made) == {1, 2} and all(1 <= n <= 3 for n in made.values())
    assert result.seconds == {1: 1.5 * made[1] + 1.0, 2: 1.5 * made[2]}
    assert result.total_seconds == 1.5 * (made[1] + made[2]) + 1.0
    for obj in (1, 2):  # the simulated annotator keeps the current mask when SAM's are worse
        assert jaccard(result.mask, truth[2], obj) >= jaccard(truth[1], truth[2], obj)
    given = annotate_given_clicks(frames[2], truth[1], [GivenClick(2, 104, 12, True)], model=sam2_clicks)
    assert given.mask.shape == (96, 128) and set(np.unique(given.mask)) <= {0, 1, 2}
    assert given.seconds == {2: 2.5} and len(embedded) == 1
    assert np.array_equal(given.mask == 1, (truth[1] == 1) & (given.mask != 2))  # object 1 not clicked


# --- by name -------------------------------------------------------------------------------------------


def test_click_models_by_name_and_their_refusals(tmp_path: Path) -> None:
    model = get_click_model()
    assert isinstance(model, StarCutClicks) and model.name == "starcut"
    assert set(model.settings) >= {"work_pixels", "lambda", "click_reach", "box_iterations", "box_pixels"}
    grabcut = get_click_model("grabcut")
    assert isinstance(grabcut, GrabCutClicks) and grabcut.name == "grabcut"
    assert grabcut.settings == {
        "iterations": 3,
        "given_click_reach": 3,
        "box_iterations": 3,
        "box_pixels": 40_000,
        "tight_side": 0.1,
        "tight_slack": 8,
        "tight_gap": 0.1,
        "tight_rounds": 2,
        "tight_iterations": 1,
        "tight_pixels": 20_000,
    }
    with pytest.raises(
        ConfigError, match="unknown click-to-mask model 'ritm'; choose from starcut, grabcut, sam2"
    ):
        get_click_model("ritm")
    with pytest.raises(ConfigError, match="the grabcut click-to-mask model takes no options, got device"):
        get_click_model("grabcut", device="cpu")
    with pytest.raises(
        ConfigError, match=r"sam2_checkpoint: .*needs a SAM 2 checkpoint file \(--sam2-checkpoint"
    ):
        get_click_model("sam2")
    with pytest.raises(ConfigError, match="unknown SAM 2 config 'sam2_hiera_t'"):
        get_click_model("sam2", config="sam2_hiera_t", random_weights=True)
    with pytest.raises(ConfigError, match="sam2_image_size: must be a positive multiple of 64, got 100"):
        get_click_model("sam2", image_size=100, random_weights=True)
    with pytest.raises(
        ConfigError, match="unknown start 'guess' of the SAM click model; choose from mask, fit"
    ):
        get_click_model("sam2", start="guess", random_weights=True)
    missing = tmp_path / "nothing.pt"
    with pytest.raises(DataError, match="nothing.pt: SAM 2 checkpoint file does not exist") as caught:
        get_click_model("sam2", checkpoint=missing)
    assert caught.value.path == missing
    flags = {
        "sam2_config": "sam2.1_hiera_s",
        "sam2_checkpoint": "/w/s.pt",
        "sam2_start": "fit",
        "flow_preset": "fast",
    }
    assert given_options(flags, "grabcut", GrabCutClicks.Options) == {}
    assert given_options(flags, "sam2", SAM2Clicks.Options) == {
        "config": "sam2.1_hiera_s",
        "checkpoint": "/w/s.pt",
        "start": "fit",
    }
    with pytest.raises(
        ConfigError, match="the sam2 click-to-mask model takes config, .*, start, got weights"
    ):
        get_click_model("sam2", weights="x")


def test_sam2_click_model_loads_and_records_its_checkpoint(sam2_clicks_checkpoint: Path) -> None:
    path = sam2_clicks_checkpoint
    model = get_click_model("sam2", checkpoint=str(path), image_size=64, device="cpu")
    assert isinstance(model, SAM2Clicks) and model.name == "sam2"
    assert model.settings == {
        "config": "sam2.1_hiera_t",
        "checkpoint": "tiny_random.pt",
        "checkpoint_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "image_size": 64,
        "start": "mask",
    }
    key = "sam_mask_decoder.iou_token.weight"
    stored = torch.load(path, weights_only=True)["model"][key]
    assert torch.equal(model.predictor.model.state_dict()[key], stored.float())


def test_a_sam2_checkpoint_of_another_size_is_refused(sam2_clicks_checkpoint: Path) -> None:
    with pytest.raises(
        DataError, match="is a SAM 2 model of config sam2.1_hiera_t, not sam2.1_hiera_s"
    ) as caught:
        get_click_model("sam2", config="sam2.1_hiera_s", checkpoint=sam2_clicks_checkpoint, image_size=64)
    assert caught.value.path == sam2_clicks_checkpoint


def test_grabcut_masks_do_not_depend_on_opencvs_global_random_state() -> None:
    """GrabCut's k-means start draws from OpenCV's RNG; the models seed it, so a resumed or
    multi-process loop makes the masks an uninterrupted one makes."""
    frames, truth = moving_square(3)
    current = np.roll(truth[1] == 1, 6, axis=1)
    made = []
    for seed in (0, 1, 7, 12345):
        cv2.setRNGSeed(seed)
        made.append(GrabCutClicks().simulate(frames[1], current, truth[1] == 1, clicks=3)[0])
    assert all(np.array_equal(made[0], other) for other in made[1:])


def test_a_prepared_frame_s_click_cuts_with_its_prepared_features(monkeypatch: pytest.MonkeyPatch) -> None:
    # `prepare` computes the frame's features: its click then needs none computed (the features are then
    # unavailable), while another frame's prepare does compute them. A model without features does nothing.
    image = np.full((60, 80, 3), 40, np.uint8)
    image[20:40, 30:50] = 220
    other = image + 1
    model = StarCutClicks()
    model.prepare(image)

    def unavailable(frame: np.ndarray) -> None:
        raise AssertionError("features computed again")

    monkeypatch.setattr(click_models, "image_features", unavailable)
    found = model.correct(image, np.zeros((60, 80), bool), [CorrectiveClick(40, 30, True, 400, 10.0)])
    assert found[20:40, 30:50].all() and found.sum() == 400
    with pytest.raises(AssertionError, match="features computed again"):
        model.prepare(other)
    GrabCutClicks().prepare(image)


def _until(done: Callable[[], bool]) -> None:
    """Wait for another thread to reach a state (at most 10 s), not for a time it usually takes."""
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "the other thread never got there"
        time.sleep(0.001)


class SlowSAM:
    """Stand-in image predictor that embeds in 0.2 s and answers with the embedded image's bright pixels
    (three candidates); it counts the calls under way at once."""

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self.under_way = self.most_at_once = 0
        self._count = threading.Lock()
        self.embedding_may_end = threading.Event()  # cleared: an embedding lasts until a test sets it
        self.embedding_may_end.set()

    def _call(self, work: Callable[[], Any]) -> Any:
        with self._count:
            self.under_way += 1
            self.most_at_once = max(self.most_at_once, self.under_way)
        try:
            return work()
        finally:
            with self._count:
                self.under_way -= 1

    def set_image(self, image: np.ndarray) -> None:
        self._call(
            lambda: (self.embedding_may_end.wait(10), time.sleep(0.2), self.images.append(np.array(image)))
        )

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        found = self._call(lambda: (time.sleep(0.05), self.images[-1][..., 0] > 128)[1])
        masks = np.stack([found, found, found]).astype(np.float32)
        return masks, np.array([0.9, 0.5, 0.1], np.float32), np.zeros((3, SIZE // 4, SIZE // 4), np.float32)


def test_sam_answers_one_prompt_at_a_time_and_embeds_the_last_frame_it_was_asked_to_prepare() -> None:
    # Two previews at once, on two frames: each answer is its own frame's (one embedding or prompt at a time:
    # the predictor holds one image). Frames opened while one is being embedded: the last one only is next.
    frames = [np.zeros((20, 20, 3), np.uint8) for _ in range(4)]
    for number, frame in enumerate(frames):
        frame[number : number + 5, 2:7] = 255
    predictor = SlowSAM()
    model = SAMClicks(predictor, SIZE)
    answers: dict[int, np.ndarray] = {}

    def preview(number: int) -> None:
        click = CorrectiveClick(4, number + 2, True, 25, 2.0)
        answers[number] = model.correct(frames[number], NOTHING, [click])

    threads = [threading.Thread(target=preview, args=(number,)) for number in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert predictor.most_at_once == 1
    for number in (0, 1):
        assert np.array_equal(answers[number], frames[number][..., 0] > 128)
    predictor.images.clear()
    predictor.embedding_may_end.clear()
    first = threading.Thread(target=model.prepare, args=(frames[2],))
    first.start()
    _until(lambda: predictor.under_way == 1)  # frame 2 is being embedded; frames 3 and 0 are opened meanwhile
    later = [threading.Thread(target=model.prepare, args=(frames[n],)) for n in (3, 0)]
    for asked, thread in enumerate(later, start=2):
        thread.start()
        _until(lambda: model._wanted == asked)  # noqa: B023 (each waits before the next starts)
    predictor.embedding_may_end.set()
    for thread in [first, *later]:
        thread.join()
    assert [int(np.argmax(image[:, 3, 0])) for image in predictor.images] == [2, 0]


@pytest.mark.parametrize("name", ["starcut", "grabcut"])
def test_no_click_or_a_click_off_the_frame_is_refused_by_name(name: str) -> None:
    """No click had given starcut the whole frame and grabcut a numpy reduction error; a click off the frame
    an IndexError."""
    model = click_models.get_click_model(name)
    image = np.zeros((30, 40, 3), np.uint8)
    empty = np.zeros((30, 40), bool)
    with pytest.raises(ValueError, match=r"^correct\(\) needs at least one click"):
        model.correct(image, empty, [])
    off = [CorrectiveClick(5, 5, True, 1, 1.0), CorrectiveClick(40, 3, False, 1, 1.0)]
    with pytest.raises(ValueError, match=r"^click 1 at x 40, y 3 is off the 40×30 frame$"):
        model.correct(image, empty, off)
    with pytest.raises(ValueError, match=r"^click 1 at x 40, y 3 is off the 40×30 frame$"):
        model.box(image, (2, 2, 20, 20), off)
