"""How far an answer of the cut may move from the mask it changes: known answers on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.active.objects.tools import change_bounds
from frugalseg.active.objects.tools.change_bounds import (
    answer_before,
    bounded_change,
    one_way,
    parts_unlike_their_clicks,
    strays,
    the_clicks_part,
)
from frugalseg.active.objects.tools.graph_cut import Point


@pytest.mark.parametrize(
    ("positive", "added", "lost", "expected"),
    [
        (True, 50, 0, False),
        (True, 51, 0, True),
        (True, 0, 31, True),
        (False, 30, 0, False),
        (False, 31, 0, True),
    ],
)
def test_an_answer_strays_when_it_grows_or_loses_more_than_its_click_explains(
    positive: bool, added: int, lost: int, expected: bool
) -> None:
    before = np.zeros(400, bool)
    before[:100] = True
    found = before.copy()
    found[100 : 100 + added] = True
    found[:lost] = False
    assert strays(found, before, positive=positive) is expected


def test_a_change_larger_than_its_clicks_depth_explains_keeps_to_a_band_along_the_prior(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The prior: a square, columns and rows 30–69. A positive click 3 px right of it has depth 3: the part of
    # the change it is in may hold 50 · 9 = 450 pixels; beyond, it keeps within 1 · 3 px of the boundary.
    monkeypatch.setattr(change_bounds, "BAND_PER_DEPTH", 1.0)
    prior = np.zeros((120, 160), bool)
    prior[30:70, 30:70] = True
    click = Point(72, 50, True)
    region = np.ones_like(prior)
    small = prior.copy()
    small[45:56, 70:73] = True  # 33 pixels beside the prior
    assert np.array_equal(bounded_change(region, small, prior, [click], per_depth=50.0), region)
    blob = prior.copy()
    blob[:, 70:] = True  # 10,800 pixels, one part with the click
    blob[:10, :20] = True  # a part without a click: left as it is
    kept = bounded_change(region, blob, prior, [click], per_depth=50.0)
    assert kept[50, 70:73].all() and not kept[50, 73:].any() and not kept[:, 110:].any()
    assert kept[:10, :20].all() and kept[prior].all()
    deep = Point(150, 50, True)  # 81 px from the prior: 50 · (9 + 6,561) pixels may change
    assert np.array_equal(bounded_change(region, blob, prior, [click, deep], per_depth=50.0), region)
    assert np.array_equal(
        bounded_change(region, blob, prior, [Point(50, 50, True)], per_depth=50.0), region
    )  # not in it


def test_a_box_s_click_near_the_boundary_changes_the_band_beside_it_not_all_around() -> None:
    # The prior: a square, columns and rows 30–69; the answer empties it. A negative click 3 px inside its top
    # edge has depth 3: 450 pixels may change, so the band 3 px deep along the boundary is the most. Within
    # 3 · 3 px of the click only, the band stops beside the click.
    prior = np.zeros((100, 100), bool)
    prior[30:70, 30:70] = True
    click = Point(50, 32, False)
    region, empty = np.ones_like(prior), np.zeros_like(prior)
    band = bounded_change(region, empty, prior, [click], per_depth=50.0)
    assert band[30:33, 50].all() and not band[33:67, 50].any() and band[50, 30:33].all()
    near = bounded_change(region, empty, prior, [click], per_depth=50.0, near_per_depth=3.0)
    assert near[30:33, 50].all() and near[30, 42:59].all() and not near[30, 40].any()
    rows, columns = np.nonzero(near & prior)
    assert np.hypot(rows - 32, columns - 50).max() <= 9.0 and not near[50, 30:33].any()
    assert near[~prior].all()  # outside the part the change may land anywhere


def test_a_part_is_dropped_when_its_positive_clicks_colours_are_not_among_its_own() -> None:
    # A 21×21 grey block with a white 1-px line down its middle, all new: a positive click on the line is not
    # in the grey region the cut took (the line is 1 of 21 columns), so the part goes, even beside a click on
    # the grey; one on the grey alone keeps it; a negative click is no reason to drop a part.
    image = np.full((40, 40, 3), 120, np.uint8)
    image[:, 20] = 255
    found = np.zeros((40, 40), bool)
    found[0:21, 10:31] = True
    empty, everywhere = np.zeros_like(found), np.ones_like(found)
    on_line, on_grey = Point(20, 5, True), Point(12, 5, True)
    assert not parts_unlike_their_clicks(image, everywhere, found, empty, [on_line])[found].any()
    assert parts_unlike_their_clicks(image, everywhere, found, empty, [on_grey]).all()
    assert not parts_unlike_their_clicks(image, everywhere, found, empty, [on_grey, on_line])[found].any()
    assert parts_unlike_their_clicks(image, everywhere, found, empty, [Point(20, 5, False)]).all()
    image[5, 12] = (
        124  # 4 units off a part of one flat grey: as JPEG's noise puts it, still the part's colour
    )
    assert parts_unlike_their_clicks(image, everywhere, found, empty, [on_grey]).all()
    elsewhere = found.copy()
    elsewhere[30:35, 0:5] = True  # a second part, without a click: left as it is
    kept = parts_unlike_their_clicks(image, everywhere, elsewhere, empty, [on_line])
    assert kept[30:35, 0:5].all() and not kept[found].any()


def test_a_next_click_changes_its_own_part_and_elsewhere_only_parts_its_depth_explains() -> None:
    # The answer before: a square, columns and rows 30–69. A positive click 3 px right of it has depth 3, so a
    # part of the change away from it may hold 20 · 9 = 180 pixels: its own strip stays whatever its size, a
    # 150-px part elsewhere stays, a 400-px part (the grass under the feet) goes.
    before = np.zeros((120, 160), bool)
    before[30:70, 30:70] = True
    found = before.copy()
    found[20:80, 70:100] = True  # 1,800 pixels at the click
    found[100:110, 0:15] = True  # 150 pixels away from it
    found[100:120, 130:150] = True  # 400 pixels away from it
    kept = the_clicks_part(found, before, Point(72, 50, True), per_depth=20.0)
    assert kept[20:80, 70:100].all() and kept[100:110, 0:15].all() and not kept[100:120, 130:150].any()
    assert kept[~(found ^ before)].all()  # where nothing changed, nothing to keep out
    # A negative click 5 px inside the bottom edge (depth 5: 500 pixels) removes its own part; a 400-px part
    # removed elsewhere stays removed, a 600-px one is kept out.
    found = before.copy()
    found[60:70, 30:70] = False  # the click's part
    found[30:40, 30:70] = False  # 400 pixels along the top edge, away from the click
    assert the_clicks_part(found, before, Point(50, 65, False), per_depth=20.0).all()
    found[30:45, 30:70] = False  # 600 pixels
    kept = the_clicks_part(found, before, Point(50, 65, False), per_depth=20.0)
    assert kept[60:70, 30:70].all() and not kept[30:45, 30:70].any()


def test_the_last_click_changes_the_answer_before_it_with_a_box_or_from_an_empty_mask() -> None:
    before, prior = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    before[1, 1] = prior[2, 2] = True
    one, two = [Point(1, 1, True)], [Point(1, 1, True), Point(3, 3, False)]
    assert np.array_equal(answer_before(None, before, box=None, clicks=two), before)  # a next click
    assert answer_before(None, before, box=None, clicks=one) is None  # the first click has nothing before it
    assert answer_before(prior, before, box=None, clicks=two) is None  # a correction changes its prior
    assert np.array_equal(answer_before(prior, before, box=(0, 0, 3, 3), clicks=one), before)  # a box's click
    assert answer_before(None, np.zeros((4, 4), bool), box=(0, 0, 3, 3), clicks=two) is None


def test_a_positive_click_only_adds_and_a_negative_one_only_removes() -> None:
    found, before = np.array([True, True, False, False]), np.array([True, False, True, False])
    assert one_way(found, before, positive=True).tolist() == [True, True, True, False]
    assert one_way(found, before, positive=False).tolist() == [True, False, False, False]
