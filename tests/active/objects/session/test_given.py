"""`GivenAnnotation`: a person's annotation checked once where it enters, with its named limits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.active.objects.session.given import (
    MAX_CLICKS,
    MAX_NAME_LENGTH,
    MAX_OBJECTS,
    OBJECT_IDS,
    DrawnBox,
    GivenAnnotation,
    annotation_result,
    is_object_id,
    object_name,
    read_clicks,
    read_mask,
)
from frugalseg.active.objects.simulation.annotation_types import GivenClick, neighbouring_frame, video_priors
from frugalseg.active.objects.state import VideoState
from frugalseg.active.objects.tools.click_models import GrabCutClicks
from frugalseg.data.costs import AnnotationCosts
from frugalseg.errors import ConfigError, DataError

SHAPE = (6, 8)
SOURCE = Path("the submitted mask")


def _ids() -> np.ndarray:
    ids = np.zeros(SHAPE, np.uint8)
    ids[1:3, 1:4] = 1
    ids[4:6, 5:8] = 2
    ids[0, 7] = 255  # void becomes background
    return ids


def test_object_ids_are_1_to_254_and_whole_numbers():
    assert (OBJECT_IDS[0], OBJECT_IDS[-1], MAX_OBJECTS) == (1, 254, 254)
    assert [is_object_id(v) for v in (0, 1, 254, 255, 10**30, True, 1.0, "1")] == [
        False, True, True, False, False, False, False, False,
    ]  # fmt: skip


def test_a_mask_knows_its_objects_and_turns_void_into_background():
    given = GivenAnnotation(SOURCE, SHAPE, _ids(), names={2: "  car "})
    assert given.objects == [1, 2]
    assert given.ids is not None and given.ids[0, 7] == 0
    assert given.names == {2: "car"}


def test_one_object_masks_and_clicks_name_their_objects():
    one = GivenAnnotation(SOURCE, SHAPE, (_ids() == 1).astype(np.uint8), object_id=7)
    assert one.objects == [7]
    clicks = (GivenClick(3, 0, 0, True), GivenClick(1, 7, 5, False))
    assert GivenAnnotation(SOURCE, SHAPE, clicks=clicks).objects == [1, 3]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({}, ConfigError, "either a mask or clicks"),
        ({"ids": _ids(), "clicks": (GivenClick(1, 0, 0, True),)}, ConfigError, "either a mask or clicks"),
        ({"clicks": (GivenClick(1, 0, 0, True),), "object_id": 1}, ConfigError, "one-object mask"),
        ({"ids": np.zeros((5, 8), np.uint8)}, DataError, "shape (6, 8)"),
        ({"ids": np.zeros(SHAPE, np.int32)}, DataError, "uint8"),
        ({"ids": _ids(), "object_id": 1}, DataError, "several objects (1, 2)"),
        ({"ids": _ids() == 1, "object_id": 255}, DataError, "uint8"),
        ({"ids": (_ids() == 1).astype(np.uint8), "object_id": 255}, ConfigError, "object ids are 1…254"),
        ({"clicks": (GivenClick(255, 0, 0, True),)}, DataError, "object must be an id 1…254, got 255"),
        ({"clicks": (GivenClick(10**30, 0, 0, True),)}, DataError, "object must be an id 1…254"),
        ({"clicks": (GivenClick(1, 8, 0, True),)}, DataError, "click 0 at x 8, y 0 is off the 8×6 frame"),
        ({"clicks": (GivenClick(1, 0, 0, True),) * (MAX_CLICKS + 1)}, DataError, "at most 1000"),
        (
            {"clicks": (GivenClick(1, 0, 0, True),), "boxes": {1: DrawnBox(0, 0, 2, 2)}},
            DataError,
            "clicks take",
        ),
        ({"ids": _ids(), "boxes": {3: DrawnBox(0, 0, 2, 2)}}, DataError, "names object 3"),
        ({"ids": _ids(), "boxes": {1: DrawnBox(0, 0, 9, 2)}}, DataError, "off the 8×6 frame"),
        ({"ids": _ids(), "boxes": {1: DrawnBox(0, 0, 2, 2, 101)}}, DataError, "101 clicks"),
        ({"ids": _ids(), "names": {3: "car"}}, ConfigError, "object 3 is not in this annotation"),
        ({"ids": _ids(), "names": {1: "x" * 65}}, ConfigError, "1…64 characters"),
        ({"ids": _ids(), "names": {1: "   "}}, ConfigError, "1…64 characters"),
        ({"ids": _ids(), "names": {1: "car\u0000x\u000bname"}}, ConfigError, "control characters"),
        ({"ids": _ids(), "names": {1: " Background"}}, ConfigError, "back as background"),
    ],
)
def test_what_cannot_be_an_annotation_is_refused_when_made(kwargs, error, words):
    with pytest.raises(error, match=None) as caught:
        GivenAnnotation(SOURCE, SHAPE, **kwargs)
    assert words in str(caught.value)
    if error is DataError:
        assert str(SOURCE) in str(caught.value)


def test_a_name_of_64_printable_characters_is_kept_and_a_tab_is_refused():
    assert object_name(1, "é" * MAX_NAME_LENGTH) == "é" * MAX_NAME_LENGTH
    with pytest.raises(ConfigError, match="control characters"):
        object_name(1, "tab\there")


def test_a_mask_books_drawn_boxed_and_kept_objects_at_their_costs():
    """Object 1 unchanged from the current mask (kept), object 2 from a box with 2 clicks, object 3 drawn."""
    costs = AnnotationCosts()
    current = _ids()
    current[0, 7] = 0
    ids = current.copy()
    ids[0:1, 0:2] = 3
    given = GivenAnnotation(SOURCE, SHAPE, ids, boxes={2: DrawnBox(5, 4, 8, 6, clicks=2)})
    image = np.zeros((*SHAPE, 3), np.uint8)
    result, kinds = annotation_result(given, image, current, costs, GrabCutClicks())
    assert kinds == {1: "clicks", 2: "box", 3: "mask"}
    assert result.kind == "mask"
    assert result.seconds == {
        1: 0.0 + costs.clicked_frame_seconds,
        2: costs.box_seconds + 2 * costs.click_seconds,
        3: costs.vos_mask_seconds,
    }
    assert result.clicks == {2: 2}


def test_every_clicked_object_sees_the_neighbouring_frame_and_a_new_one_its_nearest_annotation():
    frames = [np.full((*SHAPE, 3), 10 * t, np.uint8) for t in range(5)]
    read: list[int] = []

    def image(t: int) -> np.ndarray:
        read.append(t)
        return frames[t]

    assert [neighbouring_frame(frames, t)[0, 0, 0] for t in (0, 1, 4)] == [10, 0, 30]
    assert neighbouring_frame(frames[:1], 0) is None
    state = VideoState(video="v", num_frames=5, objects={1: 0, 2: 3})
    state.annotated = {0: _ids(), 3: np.where(_ids() == 2, 2, 0).astype(np.uint8)}
    current = np.where(_ids() == 1, 1, 0).astype(np.uint8)  # frame 2 shows object 1, not object 2
    read.clear()
    priors = video_priors(state, 2, current, [1, 2], image, frames[1])
    assert priors[1].neighbour is frames[1] and not priors[1].examples
    assert priors[2].neighbour is frames[1]
    [(example, mask)] = priors[2].examples
    assert example is frames[3] and np.array_equal(mask, _ids() == 2)  # frame 3 is nearer than frame 0
    assert read == [3]
    assert video_priors(None, 2, current, [1, 2], image, None) == {}


def test_a_clicks_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Notepad's UTF-8 starts with a byte-order mark; the clicks are read as without it."""
    path = tmp_path / "clicks.json"
    path.write_bytes(b'\xef\xbb\xbf{"clicks": [{"object": 1, "x": 3, "y": 2, "positive": true}]}')
    assert read_clicks(path, SHAPE) == [GivenClick(1, 3, 2, True)]
    path.write_bytes(b'\xef\xbb\xbf{"clicks": [')
    with pytest.raises(DataError, match="clicks.json: not valid JSON"):
        read_clicks(path, SHAPE)


