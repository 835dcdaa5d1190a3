"""A session's clicks as a store's ``clicks`` label: each click is what the person said, not the final mask.

Frame 1 of a two-frame state is clicked twice: first object 1 at (1, 1), then object 1 at (3, 1),
object 2 at (0, 3) and a negative click of object 1 at (4, 2). The frame's final mask no longer holds
object 1 at (1, 1) nor object 2 at (0, 3), and holds object 2 at (4, 2). Before, each click took the
final mask's class there: the first click of object 1 was recorded as background (``train_id`` 0 with
``instance_id`` 1), and `label export` → `label import` did not give the label back.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import write_moving_squares

from frugalseg.active.objects.labels import video_labels, write_video_labels
from frugalseg.active.objects.state import Annotation, VideoState
from frugalseg.autolabel.store import LabelStore, side_json_path
from frugalseg.cli import main
from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.formats import get_format

N = 255


def _state(shape: tuple[int, int]) -> VideoState:
    """Frame 0 drawn (objects 1 and 2), frame 1 clicked twice (see the module docstring)."""
    drawn = np.zeros(shape, np.uint8)
    drawn[1, 1:4] = 1
    drawn[3, 0] = 2
    final = np.zeros(shape, np.uint8)
    final[1, 3] = 1  # object 1 shrank: no longer at (1, 1)
    final[2, 4] = 2  # object 2 moved: under the negative click, no longer at (0, 3)
    state = VideoState(video="v", num_frames=2, objects={1: 0, 2: 0})
    state.annotations = [
        Annotation(0, 1, "mask", 80.0, 0, 0),
        Annotation(0, 2, "mask", 80.0, 0, 0),
        Annotation(1, 1, "clicks", 2.5, 1, 1, points=((1, 1, True),)),
        Annotation(1, 1, "clicks", 4.0, 2, 2, points=((3, 1, True), (4, 2, False))),
        Annotation(1, 2, "clicks", 1.5, 1, 2, points=((0, 3, True),)),
    ]
    state.annotated = {0: drawn, 1: final}
    state.masks = [drawn, final]
    return state


def test_each_click_keeps_its_own_class_and_object() -> None:
    state = _state((4, 5))
    clip = Clip(clip_id="v", split="all", frames=[Path("0.jpg"), Path("1.jpg")], anchor_index=0)
    labels = list(video_labels(clip, range(2), state, object_ids=True))
    assert [(x.offset, x.kind.value, x.source_offset, x.seconds) for x in labels] == [
        (0, "fine", 0, 160.0),
        (1, "clicks", 1, 8.0),
        (1, "pseudo", 1, 0.0),
    ]
    clicks = labels[1]
    assert clicks.side is not None and clicks.instances is not None
    assert [(c["x"], c["y"], c["train_id"], c["instance_id"]) for c in clicks.side["clicks"]] == [
        (1, 1, 1, 1),
        (3, 1, 1, 1),
        (4, 2, 0, None),
        (0, 3, 1, 2),
    ]
    np.testing.assert_array_equal(
        clicks.label,
        [[N, N, N, N, N], [N, 1, N, 1, N], [N, N, N, N, 0], [1, N, N, N, N]],
    )
    np.testing.assert_array_equal(
        clicks.instances,
        [[0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [2, 0, 0, 0, 0]],
    )


@pytest.mark.usefixtures("one_cv_thread")
def test_label_export_and_import_give_the_clicks_back_bit_for_bit(tmp_path: Path) -> None:
    root = write_moving_squares(tmp_path / "davis")
    clip = next(c for c in get_format("davis", root).clips("train") if c.clip_id == "squares-a")
    shape = cv2.imread(str(clip.frame_path(0))).shape[:2]
    store = tmp_path / "store"
    config = {"engine": "annotation-session", "settings": {}, "split": "train", "format": "davis"}
    written = write_video_labels(
        store, clip, range(2), _state(shape), {**config, "root": str(root)}, object_ids=True
    )
    assert written == 3
    coco = tmp_path / "labels.coco.json"
    assert main(["label", "export", "--store", str(store), "--tool", "coco", "--out", str(coco)]) == 0
    back = tmp_path / "back"
    imported = ["label", "import", str(coco), "--tool", "coco", "--format", "davis", "--root", str(root)]
    assert main([*imported, "--split", "train", "--out", str(back)]) == 0
    (record,) = (r for r in LabelStore(store).records() if r["kind"] == LabelKind.CLICKS.value)
    (again,) = (r for r in LabelStore(back).records() if r["kind"] == LabelKind.CLICKS.value)
    for name in ("_labelTrainIds", "_instanceIds"):
        made = cv2.imread(str(store / record["path"].replace("_labelTrainIds", name)), cv2.IMREAD_UNCHANGED)
        read = cv2.imread(str(back / again["path"].replace("_labelTrainIds", name)), cv2.IMREAD_UNCHANGED)
        assert made is not None and made[1, 1] == 1, name  # the first click: object 1, not background
        np.testing.assert_array_equal(read, made, err_msg=name)
    sides = [
        json.loads(side_json_path(s / r["path"], "clicks").read_text())
        for s, r in ((store, record), (back, again))
    ]
    assert sides[1]["clicks"] == sides[0]["clicks"]
    assert (sides[0]["clicks"][0]["train_id"], sides[0]["clicks"][0]["instance_id"]) == (1, 1)


def test_a_frame_with_one_object_drawn_and_another_propagated_is_pseudo_not_fine() -> None:
    """Object 1 drawn alone on frame 1 (`--mask … --object 1`); object 2 there is propagated."""
    state = _state((4, 5))
    clip = Clip(clip_id="v", split="all", frames=[Path("0.jpg"), Path("1.jpg")], anchor_index=0)
    state.annotations[2:] = [Annotation(1, 1, "mask", 80.0, 0, 1)]
    assert [(x.offset, x.kind.value) for x in video_labels(clip, range(2), state)] == [
        (0, "fine"),
        (1, "pseudo"),
    ]
    # drawn with both objects: fine
    state.annotations.append(Annotation(1, 2, "mask", 80.0, 0, 1))
    assert [(x.offset, x.kind.value) for x in video_labels(clip, range(2), state)] == [
        (0, "fine"),
        (1, "fine"),
    ]


def test_a_mask_drawn_later_takes_back_its_objects_earlier_clicks() -> None:
    """The page's walkthrough: a positive click of object 2 on the dog, then frame 1 drawn again (both
    objects) where that pixel is background; the click had stayed in the store's clicks label and the tool
    files, telling a student the opposite of the frame's fine label."""
    state = _state((4, 5))
    final = state.masks[1]
    state.annotations += [Annotation(1, 1, "mask", 80.0, 0, 3), Annotation(1, 2, "mask", 80.0, 0, 3)]
    clip = Clip(clip_id="v", split="all", frames=[Path("0.jpg"), Path("1.jpg")], anchor_index=0)
    labels = list(video_labels(clip, range(2), state, object_ids=True))
    assert [(x.offset, x.kind.value, x.seconds) for x in labels] == [(0, "fine", 160.0), (1, "fine", 168.0)]
    # a mask of object 1 alone takes back object 1's clicks, not object 2's
    state.annotations = state.annotations[:-1]
    labels = list(video_labels(clip, range(2), state, object_ids=True))
    clicks = next(x for x in labels if x.kind is LabelKind.CLICKS)
    assert clicks.side is not None and final[3, 0] == 0
    assert [(c["x"], c["y"], c["instance_id"]) for c in clicks.side["clicks"]] == [(0, 3, 2)]
