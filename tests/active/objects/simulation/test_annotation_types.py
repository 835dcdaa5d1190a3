"""The ``box`` annotation type: a box drag, GrabCut from it, corrective clicks, priced by the cost model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from frugalseg.active.objects.choosing.type_policies import POLICIES, get_policy, type_seconds
from frugalseg.active.objects.simulation.annotation_types import (
    ANNOTATION_TYPES,
    BOX_MARGIN,
    GivenClick,
    annotate_box,
    annotate_clicks,
    annotate_frame,
    annotate_given_clicks,
    annotation_priors,
    neighbouring_frame,
    padded_box,
)
from frugalseg.active.objects.state import VideoState
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.metrics.mask_scores import region_similarity

SIZE = (80, 120)


def two_squares() -> tuple[np.ndarray, np.ndarray]:
    """A grey frame with a red square (object 1) and a blue one (object 2), flat colours: truth known."""
    image = np.full((*SIZE, 3), 128, np.uint8)
    truth = np.zeros(SIZE, np.uint8)
    image[20:40, 15:45] = (220, 30, 30)
    truth[20:40, 15:45] = 1
    image[45:70, 70:100] = (30, 30, 220)
    truth[45:70, 70:100] = 2
    return image, truth


def test_a_padded_box_holds_the_object_with_its_margin_and_stays_in_the_frame() -> None:
    _, truth = two_squares()
    assert padded_box(truth == 1) == (15 - BOX_MARGIN, 20 - BOX_MARGIN, 44 + BOX_MARGIN, 39 + BOX_MARGIN)
    corner = np.zeros(SIZE, bool)
    corner[0:3, 117:120] = True
    assert padded_box(corner) == (117 - BOX_MARGIN, 0, 119, 2 + BOX_MARGIN)


def test_a_box_around_each_flat_object_gives_its_mask_exactly_for_a_box_each_and_no_click() -> None:
    """GrabCut from the box separates a flat square from a flat background exactly, so the annotator
    makes no corrective click: 7 s per box, the frame's 1 s once, on the first object."""
    image, truth = two_squares()
    result = annotate_box(image, truth)
    np.testing.assert_array_equal(result.mask, truth)
    assert result.kind == "box"
    assert result.clicks == {1: 0, 2: 0}
    assert result.seconds == {1: 7.0 + 1.0, 2: 7.0}
    assert result.total_seconds == 15.0


def test_the_box_replaces_the_frame_and_clears_an_object_it_no_longer_shows() -> None:
    """Object 2 left the frame (only object 1 in the truth) but the propagation still has it there."""
    image, truth = two_squares()
    truth[truth == 2] = 0
    current = np.zeros(SIZE, np.uint8)
    current[45:70, 70:100] = 2
    result = annotate_frame("box", image, current, truth)
    np.testing.assert_array_equal(result.mask, truth)
    assert set(result.seconds) == {1}


def test_a_frame_without_objects_costs_a_look() -> None:
    image, _ = two_squares()
    result = annotate_box(image, np.zeros(SIZE, np.uint8))
    assert not result.mask.any() and result.seconds == {0: DEFAULT_COSTS.clicked_frame_seconds}


def test_corrective_clicks_are_charged_and_the_best_mask_is_kept() -> None:
    """A square whose lower part has the background's colour: the box alone misses it, clicks are made
    (each 1.5 s), and the mask kept is never worse than the box's."""
    image, truth = two_squares()
    image[32:40, 15:45] = 128  # the lower part of object 1 looks like the background
    truth[truth == 2] = 0
    costs = AnnotationCosts()
    result = annotate_box(image, truth, costs)
    only_box = annotate_box(image, truth, costs, clicks_per_object=0)
    made = result.clicks[1]
    assert 1 <= made <= 3
    assert result.seconds == {1: costs.box_seconds + costs.click_seconds * made + costs.clicked_frame_seconds}
    kept, box_alone = (region_similarity(r.mask == 1, truth == 1) for r in (result, only_box))
    assert kept >= box_alone


def test_the_box_is_a_type_of_every_policy_and_priced_by_the_cost_model() -> None:
    assert ANNOTATION_TYPES == ("mask", "clicks", "box")
    assert type_seconds(2) == {"mask": 160.0, "clicks": 2 * 3 * 1.5 + 1.0, "box": 2 * 7.0 + 2 * 3 * 1.5 + 1.0}
    assert type_seconds(0) == {"mask": 1.0, "clicks": 1.0, "box": 1.0}
    assert "box" in POLICIES and get_policy("box").choose(None) == "box"  # type: ignore[arg-type]
    image, truth = two_squares()
    with pytest.raises(ValueError, match="unknown annotation type 'scribble'"):
        annotate_frame("scribble", image, truth, truth)