def test_a_label_stores_clicks_file_is_read_as_object_clicks(tmp_path: Path) -> None:
    """`label import` of a tool's points writes ``*_clicks.json`` (class, track): background is negative."""
    from frugalseg.autolabel.clicks import Click, write_clicks_json

    path = tmp_path / "00003_clicks.json"
    write_clicks_json(path, [Click(1, 2, 1, 1), Click(7, 5, 0, None)], SHAPE, 3.0)
    assert read_clicks(path, SHAPE) == [GivenClick(1, 1, 2, True), GivenClick(1, 7, 5, False)]
    write_clicks_json(path, [Click(1, 2, 1, 1), Click(7, 5, 0, None), Click(4, 4, 1, 2)], SHAPE, 3.0)
    with pytest.raises(
        DataError, match=r"click 1 \(negative\) names no object \(instance_id\): give --object"
    ):
        read_clicks(path, SHAPE)  # beside the clicks of objects 1 and 2
    assert read_clicks(path, SHAPE, 2) == [
        GivenClick(1, 1, 2, True), GivenClick(2, 7, 5, False), GivenClick(2, 4, 4, True)
    ]  # fmt: skip
    write_clicks_json(path, [Click(3, 3, 1, None)], SHAPE, 3.0)  # a point drawn on no track
    with pytest.raises(DataError, match=r"click 0 \(positive\) names no object"):
        read_clicks(path, SHAPE)
    assert read_clicks(path, SHAPE, 4) == [GivenClick(4, 3, 3, True)]
    write_clicks_json(path, [Click(8, 3, 1, 1)], SHAPE, 3.0)
    with pytest.raises(DataError, match="click 0 at x 8, y 3 is off the 8×6 frame"):
        read_clicks(path, SHAPE)
    path.write_text('{"clicks": [{"x": 1, "y": 2, "train_id": true}]}', encoding="utf-8")
    with pytest.raises(DataError, match="click 0: train_id must be a class number, got True"):
        read_clicks(path, SHAPE)
    path.write_text('{"clicks": [{"object": 1, "x": 1, "y": 2, "positive": true}]}', encoding="utf-8")
    with pytest.raises(ConfigError, match="clicks name their objects; --object goes with a one-object mask"):
        read_clicks(path, SHAPE, 1)


