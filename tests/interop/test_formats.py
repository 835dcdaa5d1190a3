"""Readers of Label Studio, labelme JSON and CVAT's mask export on files written as those tools write them."""

from __future__ import annotations

import base64
import io
import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from frugalseg.errors import DataError
from frugalseg.interop import read_export
from frugalseg.interop.rle import cvat_decode, cvat_encode, ls_decode, ls_encode


def test_label_studio_brush_rle_follows_its_bit_layout():
    # one pixel inside: RGBA 255 ×4 → count 4 (32 bits), word 8 − 1 (5 bits), widths 3, 4, 8, 16 − 1
    # (4 bits each), one block: run flag 1, width index 00, length − 1 = 3 in 3 bits, value 11111111
    bits = f"{4:032b}" + "00111" + "0010" + "0011" + "0111" + "1111" + "1" + "00" + "011" + "11111111"
    bits += "0" * (-len(bits) % 8)
    expected = [int(bits[k : k + 8], 2) for k in range(0, len(bits), 8)]
    assert ls_encode(np.ones((1, 1), bool)) == expected
    assert ls_decode(expected, 1, 1).tolist() == [[True]]


def test_label_studio_literal_blocks_are_read():
    # Label Studio's own encoder writes single values as literal blocks: flag 0, index 00, length 0
    values = [0, 0, 0, 0, 255, 255, 255, 200]  # two pixels: outside, then inside (alpha 200)
    bits = f"{8:032b}" + "00111" + "0010" + "0011" + "0111" + "1111"
    bits += (
        "1"
        + "00"
        + "011"
        + f"{0:08b}"
        + "1"
        + "00"
        + "010"
        + f"{255:08b}"
        + "0"
        + "00"
        + "000"
        + f"{200:08b}"
    )
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[k : k + 8], 2) for k in range(0, len(bits), 8)]
    assert values[-1] == 200 and ls_decode(rle, 1, 2).tolist() == [[False, True]]


@pytest.mark.parametrize("seed", [0, 1])
def test_rles_round_trip(seed):
    mask = np.random.default_rng(seed).random((13, 17)) > 0.6
    np.testing.assert_array_equal(ls_decode(ls_encode(mask), 13, 17), mask)
    np.testing.assert_array_equal(cvat_decode(cvat_encode(mask), 17, 13), mask)


def test_label_studio_export(tmp_path):
    mask = np.zeros((40, 50), bool)
    mask[10:20, 5:15] = True
    result = [
        {"id": "a", "type": "polygonlabels", "original_width": 50, "original_height": 40,
         "value": {"points": [[10, 25], [50, 25], [10, 75]], "polygonlabels": ["car"]}},
        {"id": "b", "type": "rectanglelabels", "original_width": 50, "original_height": 40,
         "value": {"x": 20, "y": 50, "width": 10, "height": 25, "rotation": 0, "rectanglelabels": ["car"]}},
        {"id": "c", "type": "keypointlabels", "original_width": 50, "original_height": 40,
         "value": {"x": 50, "y": 50, "width": 1, "keypointlabels": ["road"]}},
        {"id": "d", "type": "brushlabels", "original_width": 50, "original_height": 40,
         "value": {"format": "rle", "rle": ls_encode(mask), "brushlabels": ["road"]}},
        {"id": "e", "type": "choices", "value": {"choices": ["day"]}},
    ]  # fmt: skip
    tasks = [
        {"id": 7, "data": {"image": "/data/upload/3/1a2b3c4d-frame_0004.jpg"},
         "annotations": [{"id": 1, "result": result[:1]}, {"id": 2, "result": result}, {"id": 3,
                         "was_cancelled": True, "result": []}]},
        {"id": 8, "data": {"image": "/data/local-files/?d=seq/frame_0005.jpg"}, "annotations": [],
         "predictions": [{"result": result[3:4]}]},
    ]  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    export = read_export("label-studio", path)
    first, second = export.frames
    assert (first.key, first.size, second.key) == (
        "frame_0004.jpg",
        (40, 50),
        "seq/frame_0005.jpg",
    )
    polygon, box, point, brush = first.shapes  # annotation 2 (annotation 3 was cancelled)
    np.testing.assert_allclose(polygon.points, [[5, 10], [25, 10], [5, 30]])  # percent of 50 × 40
    np.testing.assert_allclose(box.points, [[10, 20], [15, 30]])
    np.testing.assert_allclose(point.points, [[25, 20]])
    np.testing.assert_array_equal(brush.get_mask(), mask)
    assert [s.type for s in first.shapes] == ["polygon", "box", "points", "mask"]
    assert polygon.element == "task 7 result a"
    assert [s.type for s in second.shapes] == ["mask"]  # no annotation: its prediction


def test_label_studio_brush_of_another_size_names_the_result(tmp_path):
    value = {"format": "rle", "rle": ls_encode(np.ones((3, 3), bool)), "brushlabels": ["road"]}
    result = {"id": "x", "type": "brushlabels", "original_width": 5, "original_height": 4, "value": value}
    path = tmp_path / "export.json"
    path.write_text(
        json.dumps([{"id": 2, "data": {"image": "a.jpg"}, "annotations": [{"result": [result]}]}]),
        encoding="utf-8",
    )
    with pytest.raises(
        DataError, match=r"task 2 result x: brush rle does not fit the 5×4 image \(it holds 36 values"
    ):
        read_export("label-studio", path)


