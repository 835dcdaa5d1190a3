"""Zoom-in: the crop a click is cut in, and small real objects cut in it at a finer working scale."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tool_frames import (
    cityscapes_instance,
    clicks_from_empty,
    field_clicks,
    interactive_dev,
    propagated_davis,
    slow_cut,
)

from frugalseg.active.objects.simulation.simulated_annotator import corrective_click
from frugalseg.active.objects.tools import zoom
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.active.objects.tools.graph_cut import ObjectPrior, Point
from frugalseg.active.objects.tools.max_flow import CutStopped
from frugalseg.active.objects.tools.zoom import zoom_window, zoomed
from frugalseg.metrics.mask_scores import region_similarity


def test_the_zoom_window_holds_the_answer_and_the_clicks_with_a_margin_while_small() -> None:
    # An answer at rows 100–119 and columns 200–249 of a 480×640 frame and a click at (260, 110): their box
    # is 61 wide and 20 tall, grown by 0.4 of each side but at least 40 px.
    answer = np.zeros((480, 640), bool)
    answer[100:120, 200:250] = True
    clicks = [Point(260, 110, True)]
    assert zoom_window(answer, clicks) == (slice(60, 160), slice(160, 301))
    assert zoom_window(answer, [Point(10, 470, False)]) is None  # 345 × 480 px: over a quarter of the frame
    edge = np.zeros((480, 640), bool)
    edge[0:10, 600:640] = True  # the crop stops at the frame's edges
    assert zoom_window(edge, [Point(620, 5, True)]) == (slice(0, 50), slice(560, 640))


def test_a_box_s_zoom_window_holds_the_box_on_the_frame() -> None:
    # A box's answer at rows 100–119, columns 200–249 in a box from (190, 90) to (700, 130), past the frame's
    # right edge at 639: the crop holds the box's part on the frame, columns 190–639 grown by 0.4 × 449 px
    # (rows 90–130 by 40 px); a box within the frame, from (190, 90) to (260, 130), grows by 40 px.
    answer = np.zeros((480, 640), bool)
    answer[100:120, 200:250] = True
    click = Point(210, 110, False)
    assert zoom_window(answer, [click], box=(190, 90, 700, 130)) == (slice(50, 171), slice(10, 640))
    assert zoom_window(answer, [click], box=(190, 90, 260, 130)) == (slice(50, 171), slice(150, 301))


def test_the_crop_is_cut_with_the_clicks_and_what_is_known_moved_into_it() -> None:
    # A crop of rows 100–159 and columns 200–299: the click at (250, 130) is (50, 30) in it, the image, the
    # neighbouring frame, the confidence, the prior and the answer before it are cut to it, and the crop's
    # answer is placed back; outside the crop the prior stands.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 3), np.uint8)
    neighbour = rng.integers(0, 256, (480, 640, 3), np.uint8)
    confidence = rng.random((480, 640)).astype(np.float32)
    prior, previous = np.zeros((480, 640), bool), np.zeros((480, 640), bool)
    prior[0:10, 0:10] = prior[120:125, 210:215] = True
    previous[140:150, 250:260] = True
    window = (slice(100, 160), slice(200, 300))
    seen: dict[str, Any] = {}

    def cut_crop(crop: np.ndarray, clicks: list[Point], **given: Any) -> np.ndarray:
        seen.update(given, crop=crop, clicks=clicks)
        answer = np.zeros(crop.shape[:2], bool)
        answer[10:20, 30:40] = True
        return answer

    known = ObjectPrior(neighbour=neighbour, confidence=confidence)
    found = zoomed(cut_crop, image, [Point(250, 130, True)], window, known, prior=prior, previous=previous)
    assert seen["clicks"] == [Point(50, 30, True)] and "box" not in seen
    assert np.array_equal(seen["crop"], image[window]) and seen["crop"].flags.c_contiguous
    assert np.array_equal(seen["known"].neighbour, neighbour[window])
    assert np.array_equal(seen["known"].confidence, confidence[window])
    assert np.array_equal(seen["prior"], prior[window]) and np.array_equal(seen["previous"], previous[window])
    expected = np.zeros((480, 640), bool)
    expected[0:10, 0:10] = expected[110:120, 230:240] = True
    assert np.array_equal(found, expected)


def test_a_box_moves_into_the_crop_with_the_clicks() -> None:
    seen: dict[str, Any] = {}

    def cut_crop(crop: np.ndarray, clicks: list[Point], **given: Any) -> np.ndarray:
        seen.update(given, clicks=clicks)
        return np.zeros(crop.shape[:2], bool)

    image = np.zeros((480, 640, 3), np.uint8)
    window = (slice(100, 160), slice(200, 300))
    zoomed(cut_crop, image, [Point(250, 130, False)], window, None, box=(210, 105, 280, 150))
    assert seen["clicks"] == [Point(50, 30, False)] and seen["box"] == (10, 5, 80, 50)


@pytest.mark.parametrize(("instance", "zoomed_iou"), [(26005, 0.55), (33000, 0.45)])
def test_a_box_s_click_on_a_small_cityscapes_object_is_cut_in_a_zoomed_crop(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, instance: int, zoomed_iou: float
) -> None:
    # A car (6,072 px) and a bicycle (830 px) of a 2048×1024 Cityscapes frame, each in its box + 5 px, and the
    # field's first click (negative, on the spill). On the whole frame the boxes are 23 × 9 and 6 × 7 working
    # pixels, and the click took the whole mask (IoU 0.50 and 0.35 → 0); in a crop around the box it gives
    # 0.58 and 0.47.
    image, truth = cityscapes_instance(shared_data, instance)
    rows, cols = np.nonzero(truth)
    box = (int(cols.min()) - 5, int(rows.min()) - 5, int(cols.max()) + 5, int(rows.max()) + 5)
    alone = StarCutClicks().box(image, box)
    click = corrective_click(alone, truth)
    assert click is not None and not click.positive
    assert region_similarity(StarCutClicks().box(image, box, [click]), truth) > zoomed_iou
    monkeypatch.setattr(zoom, "ZOOM_SHARE", 0.0)
    assert region_similarity(StarCutClicks().box(image, box, [click]), truth) < 0.05


def test_a_real_parking_meter_s_second_click_is_cut_in_a_zoomed_crop(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # interactive_dev's parking-meter00 (2.8 % of the image), the field's first two clicks from an empty mask,
    # the first cut on the whole frame alone: the second is cut in a crop around the first answer, at 2.4
    # times the working scale (IoU 0.91); on the whole frame it gave 0.63. Nothing outside the crop is object.
    monkeypatch.setattr(zoom, "FIRST_CLICK_CROPS", ())
    image, truth = interactive_dev(shared_data, "parking-meter00_000000496722")
    (click, first), (again, second) = clicks_from_empty(image, truth, 2)
    window = zoom_window(first, [click, again])
    assert window is not None
    outside = np.ones_like(truth)
    outside[window] = False
    assert not second[outside].any() and region_similarity(second, truth) > 0.88
    monkeypatch.setattr(zoom, "ZOOM_SHARE", 0.0)
    (_, unzoomed_first), (_, whole) = clicks_from_empty(image, truth, 2)
    assert np.array_equal(unzoomed_first, first) and region_similarity(whole, truth) < 0.7


def test_a_correction_on_a_small_real_scooter_is_cut_in_a_zoomed_crop(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DAVIS scooter-black's propagated frame 4 (the object 2.3 % of the frame, IoU 0.72): the field's first
    # correction is cut in a crop around the propagated mask (IoU 0.86); on the whole frame it gave 0.77.
    image, truth, propagated, known = propagated_davis(shared_data / "davis_hard", "scooter-black", 4)
    [(click, corrected)] = field_clicks(StarCutClicks(), image, propagated, truth, 1, known)
    window = zoom_window(propagated, [click])
    assert window is not None
    outside = np.ones_like(truth)
    outside[window] = False
    assert np.array_equal(corrected[outside], propagated[outside])
    assert region_similarity(corrected, truth) > 0.84
    monkeypatch.setattr(zoom, "ZOOM_SHARE", 0.0)
    [(_, whole)] = field_clicks(StarCutClicks(), image, propagated, truth, 1, known)
    assert region_similarity(whole, truth) < 0.8


def test_a_click_s_depth_share_is_its_squared_distance_to_the_edge_over_the_area() -> None:
    # A 21 × 21 square: its middle pixel lies 11 px from the nearest pixel outside it, 121 / 441; the frame's
    # border is an edge as well (the same square in the frame's corner); a click outside the mask gives 0.
    mask = np.zeros((100, 120), bool)
    mask[40:61, 50:71] = True
    assert zoom.click_depth_share(mask, Point(60, 50, True)) == pytest.approx(121 / 441)
    assert zoom.click_depth_share(mask, Point(5, 5, True)) == 0.0
    corner = np.zeros((100, 120), bool)
    corner[0:21, 0:21] = True
    assert zoom.click_depth_share(corner, Point(10, 10, True)) == pytest.approx(121 / 441)


#: The first-click tests' frame (its pixels unused: the cuts are stand-ins) and the click in its middle.
FRAME = np.zeros((480, 640, 3), np.uint8)
CLICK = Point(320, 240, True)


def flood_from_the_click() -> np.ndarray:
    """A whole-frame answer of 200 × 300 px with `CLICK` 10 px inside its edge (d² / area 0.002: shallow)."""
    flood = np.zeros((480, 640), bool)
    flood[230:430, 310:610] = True
    return flood


@pytest.mark.parametrize("threads", [1, 2])
def test_a_first_click_is_cut_in_smaller_crops_while_it_lies_near_the_edge_of_the_answer_kept(
    monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    # The whole frame's answer floods 200 × 300 px from a click 10 px inside its edge (d² / area 0.002). Each
    # crop's answer is a 31 × 31 square with the click in its row 5 (d = 6, 0.037): kept from the first crop
    # on, it is still shallow, so every crop is cut; a square with the click in its middle (d = 16, 0.27) is
    # deep enough: the crops stop there. Two cuts at once give the same answers.
    monkeypatch.setattr(zoom, "FIRST_CLICK_THREADS", threads)
    monkeypatch.setattr(zoom, "usable_cores", lambda: 2)
    image, click, flood = FRAME, CLICK, flood_from_the_click()
    crops: list[tuple[int, int]] = []

    def square_with_the_click_in_row(row: int) -> Any:
        def cut_crop(crop: np.ndarray, clicks: list[Point], **given: Any) -> np.ndarray:
            crops.append(crop.shape[:2])
            (inner,) = clicks
            answer = np.zeros(crop.shape[:2], bool)
            answer[inner.y - row : inner.y - row + 31, inner.x - 15 : inner.x + 16] = True
            return answer

        return cut_crop

    found = zoom.first_click(lambda: flood, square_with_the_click_in_row(5), image, click, None)
    # Sides 0.5, 0.25 and 0.125 of √(480 × 640) ≈ 554 px, each way from the click (the last at least 40 px).
    assert sorted(crops, reverse=True) == [(279, 279), (139, 139), (81, 81)]
    expected = np.zeros((480, 640), bool)
    expected[235:266, 305:336] = True
    assert np.array_equal(found, expected)
    crops.clear()
    found = zoom.first_click(lambda: flood, square_with_the_click_in_row(15), image, click, None)
    # with two threads the next crop may have started (it is cancelled if it had not)
    assert sorted(crops, reverse=True) in ([(279, 279)], [(279, 279), (139, 139)][:threads])
    assert np.array_equal(found, np.roll(expected, -10, axis=0))


def test_a_first_click_on_a_small_frame_cuts_a_crop_two_shares_share_once() -> None:
    """At 240 × 320 the shares 0.25 and 0.125 both come to ZOOM_PAD each way: that crop was cut twice."""
    image = np.zeros((240, 320, 3), np.uint8)
    click = Point(160, 120, True)
    flood = np.zeros((240, 320), bool)
    flood[:, :200] = True  # the whole frame's answer, the click 40 px from its edge: every crop is asked for
    crops: list[tuple[int, int]] = []

    def cut_crop(crop: np.ndarray, clicks: list[Point], **given: Any) -> np.ndarray:
        crops.append(crop.shape[:2])
        return np.zeros(crop.shape[:2], bool)

    assert np.array_equal(zoom.first_click(lambda: flood, cut_crop, image, click, None), flood)
    assert sorted(crops, reverse=True) == [(139, 139), (81, 81)]


def test_a_first_click_s_whole_frame_is_cut_beside_its_first_crop_then_the_two_smaller_crops_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The whole frame's cut and the first crop's wait at one barrier of two, the two smaller crops at another:
    # one cut at a time would break them (a timeout), two at once pass each pair together. Every crop's answer
    # is empty, so the whole frame's flood stays and all three crops are asked for.
    monkeypatch.setattr(zoom, "usable_cores", lambda: 2)
    image, click, flood = FRAME, CLICK, flood_from_the_click()
    larger, smaller = threading.Barrier(2, timeout=10), threading.Barrier(2, timeout=10)
    met: list[tuple[str, int]] = []

    def cut_whole() -> np.ndarray:
        met.append(("whole", larger.wait()))
        return flood

    def cut_crop(crop: np.ndarray, clicks: list[Point], **given: Any) -> np.ndarray:
        side = crop.shape[0]
        met.append((str(side), (larger if side > 200 else smaller).wait()))
        return np.zeros(crop.shape[:2], bool)

    assert np.array_equal(zoom.first_click(cut_whole, cut_crop, image, click, None), flood)
    assert sorted(name for name, _ in met) == ["139", "279", "81", "whole"]
    assert sorted(order for name, order in met if name in ("whole", "279")) == [0, 1]


def test_a_first_click_s_crop_still_running_gives_up_once_the_whole_frame_s_answer_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The whole frame's answer holds the click deep (a 101-px square around it), so no crop is wanted; the
    # first crop, started beside it, is a cut of about 2 s (`slow_cut`).
    # It gives up as the answer is kept: `first_click` returns the square well before that cut would end.
    monkeypatch.setattr(zoom, "usable_cores", lambda: 2)
    image, click = FRAME, CLICK
    square = np.zeros((480, 640), bool)
    square[190:291, 270:371] = True
    cuts, to_object, to_background = slow_cut(500)
    started = threading.Event()
    ended: list[str] = []

    def cut_whole() -> np.ndarray:
        assert started.wait(10)
        return square

    def cut_crop(crop: np.ndarray, clicks: list[Point], **given: Any) -> np.ndarray:
        started.set()
        try:
            cuts.source_side(to_object, to_background)
        except CutStopped:
            ended.append("stopped")
            raise
        ended.append("cut")
        return np.zeros(crop.shape[:2], bool)

    began = time.perf_counter()
    assert np.array_equal(zoom.first_click(cut_whole, cut_crop, image, click, None), square)
    assert ended == ["stopped"]
    assert time.perf_counter() - began < 1.2


def test_a_first_click_s_crop_answer_that_reaches_the_crop_s_side_is_not_kept() -> None:
    # Every crop's answer is the whole crop (its object goes on past it): the whole frame's answer stays,
    # though the click lies deeper in a crop's answer.
    image, click = FRAME, CLICK
    whole = np.zeros((480, 640), bool)
    whole[100:400, 200:460] = True

    def cut_crop(crop: np.ndarray, clicks: list[Point], **given: Any) -> np.ndarray:
        return np.ones(crop.shape[:2], bool)

    assert np.array_equal(zoom.first_click(lambda: whole, cut_crop, image, click, None), whole)


@pytest.mark.parametrize(("instance", "least_iou"), [(24000, 0.45), (26007, 0.55)])
def test_a_first_click_on_a_small_cityscapes_object_does_not_flood_the_frame(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, instance: int, least_iou: float
) -> None:
    # A pedestrian (665 px) and a car (1,293 px) of a 2048×1024 Cityscapes frame, the field's first click from
    # an empty mask: cut on the whole frame alone it took road and facade (IoU 0.00 and 0.00); a crop's answer
    # that fits it is kept (0.49 and 0.61).
    image, truth = cityscapes_instance(shared_data, instance)
    [(_, found)] = clicks_from_empty(image, truth, 1)
    assert region_similarity(found, truth) > least_iou
    monkeypatch.setattr(zoom, "FIRST_CLICK_CROPS", ())
    [(_, whole)] = clicks_from_empty(image, truth, 1)
    assert region_similarity(whole, truth) < 0.05 and whole.sum() > 20 * truth.sum()
