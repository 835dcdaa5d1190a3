"""Which pixels of the real tool exports in ../shared/data/tool_exports are which object, once imported.

The expected pixels are read off the files by hand (their JSON and PNGs are 10×5 pixels).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.cli import main
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.interop import read_export
from frugalseg.interop.raster import rasterize


@pytest.fixture(scope="module")
def coco(shared_data: Path) -> Path:
    return shared_data / "tool_exports" / "coco_dataset"


def _png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return np.asarray(image)


def test_a_panoptic_segment_of_the_background_class_is_no_object(coco):
    """Segment 7 ('a', columns 0–1) is object 1; segment 20 ('b' → background, columns 2–3) is none."""
    (frame,) = read_export("coco-panoptic", coco / "coco_panoptic/annotations/panoptic_val.json").frames
    made = rasterize(frame, (10, 5), [1, 0], background=0)[LabelKind.FINE]  # a → object 1, b → background 0
    assert made.label[0].tolist() == [1, 1, 0, 0, 0] and (made.label == made.label[0]).all()
    assert made.instances is not None
    assert made.instances[0].tolist() == [1, 1, 0, 0, 0] and (made.instances == made.instances[0]).all()


def test_label_import_of_the_panoptic_export_writes_background_as_instance_0(coco, tmp_path, capsys):
    panoptic = coco / "coco_panoptic"
    store = tmp_path / "store"
    args = ["label", "import", str(panoptic / "annotations/panoptic_val.json"), "--tool", "coco-panoptic",
            "--format", "video", "--root", str(panoptic / "images/val"), "--out", str(store),
            "--map", "a=object", "--map", "b=background"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr()
    ids = _png(store / "all/val/b_fine_instanceIds.png")
    label = _png(store / "all/val/b_fine_labelTrainIds.png")
    expected_ids = np.zeros((10, 5), np.uint8)
    expected_ids[:, :2] = 1
    np.testing.assert_array_equal(ids, expected_ids)
    expected = np.full((10, 5), IGNORE_INDEX, np.uint8)  # the file draws the background: column 4 is none
    expected[:, :2], expected[:, 2:4] = 1, 0
    np.testing.assert_array_equal(label, expected)


@pytest.mark.parametrize("background", [None, "background"])
def test_the_panoptic_void_stays_unlabelled_unless_background_names_a_class(
    coco, tmp_path, capsys, background
):
    """Column 4 holds segment id 0, COCO panoptic's void: it had been imported as the background class."""
    panoptic = coco / "coco_panoptic"
    store = tmp_path / "store"
    args = ["label", "import", str(panoptic / "annotations/panoptic_val.json"), "--tool", "coco-panoptic",
            "--format", "video", "--root", str(panoptic / "images/val"), "--out", str(store),
            "--map", "a=object", "--map", "b=object"]  # fmt: skip
    assert main(args + (["--background", background] if background else [])) == 0, capsys.readouterr()
    label = _png(store / "all/val/b_fine_labelTrainIds.png")
    assert label[:, :4].tolist() == [[1, 1, 1, 1]] * 10
    assert label[:, 4].tolist() == [IGNORE_INDEX if background is None else 0] * 10


def test_a_crowd_annotation_is_drawn_beneath_the_polygon_it_covers(coco):
    """Annotation 2 (crowd RLE of 'b', columns 0–1) covers polygon 1 ('a', x 0…1, y 0…2) whole."""
    (frame,) = read_export("coco", coco / "coco_instances/annotations/instances_val.json").frames
    polygon, crowd = frame.shapes
    assert (polygon.z_order, crowd.z_order) == (0, -1)
    made = rasterize(frame, (10, 5), [1, 2])[LabelKind.FINE]  # a → 1, b → 2
    expected = np.full((10, 5), IGNORE_INDEX, np.uint8)
    expected[:, :2] = 2
    expected[0:2, 0] = 1  # the polygon's pixels as pycocotools fills them: column 0, rows 0 and 1
    np.testing.assert_array_equal(made.label, expected)
    assert made.instances is not None
    np.testing.assert_array_equal(made.instances, np.where(expected == 1, 1, np.where(expected == 2, 2, 0)))