def test_a_soft_edged_or_jpeg_mask_is_refused_not_read_as_hundreds_of_objects(tmp_path: Path) -> None:
    square = np.zeros((60, 80), np.uint8)
    square[10:50, 20:60] = 255
    blurred = cv2.GaussianBlur(square, (9, 9), 3)  # a soft brush's edge: a ramp of grey levels
    assert np.unique(blurred).size > 40
    soft, lossy, hard = tmp_path / "soft.png", tmp_path / "mask.jpg", tmp_path / "hard.png"
    cv2.imwrite(str(soft), blurred)
    cv2.imwrite(str(lossy), square)
    cv2.imwrite(str(hard), np.where(blurred > 127, 255, 0).astype(np.uint8))
    frame = tmp_path / "00000.jpg"
    soft_edged = r"grey levels, some just under white: a compressed \(a JPEG saved as PNG\) or soft-edged"
    with pytest.raises(DataError, match=soft_edged) as error:
        read_mask(soft, (60, 80), frame)
    assert error.value.path == soft
    with pytest.raises(DataError, match="a JPEG mask") as error:
        read_mask(lossy, (60, 80), frame)
    assert error.value.path == lossy
    ids = read_mask(hard, (60, 80), frame)  # thresholded as the message says: one object
    assert np.unique(ids).tolist() == [0, 1] and ids.sum() == np.count_nonzero(blurred > 127)


def test_an_object_that_only_lost_pixels_to_another_objects_box_was_not_drawn():
    """A box for object 2 over object 1's edge takes 2 of its pixels: object 1 is kept, not an 80 s mask."""
    costs = AnnotationCosts()
    current = np.zeros(SHAPE, np.uint8)
    current[1:4, 1:4] = 1
    ids = current.copy()
    ids[3:6, 3:7] = 2  # object 2's box mask takes (3, 3) from object 1
    given = GivenAnnotation(SOURCE, SHAPE, ids, boxes={2: DrawnBox(3, 3, 7, 6)})
    image = np.zeros((*SHAPE, 3), np.uint8)
    result, kinds = annotation_result(given, image, current, costs, GrabCutClicks())
    assert kinds == {1: "clicks", 2: "box"}
    assert result.seconds == {1: costs.clicked_frame_seconds, 2: costs.box_seconds}
    # object 1 shrunk to background is a change the person made: drawn
    erased = ids.copy()
    erased[1, 1] = 0
    given = GivenAnnotation(SOURCE, SHAPE, erased, boxes={2: DrawnBox(3, 3, 7, 6)})
    assert annotation_result(given, image, current, costs, GrabCutClicks())[1] == {1: "mask", 2: "box"}
