"""The part of a propagated mask that moves with the background around a negative click: hand-made flows."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from tool_frames import propagated_davis, textured

from frugalseg.active.objects.simulation.simulated_annotator import corrective_click
from frugalseg.active.objects.tools import dragged_parts
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.active.objects.tools.dragged_parts import dragged_part, release_dragged
from frugalseg.active.objects.tools.graph_cut import ObjectPrior, Point, segment
from frugalseg.metrics.mask_scores import region_similarity

HEIGHT, WIDTH = 120, 160
#: The object: a disc on the left; the background the propagation dragged along: a block on its right.
OBJECT = np.zeros((HEIGHT, WIDTH), bool)
cv2.circle(OBJECT.view(np.uint8), (45, 60), 38, 1, thickness=-1)
DRAGGED = np.zeros((HEIGHT, WIDTH), bool)
DRAGGED[35:86, 84:] = True  # beside the disc (x 7…83)
PRIOR = OBJECT | DRAGGED
CLICK = (122, 60)  # deep in the dragged block


def flow_field(object_motion: float, dragged_motion: float, background_motion: float) -> np.ndarray:
    """A flow (H×W×2) moving the object, the dragged block and the rest along x by the given pixels."""
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[..., 0] = np.where(OBJECT, object_motion, np.where(DRAGGED, dragged_motion, background_motion))
    return flow


def test_the_part_that_moves_with_the_background_is_exactly_the_dragged_block() -> None:
    part = dragged_part(flow_field(0.0, 8.0, 8.0), PRIOR, *CLICK)
    assert part is not None and np.array_equal(part, DRAGGED)


@pytest.mark.parametrize(
    ("motions", "why"),
    [
        ((8.0, 8.0, 8.0), "one motion: nothing to split"),
        ((0.0, 8.0, 0.0), "the block moves, the background stands still: the object moving in parts"),
        ((0.0, 3.0, 3.0), "the motions lie less than MOTION_APART apart"),
    ],
)
def test_no_part_where_the_motion_does_not_tell_one(motions: tuple[float, float, float], why: str) -> None:
    assert dragged_part(flow_field(*motions), PRIOR, *CLICK) is None, why


def test_no_part_and_no_warning_when_the_mask_fills_the_frame() -> None:
    # No background to compare the click's motion with; the click's depth in a full mask is OpenCV's float
    # maximum, whose multiple had overflowed with a RuntimeWarning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dragged_part(flow_field(0.0, 8.0, 8.0), np.ones_like(PRIOR), *CLICK) is None


def test_no_part_larger_than_the_share_of_the_mask_it_may_be() -> None:
    flow = flow_field(0.0, 8.0, 8.0)
    assert dragged_part(flow, OBJECT | DRAGGED, *CLICK) is not None
    small = np.zeros_like(OBJECT)
    cv2.circle(small.view(np.uint8), (45, 60), 20, 1, thickness=-1)
    assert DRAGGED.sum() / (small | DRAGGED).sum() > dragged_parts.DRAGGED_SHARE
    assert dragged_part(flow, small | DRAGGED, *CLICK) is None


def test_release_leaves_the_prior_silent_on_the_part_only_and_only_for_negative_clicks() -> None:
    prior, flow = PRIOR.astype(np.float32), flow_field(0.0, 8.0, 8.0)
    confidence = np.full(PRIOR.shape, 0.8, np.float32)
    released, trust = release_dragged(flow, prior, confidence, [Point(*CLICK, False)])
    assert trust is not None
    assert np.all(released[DRAGGED] == 0.5) and np.all(trust[DRAGGED] == 0.0)
    assert np.array_equal(released[~DRAGGED], prior[~DRAGGED]) and np.all(trust[~DRAGGED] == 0.8)
    for clicks in ([Point(*CLICK, True)], [Point(20, 20, False)]):  # positive; outside the prior
        same, sure = release_dragged(flow, prior, None, clicks)
        assert same is prior and sure is None


def test_a_negative_click_in_dragged_background_removes_it_up_to_the_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The camera pans 8 px a frame after a still object of the background's colours; the prior holds both."""
    background, texture = textured(0, (HEIGHT, WIDTH)), textured(1, (HEIGHT, WIDTH))
    image = np.where(OBJECT[..., None], texture, background)
    neighbour = np.where(OBJECT[..., None], texture, np.roll(background, 8, axis=1))
    known, click = ObjectPrior(neighbour=neighbour), [Point(*CLICK, False)]
    found = segment(image, click, prior=PRIOR, known=known)
    assert region_similarity(found, OBJECT) > 0.9 and (found & DRAGGED).sum() < 0.1 * DRAGGED.sum()
    monkeypatch.setattr(dragged_parts, "MOTION_APART", np.inf)
    held = segment(image, click, prior=PRIOR, known=known)
    assert (held & DRAGGED).sum() > 0.5 * DRAGGED.sum()


def test_a_real_negative_click_in_road_dragged_along_by_a_panning_camera_removes_it(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DAVIS scooter-black, frame 28 flow-propagated from frame 0's truth (IoU 0.57): the camera pans after the
    # scooter, and the mask has dragged 23,000 px of road and wall along behind it. The field's first click is
    # negative, 49 px deep in that spill; the prior held it (IoU 0.57). Released, the cut takes it away up to
    # the scooter (IoU 0.75).
    frame, truth, prior, known = propagated_davis(shared_data / "davis_hard", "scooter-black", 28)
    assert 0.56 < region_similarity(prior, truth) < 0.58
    click = corrective_click(prior, truth)
    assert click is not None and not click.positive and click.depth > 45
    found = StarCutClicks().correct(frame, prior, [click], known=known)
    assert region_similarity(found, truth) > 0.73 and (prior & ~found).sum() > 15_000
    assert not (found & ~prior).any()
    monkeypatch.setattr(dragged_parts, "MOTION_APART", np.inf)
    held = StarCutClicks().correct(frame, prior, [click], known=known)
    assert region_similarity(held, truth) < 0.6
