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


LINE_AND_CLICK = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><name>images</name><size>3</size><mode>interpolation</mode>
<start_frame>0</start_frame><stop_frame>2</stop_frame><labels><label><name>object</name></label></labels>
<original_size><width>25</width><height>20</height></original_size></task></meta>
<track id="0" label="object"><polyline frame="1" outside="0" occluded="0" keyframe="1"
 points="2.5,2.5;20.5,2.5" z_order="0"><attribute name="frugalseg_kind">clicks</attribute></polyline></track>
<track id="1" label="object"><points frame="1" outside="0" occluded="0" keyframe="1" points="10.5,2.5"
 z_order="0"><attribute name="frugalseg_kind">clicks</attribute></points></track>
</annotations>
"""


def _line_and_click_store(shared_data: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """`LINE_AND_CLICK` imported onto the sample's frames: the store, and the data options it was given."""
    images = shared_data / "tool_exports/cvat_dataset/for_video/images"
    where = ["--format", "video", "--root", str(images), "--clip", "images", "--map", "object=object"]
    (tmp_path / "task.xml").write_text(LINE_AND_CLICK, encoding="utf-8")
    store = tmp_path / "store"
    assert (
        main(
            [
                "label",
                "import",
                str(tmp_path / "task.xml"),
                "--tool",
                "cvat-video",
                *where,
                "--out",
                str(store),
            ]
        )
        == 0
    )
    return store, where


def test_a_click_of_one_object_on_a_line_of_another_comes_back_over_the_line(shared_data, tmp_path, capsys):
    """Object 2's click lies on object 1's line: CVAT's file had the line drawn over it once read back."""
    store, where = _line_and_click_store(shared_data, tmp_path)
    back, out = tmp_path / "back", tmp_path / "out.xml"
    assert main(["label", "export", "--store", str(store), "--tool", "cvat-video", "--out", str(out)]) == 0
    assert main(["label", "import", str(out), "--tool", "cvat-video", *where, "--out", str(back)]) == 0, (
        capsys.readouterr()
    )
    stem = "all/images/frame_000013_clicks"
    ids = _png(store / f"{stem}_instanceIds.png")
    assert (ids[2, 2], ids[2, 10], ids[2, 20]) == (1, 2, 1)
    np.testing.assert_array_equal(_png(back / f"{stem}_instanceIds.png"), ids)
    sent, came = (json.loads((s / f"{stem}.json").read_text("utf-8")) for s in (store, back))
    assert came == sent and len(sent["scribbles"]) == len(sent["clicks"]) == 1


def test_a_store_s_malformed_scribble_is_named_when_exported(shared_data, tmp_path, capsys):
    store, _ = _line_and_click_store(shared_data, tmp_path)
    side = store / "all/images/frame_000013_clicks.json"
    record = json.loads(side.read_text("utf-8"))
    record["scribbles"][0]["points"] = [[2.5, 2.5]]  # one vertex: no line
    side.write_text(json.dumps(record), encoding="utf-8")
    assert (
        main(
            [
                "label",
                "export",
                "--store",
                str(store),
                "--tool",
                "cvat-video",
                "--out",
                str(tmp_path / "o.xml"),
            ]
        )
        == 2
    )
    assert f"{side}: a scribble must be" in capsys.readouterr().err
    assert not (tmp_path / "o.xml").exists()


def test_a_label_clicks_store_s_clicks_go_out_as_points_though_it_keeps_no_instance_map(tmp_path):
    """`label clicks` gives a thing's click its instance id (26001) and writes no instance map: the clicks
    had gone out as one-pixel masks once objects were compared with a map that is not there."""
    from frugalseg.autolabel.clicks import Click, clicks_json, clicks_json_path
    from frugalseg.data.io import write_json_atomic, write_png_atomic
    from frugalseg.interop.stored_frames import _given_marks

    path = tmp_path / "a_clicks_labelTrainIds.png"
    label = np.full((8, 10), IGNORE_INDEX, np.uint8)
    label[4, 3] = 13
    write_png_atomic(path, label)
    click = Click(3, 4, 13, 26001)
    write_json_atomic(clicks_json_path(path), clicks_json([click], (8, 10), 0))
    classes = [f"c{k}" for k in range(19)]
    assert _given_marks(path, label, None, classes) == ([("c13", click)], [])
    other = np.zeros((8, 10), np.uint8)  # a map that says another object: the marks do not draw it
    assert _given_marks(path, label, other, classes) == ([], [])
