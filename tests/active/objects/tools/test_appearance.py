"""The object's looks: which pixels look like it on other frames (a box starts from them), its texture."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tool_frames import davis_frame

from frugalseg.active.objects.simulation.annotation_types import BOX_MARGIN, padded_box
from frugalseg.active.objects.tools import grabcut, graph_cut
from frugalseg.active.objects.tools.appearance import TEXTURE_BINS, object_like, texture_bins
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.active.objects.tools.graph_cut import ObjectPrior, Point, segment
from frugalseg.metrics.mask_scores import region_similarity

RED, GREEN, GREY, BLUE = (200, 30, 30), (40, 160, 40), (128, 128, 128), (30, 30, 200)


def test_pixels_look_like_the_object_unless_its_examples_show_their_colour_as_background() -> None:
    example = np.zeros((40, 60, 3), np.uint8)
    example[:] = GREEN
    example[10:30, 20:40] = RED
    mask = np.zeros((40, 60), bool)
    mask[10:30, 20:40] = True
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :20], image[:, 20:40], image[:, 40:] = RED, GREEN, BLUE
    likely = object_like(image, [(example, mask)])
    assert likely is not None
    # red is the object's colour, green the background's; blue was never seen: the examples do not rule it out
    assert likely[:, :20].all() and not likely[:, 20:40].any() and likely[:, 40:].all()
    assert object_like(image, []) is None


def test_a_box_starts_from_what_looks_like_the_object_unless_too_little_of_the_box_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    image[:] = GREY
    image[20:40, 10:30], image[20:40, 50:70] = RED, BLUE  # two objects in one box: the person's is red
    box = (5, 15, 74, 44)
    likely = np.zeros((60, 80), bool)
    likely[20:40, 10:30] = True
    red = np.zeros((60, 80), bool)
    red[20:40, 10:30] = True
    # the box is not drawn around the red object alone: its tightness prior is off here
    monkeypatch.setattr(grabcut, "TIGHT_ROUNDS", 0)
    assert region_similarity(grabcut.grabcut_box(image, box, likely), red) == 1.0
    alone = grabcut.grabcut_box(image, box)
    assert alone[20:40, 50:70].all()  # without the object's looks, GrabCut takes both
    few = np.zeros((60, 80), bool)
    few[20:22, 10:12] = True  # 4 px of the 2,100 in the box: too few to start from
    assert np.array_equal(grabcut.grabcut_box(image, box, few), alone)


def test_a_real_swan_s_box_starts_from_its_colours_ten_frames_before(shared_data: Path) -> None:
    # DAVIS blackswan, frame 30: GrabCut's guess from the box alone holds the water and stone around the swan
    # (IoU 0.41). With the swan's mask on frame 20 as what the session knows, GrabCut starts from the pixels
    # of the swan's colours there (`object_like`), and the guess is the swan (0.89).
    image, truth = davis_frame(shared_data / "davis_dev", "blackswan", 30)
    box = padded_box(truth, BOX_MARGIN)
    assert region_similarity(StarCutClicks().box(image, box), truth) == pytest.approx(0.41, abs=0.01)
    known = ObjectPrior(examples=[davis_frame(shared_data / "davis_dev", "blackswan", 20)])
    likely = object_like(image, known.examples)
    assert likely is not None and likely[truth].mean() > 0.95
    assert region_similarity(StarCutClicks().box(image, box, known=known), truth) > 0.85


def striped_disc() -> tuple[np.ndarray, np.ndarray]:
    """A 160×160 image: a disc of stripes along the rows on stripes across them, of the same two colours."""
    rows, columns = np.mgrid[:160, :160]
    disc = (rows - 80) ** 2 + (columns - 80) ** 2 <= 40**2
    first = np.where(disc, (rows // 2) % 2 == 0, (columns // 2) % 2 == 0)
    return np.where(first[..., None], np.uint8(RED), np.uint8(BLUE)).astype(np.uint8), disc


def test_texture_bins_tell_stripes_along_the_rows_from_stripes_across_them() -> None:
    image, disc = striped_disc()
    bins = texture_bins(image).reshape(disc.shape)
    balance = bins % TEXTURE_BINS
    square = np.ones((7, 7), np.uint8)
    core, far = cv2.erode(disc.astype(np.uint8), square) > 0, cv2.dilate(disc.astype(np.uint8), square) == 0
    assert balance[core].max() < balance[far].min()  # the disc's gradients run down columns, the rest's along
    assert texture_bins(np.full((20, 30, 3), 90, np.uint8)).tolist() == [0] * 600  # no texture: one bin


def test_one_click_from_an_empty_mask_finds_a_disc_of_the_background_s_colours_by_its_texture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The disc and the background hold the same two colours in equal shares: the colours alone spill over
    # the frame (IoU 0.20); their texture keeps the disc (0.85).
    image, disc = striped_disc()
    found = segment(image, [Point(80, 80, True)])
    assert region_similarity(found, disc) > 0.8
    monkeypatch.setattr(graph_cut, "TEXTURE_WEIGHT", 0.0)
    assert region_similarity(segment(image, [Point(80, 80, True)]), disc) < 0.25


def test_a_box_s_click_finds_a_disc_of_the_background_s_colours_by_its_texture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GrabCut's guess in a box 5 px around the disc holds next to none of it (colours alone: IoU 0.012, the
    # tightness prior's seeds); the field's click at its centre then takes the disc by its texture (IoU 0.81;
    # the colours alone 0.01).
    image, disc = striped_disc()
    box, centre = (35, 35, 125, 125), [Point(80, 80, True)]
    assert region_similarity(StarCutClicks().box(image, box), disc) < 0.02
    assert region_similarity(StarCutClicks().box(image, box, centre), disc) > 0.8
    monkeypatch.setattr(graph_cut, "TEXTURE_WEIGHT", 0.0)
    assert region_similarity(StarCutClicks().box(image, box, centre), disc) < 0.05
