"""Boxes → masks with a SAM box prompt (stand-in predictors) and the simulated filtering of bad masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from frugalseg.autolabel.boxes import (
    Box,
    box_of,
    box_split,
    boxes_json_path,
    boxes_to_label,
    iou,
    masks_from_boxes,
    read_boxes_json,
)
from frugalseg.autolabel.objects import split_objects
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import run_tool
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import get_format
from frugalseg.data.formats.cityscapes import instance_ids_path, read_instance_ids
from frugalseg.data.io import read_label
from frugalseg.errors import DataError

PERSON, CAR = 11, 13


class FixedMaskSAM:
    """Stand-in predictor that answers every box prompt with the same mask; records the prompts."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask
        self.prompts: list[dict] = []

    def set_image(self, image: np.ndarray) -> None:
        self.prompts.append({"image": image.shape})

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        self.prompts.append({"box": box, "points": point_coords, "multi": multimask_output})
        return self.mask[None].astype(np.float32), np.array([0.7]), np.zeros((1, 256, 256), np.float32)


class BoxFillSAM:
    """A crude Box2Seg: the mask is the whole box."""

    def set_image(self, image: np.ndarray) -> None:
        self.shape = image.shape[:2]

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        mask = np.zeros(self.shape, np.float32)
        x0, y0, x1, y1 = (int(v) for v in box)
        mask[y0:y1, x0:x1] = 1
        return mask[None], np.array([0.7]), np.zeros((1, 256, 256), np.float32)


def test_box_of_uses_pixel_edges() -> None:
    mask = np.zeros((6, 10), bool)
    mask[2:5, 3:8] = True
    mask[3, 3] = False
    assert box_of(mask, CAR, 26001) == Box(3, 2, 8, 5, CAR, 26001)
    assert box_of(mask, CAR).as_xyxy().tolist() == [3.0, 2.0, 8.0, 5.0]
    with pytest.raises(ValueError, match="empty"):
        box_of(np.zeros((3, 3), bool), CAR)


def test_masks_are_prompted_by_box_and_clipped_to_it() -> None:
    blob = np.zeros((8, 10), bool)
    blob[1:7, 1:9] = True
    sam = FixedMaskSAM(blob)
    (mask,) = masks_from_boxes(np.zeros((8, 10, 3), np.uint8), [Box(2, 3, 5, 8, CAR)], sam)
    expected = np.zeros((8, 10), bool)
    expected[3:7, 2:5] = True
    assert np.array_equal(mask, expected)
    assert sam.prompts[1]["box"].tolist() == [2, 3, 5, 8] and sam.prompts[1]["points"] is None
    assert sam.prompts[1]["multi"] is False
    with pytest.raises(ValueError, match=r"box \(2, 3, 11, 8\) is empty or leaves the 10×8 image"):
        masks_from_boxes(np.zeros((8, 10, 3), np.uint8), [Box(2, 3, 11, 8, CAR)], sam)


def test_iou_is_exact() -> None:
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[0:2, 0:4], b[1:3, 0:4] = True, True
    assert iou(a, b) == 4 / 12 and iou(a, a) == 1.0 and iou(b & False, a & False) == 1.0


def test_bad_masks_become_ignore_over_their_box() -> None:
    car_truth, person_truth = np.zeros((6, 8), bool), np.zeros((6, 8), bool)
    car_truth[1:5, 0:6] = True
    person_truth[0:6, 5:7] = True
    car_mask = car_truth.copy()  # IoU 1.0
    person_mask = np.zeros((6, 8), bool)
    person_mask[0:2, 5:7] = True  # IoU 4/12
    boxes = [box_of(car_truth, CAR), box_of(person_truth, PERSON)]
    label, results = boxes_to_label((6, 8), boxes, [car_mask, person_mask])
    assert [r.iou for r in results] == [None, None] and label[0, 5] == PERSON and label[1, 0] == CAR
    truths = [car_truth, person_truth]
    label, results = boxes_to_label((6, 8), boxes, [car_mask, person_mask], truths=truths, min_iou=0.5)
    assert [(r.iou, r.filtered) for r in results] == [(1.0, False), (4 / 12, True)]
    c, i = CAR, IGNORE_INDEX
    assert label.tolist() == [
        [i, i, i, i, i, i, i, i],
        [c, c, c, c, c, i, i, i],  # the ignored person box also hides the car pixels in it
        [c, c, c, c, c, i, i, i],
        [c, c, c, c, c, i, i, i],
        [c, c, c, c, c, i, i, i],
        [i, i, i, i, i, i, i, i],
    ]
    kept, _ = boxes_to_label((6, 8), boxes, [car_mask, person_mask], truths=truths, min_iou=0.3)
    assert kept[0, 5] == PERSON and kept[1, 5] == PERSON  # the smaller mask is painted last