def _png64(mask: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_labelme_json(tmp_path):
    box_mask = np.zeros((3, 4), bool)
    box_mask[1, 1:3] = True
    shapes = [
        {"label": "car", "points": [[1, 1], [5, 1], [1, 5]], "shape_type": "polygon", "group_id": 4},
        {"label": "car", "points": [[2, 2], [6, 4]], "shape_type": "rectangle", "group_id": 4},
        {"label": "road", "points": [[3.5, 7.2]], "shape_type": "point", "group_id": None},
        {"label": "road", "points": [[0, 9], [9, 9]], "shape_type": "line", "group_id": None},
        {"label": "sign", "points": [[5, 5], [5, 7]], "shape_type": "circle", "group_id": None},
        {"label": "sign", "points": [[6, 0], [9, 2]], "shape_type": "mask", "mask": _png64(box_mask)},
    ]
    data = {"imagePath": "../images/f1.jpg", "imageHeight": 10, "imageWidth": 12, "shapes": shapes}
    (tmp_path / "f1.json").write_text(json.dumps(data), encoding="utf-8")
    export = read_export("labelme", tmp_path)
    (frame,) = export.frames
    assert (frame.key, frame.size) == ("images/f1.jpg", (10, 12))
    types = [(s.type, s.label, s.instance_id) for s in frame.shapes]
    # group 4 is object 5; the ungrouped shapes take 1, 2 … (labelme's module docstring)
    assert types == [("polygon", "car", 5), ("box", "car", 5), ("points", "road", 1), ("polyline", "road", 2),
                     ("mask", "sign", 3), ("mask", "sign", 4)]  # fmt: skip
    disc = frame.shapes[4].get_mask()
    assert disc.sum() == 13 and disc[5, 5] and disc[7, 5] and not disc[7, 6]  # radius 2 around (5, 5)
    assert np.argwhere(frame.shapes[5].get_mask()).tolist() == [
        [1, 7],
        [1, 8],
    ]  # the box PNG placed at (6, 0)


def test_cvat_segmentation_mask_export(tmp_path):
    (tmp_path / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar:250,50,83::\n", encoding="utf-8"
    )
    classes = np.zeros((4, 6, 3), np.uint8)
    classes[1:3, 1:3] = (250, 50, 83)
    classes[0, 5] = (250, 50, 83)
    objects = np.zeros((4, 6, 3), np.uint8)
    objects[1:3, 1:3] = (1, 2, 3)
    objects[0, 5] = (9, 9, 9)
    for folder, image in (("SegmentationClass", classes), ("SegmentationObject", objects)):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "frame_000004.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    archive = shutil.make_archive(str(tmp_path.parent / f"{tmp_path.name}-export"), "zip", tmp_path)
    export = read_export("cvat-mask", tmp_path)
    assert [(s.label, s.instance_id) for s in read_export("cvat-mask", archive).frames[0].shapes] == [
        (s.label, s.instance_id) for s in export.frames[0].shapes
    ]  # the zip CVAT gives reads as its folder
    (frame,) = export.frames
    shapes = [(s.label, s.instance_id, int(s.get_mask().sum())) for s in frame.shapes]
    assert frame.key == "frame_000004.png"
    assert shapes == [("background", None, 19), ("car", 1, 4), ("car", 2, 1)]
    classes[3, 0] = (1, 2, 3)
    cv2.imwrite(
        str(tmp_path / "SegmentationClass" / "frame_000004.png"), cv2.cvtColor(classes, cv2.COLOR_RGB2BGR)
    )
    with pytest.raises(
        DataError, match=r"pixel \(x=0, y=3\) has colour 1,2,3, which labelmap.txt does not list"
    ):
        read_export("cvat-mask", tmp_path)


def test_mask_exports_of_frames_in_folders_are_keyed_by_their_paths(tmp_path):
    """A task made of ``squares-a/00000.jpg`` and ``squares-b/00000.jpg``: its masks lie in sub-folders."""
    cvat, mots = tmp_path / "cvat", tmp_path / "mots"
    cvat.mkdir()
    mots.mkdir()
    (cvat / "labelmap.txt").write_text("background:0,0,0::\ncar:250,50,83::\n", encoding="utf-8")
    (mots / "labels.txt").write_text("car\n", encoding="utf-8")
    for clip, width in (("squares-a", 2), ("squares-b", 3)):
        classes = np.zeros((4, 6, 3), np.uint8)
        classes[1, :width] = (83, 50, 250)  # BGR of the car's colour
        (cvat / "SegmentationClass" / clip).mkdir(parents=True)
        cv2.imwrite(str(cvat / "SegmentationClass" / clip / "00000.png"), classes)
        ids = np.zeros((4, 6), np.uint16)
        ids[2, :width] = 1001
        (mots / clip).mkdir()
        cv2.imwrite(str(mots / clip / "00000.png"), ids)
    archive = shutil.make_archive(str(tmp_path / "cvat-export"), "zip", cvat)
    for tool, path in (("cvat-mask", cvat), ("cvat-mask", archive), ("mots", mots)):
        export = read_export(tool, path)
        assert [frame.key for frame in export.frames] == ["squares-a/00000.png", "squares-b/00000.png"]
        assert [int(frame.shapes[-1].get_mask().sum()) for frame in export.frames] == [2, 3]