def test_label_import_of_the_instances_export_keeps_both_objects(coco, tmp_path, capsys):
    instances = coco / "coco_instances"
    store = tmp_path / "store"
    args = ["label", "import", str(instances / "annotations/instances_val.json"), "--tool", "coco",
            "--format", "video", "--root", str(instances / "images/val"), "--out", str(store),
            "--map", "a=object", "--map", "b=object"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr()
    ids = _png(store / "all/val/b_fine_instanceIds.png")
    values, counts = np.unique(ids, return_counts=True)
    assert (values.tolist(), counts.tolist()) == ([0, 1, 2], [30, 2, 18])  # polygon 1: 2 pixels, crowd 2: 18
    assert ids[0, 0] == ids[1, 0] == 1


def test_a_cvat_video_frame_of_one_polyline_is_a_scribble_and_no_click(shared_data, tmp_path, capsys):
    """Frame 13 holds track 2's polyline alone: its clicks JSON lists the scribble and no click."""
    video = shared_data / "tool_exports/cvat_dataset/for_video"
    store = tmp_path / "store"
    args = ["label", "import", str(video / "annotations.xml"), "--tool", "cvat-video", "--format", "video",
            "--root", str(video / "images"), "--clip", "images", "--out", str(store),
            "--map", "II=object", "--map", "klhg=object"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr()
    side = json.loads((store / "all/images/frame_000013_clicks.json").read_text(encoding="utf-8"))
    assert side["clicks"] == []
    assert side["scribbles"] == [{"points": [[7.85, 13.88], [3.5, 6.67], [15.9, 2.0], [13.31, 7.21]],
                                  "train_id": 1, "instance_id": 3}]  # fmt: skip
    label = _png(store / "all/images/frame_000013_clicks_labelTrainIds.png")
    assert np.count_nonzero(label != IGNORE_INDEX) == np.count_nonzero(label == 1) > 0
    frame_10 = json.loads((store / "all/images/frame_000010_clicks.json").read_text(encoding="utf-8"))
    clicks = [(c["x"], c["y"], c["instance_id"]) for c in frame_10["clicks"]]
    assert clicks == [(21, 8, 2), (2, 15, 2), (2, 3, 2)]  # track 1's points, as drawn


@pytest.mark.parametrize("tool", ["cvat-video", "coco", "label-studio"])
def test_a_scribble_goes_out_to_a_tool_and_comes_back_as_its_object_s(shared_data, tmp_path, capsys, tool):
    """CVAT has polylines: frame 13's line comes back as the same scribble. COCO and Label Studio have none:
    the line goes as its mask and comes back as a click of the same object (it had lost its id)."""
    video = shared_data / "tool_exports/cvat_dataset/for_video"
    where = ["--format", "video", "--root", str(video / "images")]
    store, back = tmp_path / "store", tmp_path / "back"
    args = [
        "label",
        "import",
        str(video / "annotations.xml"),
        "--tool",
        "cvat-video",
        *where,
        "--clip",
        "images",
        "--out",
        str(store),
        "--map",
        "II=object",
        "--map",
        "klhg=object",
    ]
    assert main(args) == 0, capsys.readouterr()
    out = tmp_path / ("file.xml" if tool == "cvat-video" else "file.json")
    assert main(["label", "export", "--store", str(store), "--tool", tool, "--out", str(out)]) == 0
    args = ["label", "import", str(out), "--tool", tool, *where, "--out", str(back), "--map", "object=object"]
    assert main(args + (["--clip", "images"] if tool == "cvat-video" else [])) == 0, capsys.readouterr()
    for name in ("frame_000013_clicks_labelTrainIds.png", "frame_000013_clicks_instanceIds.png"):
        np.testing.assert_array_equal(_png(back / "all/images" / name), _png(store / "all/images" / name))
    sent, came = (
        json.loads((s / "all/images/frame_000013_clicks.json").read_text("utf-8")) for s in (store, back)
    )
    if tool == "cvat-video":
        assert came == sent
    else:
        assert came["scribbles"] == [] and [c["instance_id"] for c in came["clicks"]] == [3]