def test_given_boxes_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "boxes.json"
    path.write_text(
        json.dumps({"boxes": [{"x0": 1, "y0": 2, "x1": 4, "y1": 6, "train_id": 13}]}), encoding="utf-8"
    )
    assert read_boxes_json(path, (8, 10)) == [Box(1, 2, 4, 6, CAR)]
    with pytest.raises(
        DataError, match=r"boxes\.json: box 1: box \(1, 2, 4, 6\) is empty or leaves the 10×5"
    ):
        read_boxes_json(path, (5, 10))
    path.write_text(json.dumps({"boxes": [{"x0": 1}]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"boxes\.json: expected"):
        read_boxes_json(path, (8, 10))


def test_box_split_fills_boxes_and_filters_against_the_instances(tiny_streets: Path, tmp_path: Path) -> None:
    fmt = get_format("synthetic", tiny_streets)
    store = LabelStore(tmp_path / "store")
    summary = box_split(fmt, "train", store, BoxFillSAM(), min_iou=0.75, progress=False)
    assert (summary.clips, summary.written) == (4, 4)
    filtered = 0
    for clip in fmt.clips("train"):
        path = store.label_path(clip, 0, LabelKind.BOXES)
        record = json.loads(boxes_json_path(path).read_text(encoding="utf-8"))
        assert boxes_json_path(path) == path.with_name(f"{clip.clip_id}_boxes.json")
        fine = read_label(clip.label(0, LabelKind.FINE).path)
        ids = read_instance_ids(instance_ids_path(clip.label(0, LabelKind.FINE).path))
        objects = split_objects(fine, ids, train_ids=[PERSON, CAR])
        assert [b["instance_id"] for b in record["boxes"]] == [o.instance_id for o in objects]
        expected = np.full(fine.shape, IGNORE_INDEX, np.uint8)
        boxes = [box_of(o.mask, o.train_id) for o in objects]
        for box in sorted(boxes, key=lambda b: -(b.x1 - b.x0) * (b.y1 - b.y0)):
            expected[box.window()] = box.train_id
        for obj, box, found in zip(objects, boxes, record["boxes"], strict=True):
            assert found["iou"] == pytest.approx(obj.area / ((box.x1 - box.x0) * (box.y1 - box.y0)))
            assert found["filtered"] == (found["iou"] < 0.75)
            if found["filtered"]:
                expected[box.window()] = IGNORE_INDEX
                filtered += 1
        assert np.array_equal(read_label(path), expected)
    assert (
        0
        < filtered
        < sum(
            len(json.loads(p.read_text(encoding="utf-8"))["boxes"]) for p in store.root.rglob("*_boxes.json")
        )
    )


def test_cli_boxes(tiny_streets: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from frugalseg.autolabel import sam2_loading

    built = []
    monkeypatch.setattr(
        sam2_loading, "build_sam2_image_predictor", lambda *args: built.append(args) or BoxFillSAM()
    )
    out = tmp_path / "store"
    argv = ["label", "boxes", "--format", "synthetic", "--root", str(tiny_streets), "--split", "val"]
    argv += [
        "--out",
        str(out),
        "--sam2-config",
        "sam2.1_hiera_s",
        "--sam2-checkpoint",
        "s.pt",
        "--no-progress",
    ]
    assert run_tool([*argv, "--filter-iou", "0.5", "--sam2-device", "cpu"]) == 0
    assert built == [("sam2.1_hiera_s", "s.pt", "cpu")]
    assert "label boxes: 3 images, 3 labels written" in capsys.readouterr().out
    settings = json.loads((out / "run.json").read_text(encoding="utf-8"))["settings"]
    assert settings["min_iou"] == 0.5 and settings["model"] == {
        "config": "sam2.1_hiera_s",
        "checkpoint": "s.pt",
    }
