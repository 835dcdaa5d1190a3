"""Large frames: a frame over `FULL_PIXELS` is cut shrunk, its answer brought back where it changed a mask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from tool_frames import davis_frame

from frugalseg.active.objects.simulation.simulated_annotator import corrective_click
from frugalseg.active.objects.tools import click_models, graph_cut, large_frames
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.active.objects.tools.graph_cut import ObjectPrior, Point
from frugalseg.active.objects.tools.large_frames import FULL_PIXELS, shrunk, shrunk_size
from frugalseg.metrics.mask_scores import region_similarity


def test_a_frame_is_shrunk_only_over_full_pixels_and_to_at_most_them() -> None:
    assert FULL_PIXELS == 2048 * 1080 and shrunk_size(1080, 2048) is None and shrunk_size(1024, 2048) is None
    assert shrunk_size(2160, 3840) == (1982, 1115) and shrunk_size(1440, 2560) == (1982, 1115)
    width, height = shrunk_size(3000, 4000) or (0, 0)
    assert width * height <= FULL_PIXELS and (width, height) == (1717, 1287)


def test_the_shrunk_cut_sees_everything_shrunk_and_its_answer_comes_back_beside_the_prior() -> None:
    # A 400×800 frame cut at 100×200 (a quarter): a click at (201, 181) is (50, 45) there, a box from
    # (100, 50) to (301, 201) holds (25, 12)–(75, 50), the neighbouring frame and the confidence are shrunk,
    # the examples not. The cut's answer adds a 10×8 block to the prior; back at full size, the prior keeps
    # its own pixels away from that block (a 1-px line the shrunk prior lost), and nothing leaves the box.
    image = np.random.default_rng(0).integers(0, 256, (400, 800, 3), np.uint8)
    example = (np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), bool))
    known = ObjectPrior(
        examples=(example,), neighbour=image.copy(), confidence=np.ones((400, 800), np.float32)
    )
    prior = np.zeros((400, 800), bool)
    prior[60:90, 110:290] = True
    prior[150, 100:302] = True  # a line one pixel tall
    seen: dict[str, Any] = {}

    def cut_small(small: np.ndarray, clicks: list[Point], **given: Any) -> np.ndarray:
        seen.update(given, image=small, clicks=clicks)
        answer: np.ndarray = given["prior"].copy()
        answer[40:48, 45:55] = True
        answer[90:100, 0:200] = True  # outside the box
        return answer

    box = (100, 50, 301, 201)
    found = shrunk(cut_small, image, [Point(201, 181, True)], known, size=(200, 100), prior=prior, box=box)
    assert seen["image"].shape == (100, 200, 3) and seen["clicks"] == [Point(50, 45, True)]
    assert seen["box"] == (25, 12, 75, 50)
    assert seen["known"].neighbour.shape == (100, 200, 3) and seen["known"].confidence.shape == (100, 200)
    assert seen["known"].examples == (example,)
    assert seen["prior"].shape == (100, 200) and not seen["prior"][37].any()  # the line is lost when shrunk
    assert found[150, 100:302].all()  # ... and kept at full size
    assert found[161:191, 181:219].all() and found[181, 201]  # bilinear: the corners round off
    assert np.array_equal(found[:155], prior[:155]) and not found[202:].any()


def test_a_positive_next_click_only_adds_to_the_answer_before_it() -> None:
    image = np.zeros((400, 800, 3), np.uint8)
    previous = np.zeros((400, 800), bool)
    previous[10:30, 10:30] = True

    def cut_small(small: np.ndarray, clicks: list[Point], **given: Any) -> np.ndarray:
        answer = np.zeros(small.shape[:2], bool)
        answer[100:120, 100:120] = True  # the cut lost the answer before it
        return answer

    clicks = [Point(5, 5, True), Point(220, 220, True)]
    found = shrunk(cut_small, image, clicks, None, size=(400, 200), previous=previous)
    assert found[10:30, 10:30].all() and found[200:240, 200:240].all() and found[5, 5]


def test_a_correction_on_a_4k_frame_is_cut_at_2k_as_well_as_at_its_own_size(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DAVIS dog's frame 10 brought to 3840×2160, its truth shifted by a 48th of the width as the prior (IoU
    # 0.676): the field's first click is cut on the frame shrunk to 1982×1115 (0.7185); cut at its own size,
    # 0.7192.
    frame, truth = davis_frame(shared_data / "davis_hard", "dog", 10)
    image = cv2.resize(frame, (3840, 2160), interpolation=cv2.INTER_CUBIC)
    big = cv2.resize(truth.astype(np.uint8), (3840, 2160), interpolation=cv2.INTER_NEAREST) > 0
    prior = np.roll(big, 80, axis=1)
    click = corrective_click(prior, big)
    assert click is not None and 0.67 < region_similarity(prior, big) < 0.68
    sizes: list[tuple[int, ...]] = []
    original = graph_cut.segment

    def spied(image: np.ndarray, clicks: Any, **given: Any) -> np.ndarray:
        sizes.append(image.shape)
        return original(image, clicks, **given)

    monkeypatch.setattr(graph_cut, "segment", spied)
    shrunk_iou = region_similarity(StarCutClicks().correct(image, prior, [click]), big)
    assert sizes and all(shape[:2] == (1115, 1982) or shape[0] * shape[1] < FULL_PIXELS for shape in sizes)
    monkeypatch.setattr(large_frames, "FULL_PIXELS", 1 << 40)
    whole_iou = region_similarity(StarCutClicks().correct(image, prior, [click]), big)
    assert 0.71 < shrunk_iou < 0.72 and abs(shrunk_iou - whole_iou) < 0.002


def test_the_click_model_computes_no_features_of_a_frame_it_cuts_shrunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    computed: list[tuple[int, ...]] = []
    original = click_models.image_features

    def counted(image: np.ndarray) -> Any:
        computed.append(image.shape)
        return original(image)

    monkeypatch.setattr(click_models, "image_features", counted)
    for shape in ((1100, 2100, 3), (480, 854, 3)):  # 2.31 and 0.41 million pixels
        image = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
        found = StarCutClicks().correct(image, np.zeros(shape[:2], bool), [Point(400, 300, True)])
        assert found.shape == shape[:2] and found[300, 400]
    assert computed == [(480, 854, 3)]