class _RecordingBox(StarCutClicks):
    """The default click model, recording what each box call was told of the object."""

    def __init__(self) -> None:
        super().__init__()
        self.known: list[ObjectPrior | None] = []

    def box(self, image, box, clicks=(), *, known=None):  # type: ignore[no-untyped-def]
        self.known.append(known)
        return super().box(image, box, clicks, known=known)


def test_the_simulated_annotator_sees_the_neighbouring_frame_as_a_session_gives_it() -> None:
    """An object of the background's own texture moves 6 px right: only its motion tells it apart."""
    rng = np.random.default_rng(0)
    fields = [cv2.GaussianBlur(rng.uniform(0, 255, (*SIZE, 3)).astype(np.float32), (0, 0), 1.2) for _ in "ab"]
    background, texture = (np.clip((f - 127.5) * 2 + 127.5, 0, 255).astype(np.uint8) for f in fields)
    truth, moved = np.zeros(SIZE, np.uint8), np.zeros(SIZE, np.uint8)
    cv2.circle(truth, (60, 40), 20, 1, thickness=-1)
    cv2.circle(moved, (66, 40), 20, 1, thickness=-1)
    image = np.where(truth[..., None] == 1, texture, background)
    frames = [image, np.where(moved[..., None] == 1, np.roll(texture, 6, axis=1), background)]
    neighbour = neighbouring_frame(frames, 0)
    assert neighbour is frames[1] and neighbouring_frame(frames, 1) is frames[0]
    assert neighbouring_frame(frames[:1], 0) is None
    empty = np.zeros(SIZE, np.uint8)
    seen, alone = (
        annotate_clicks(image, empty, truth, clicks_per_object=1, known=known).mask == 1
        for known in ({1: ObjectPrior(neighbour=neighbour)}, None)
    )
    assert region_similarity(seen, truth == 1) > 0.95 and region_similarity(alone, truth == 1) < 0.2
    recording = _RecordingBox()
    known = annotation_priors("box", None, 0, frames, empty, truth)
    annotate_frame("box", image, empty, truth, model=recording, known=known)
    assert recording.known and all(
        known is not None and known.neighbour is neighbour for known in recording.known
    )


def test_the_simulated_box_brings_every_object_s_nearest_annotation_and_clicks_only_an_unshown_one_s() -> (
    None
):
    """What the loop's annotator tells the model is what a session tells it: the page's box draws every
    object from nothing, `annotate add --clicks` corrects the masks the frame shows."""
    image, truth = two_squares()
    frames = [np.full_like(image, 10 * t) for t in range(4)]
    state = VideoState(video="v", num_frames=4, objects={1: 0, 2: 0})
    state.annotated = {0: truth, 3: np.where(truth == 1, 1, 0).astype(np.uint8)}
    current = np.where(truth == 1, 1, 0).astype(np.uint8)  # frame 2 shows object 1, not object 2
    boxed = annotation_priors("box", state, 2, frames, current, truth)
    clicked = annotation_priors("clicks", state, 2, frames, current, truth)
    assert annotation_priors("mask", state, 2, frames, current, truth) == {}
    assert sorted(boxed) == sorted(clicked) == [1, 2]
    assert all(prior.neighbour is frames[1] for prior in (*boxed.values(), *clicked.values()))
    [(example, mask)] = boxed[1].examples
    assert example is frames[3] and np.array_equal(mask, truth == 1)  # frame 3 is nearer than frame 0
    [(example, mask)] = boxed[2].examples
    assert example is frames[0] and np.array_equal(mask, truth == 2)  # frame 3 does not show object 2
    [(example, mask)] = clicked[2].examples
    assert not clicked[1].examples and example is frames[0] and np.array_equal(mask, truth == 2)
    recording = _RecordingBox()
    annotate_frame("box", image, current, truth, model=recording, known=boxed)
    assert [id(known) for known in recording.known] == [id(boxed[1]), id(boxed[2])]


def test_a_later_click_of_another_object_takes_back_what_an_earlier_click_took() -> None:
    """Clicks are laid in the order made: a wrong-object click is undone by clicking the right object."""
    image, truth = two_squares()
    red = truth == 1
    wrong = GivenClick(2, 30, 30, True)  # object 2 chosen by mistake, clicked on the red square
    right = GivenClick(1, 30, 30, True)  # then object 1 chosen and clicked on the same pixel
    taken = annotate_given_clicks(image, truth, [wrong]).mask
    assert taken[30, 30] == 2 and np.array_equal(taken == 2, red | (truth == 2))
    back = annotate_given_clicks(image, truth, [wrong, right]).mask
    assert np.array_equal(back, truth)
    again = annotate_given_clicks(image, truth, [right, wrong]).mask
    assert np.array_equal(again, taken)
