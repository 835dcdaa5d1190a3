"""Whole-pixel boxes survive Label Studio's percent arithmetic; dense labels keep their background (issue 45).

Label Studio's editor writes a length of ``px`` pixels in percent of the image's ``size`` as
``px * 100 / size`` (``convertXToPerc``, ``convertHDimensionToPerc``) or as ``px / size * 100``
(``RectRegion.setPosition``'s relative coordinates), and reads ``percent * size / 100`` back; its video
rectangles are kept in the same percent of the frame. All are doubles, as in Python.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import write_moving_squares

from frugalseg.autolabel.store import LabelStore
from frugalseg.data.formats import get_format
from frugalseg.errors import DataError
from frugalseg.interop import ClassMapping, import_export, read_export
from frugalseg.interop.raster import box_edges


def ls_percent(pixels: float, size: int) -> float:
    """Label Studio's pixels → percent (its editor's ``px * 100 / size``)."""
    return pixels * 100 / size


def ls_relative(pixels: float, size: int) -> float:
    """Label Studio's pixels → percent the other way (``px / size * 100``)."""
    return pixels / size * 100


def ls_pixels(percent: float, size: int) -> float:
    """Label Studio's percent → pixels (``percent * size / 100``)."""
    return percent * size / 100


@pytest.mark.parametrize("to_percent", [ls_percent, ls_relative])
@pytest.mark.parametrize("size", [7, 480, 854, 1920, 3840])
def test_every_whole_pixel_edge_survives_the_percent_round_trip(size, to_percent):
    """Every left edge with every box reaching the far edge, and every one-pixel box, comes back as drawn."""
    for edge in range(size):
        for right in (edge + 1, size):
            x, width = to_percent(edge, size), to_percent(right - edge, size)
            corners = np.array([[ls_pixels(x, size), 0.0], [ls_pixels(x + width, size), 1.0]])
            assert box_edges(corners) == (edge, 0, right, 1), (edge, right)


def test_the_issue_s_box_at_250_px_reads_back_at_249_99999_px():
    assert ls_pixels(ls_relative(250, 854), 854) == 249.99999999999997
    assert box_edges(np.array([[249.99999999999997, 10.0], [350.00000000000006, 20.0]])) == (250, 10, 350, 20)
    assert box_edges(np.array([[249.6, 10.2], [350.4, 19.9]])) == (249, 10, 351, 20)  # drawn off the pixels


def test_a_video_rectangle_on_whole_pixels_comes_back_whole(tmp_path):
    """A Label Studio video task on an 854 × 480 clip: the box x 250…350, y 100…180 px, on frame 2."""
    clip = tmp_path / "clip"
    clip.mkdir()
    for frame in range(3):
        cv2.imwrite(str(clip / f"{frame:05d}.jpg"), np.zeros((480, 854, 3), np.uint8))
    value = {"x": ls_relative(250, 854), "y": ls_relative(100, 480), "width": ls_relative(100, 854),
             "height": ls_relative(80, 480)}  # fmt: skip
    sequence = [{"frame": 2, "enabled": False, "rotation": 0, "time": 1 / 24, **value}]
    track = {"framesCount": 3, "duration": 3 / 24, "labels": ["object"], "sequence": sequence}
    result = {"id": "t1", "type": "videorectangle", "from_name": "box", "to_name": "video", "value": track}
    tasks = tmp_path / "tasks.json"
    task = {
        "id": 1,
        "data": {"video": "/data/upload/1/0123abcd-clip.mp4"},
        "annotations": [{"id": 1, "result": [result]}],
    }
    tasks.write_text(json.dumps([task]), encoding="utf-8")
    fmt = get_format("video", clip)
    store = LabelStore(tmp_path / "store")
    import_export(read_export("label-studio", tasks), fmt, "all", store, ClassMapping(fmt.class_names))
    (record,) = store.records()
    label = cv2.imread(str(store.root / record["path"]), cv2.IMREAD_UNCHANGED)
    rows, cols = np.nonzero(label == 1)
    assert (record["offset"], cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (
        1,
        250,
        100,
        350,
        180,
    )
    assert (label == 1).sum() == 100 * 80
    boxes = json.loads(next((store.root / "all" / "clip").glob("*_boxes.json")).read_text(encoding="utf-8"))[
        "boxes"
    ]
    assert [(b["x0"], b["y0"], b["x1"], b["y1"]) for b in boxes] == [(250, 100, 350, 180)]


def _coco(path: Path, polygon: list[float]) -> Path:
    """A COCO file of one polygon of class ``object`` on squares-a's frame 0 (64 × 48)."""
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "squares-a/00000.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [polygon], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "object"}],
    }), encoding="utf-8")  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("background", "outside"), [(None, 0), ("0", 0), ("background", 0), ("ignore", 255), ("object", 1)]
)
def test_the_data_set_s_background_fills_a_dense_label(background, outside, tmp_path):
    """Default: DAVIS's class 0 'background' (today 255); --background takes a train id, name or 'ignore'."""
    root = write_moving_squares(tmp_path / "davis")
    fmt = get_format("davis", root)
    export = read_export("coco", _coco(tmp_path / "coco.json", [10, 10, 30, 10, 30, 20, 10, 20]))
    store = LabelStore(tmp_path / "store")
    import_export(export, fmt, "train", store, ClassMapping(fmt.class_names), background=background)
    label = cv2.imread(str(store.root / store.records()[0]["path"]), cv2.IMREAD_UNCHANGED)
    assert (
        (label[10:20, 10:30] == 1).all() and (label[:10] == outside).all() and (label[20:] == outside).all()
    )


def test_a_background_that_is_no_class_is_refused(tmp_path):
    root = write_moving_squares(tmp_path / "davis")
    fmt = get_format("davis", root)
    export = read_export("coco", _coco(tmp_path / "coco.json", [10, 10, 30, 10, 30, 20, 10, 20]))
    with pytest.raises(DataError, match="label '2' maps to no class"):
        import_export(
            export, fmt, "train", LabelStore(tmp_path / "s"), ClassMapping(fmt.class_names), background="2"
        )
