"""Label Studio's results for an ML backend: shapes of a frame, keypoints as clicks, regions as ids."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.errors import DataError
from frugalseg.interop.label_studio import annotation_shapes, result_object
from frugalseg.interop.label_studio_regions import (
    brush_control,
    brush_result,
    keypoint_clicks,
    rectangle_box,
    regions_mask,
)
from frugalseg.interop.rle import ls_decode

SIZE = (40, 100)  # H, W: one percent is 0.4 px down and 1 px across


def keypoint(x: float, y: float, positive: bool = True) -> dict:
    value = {"x": x, "y": y, "width": 1, "keypointlabels": ["car"]}
    return {"id": "k", "type": "keypointlabels", "original_width": 100, "original_height": 40,
            "is_positive": positive, "value": value}  # fmt: skip


def rectangle(x: float, y: float, width: float, height: float, result_id: str = "r") -> dict:
    return {"id": result_id, "type": "rectanglelabels", "original_width": 100, "original_height": 40,
            "value": {"x": x, "y": y, "width": width, "height": height, "rotation": 0,
                      "rectanglelabels": ["car"]}}  # fmt: skip


def test_keypoints_are_clicks_in_the_pixel_their_point_lies_in():
    frame, read = annotation_shapes([keypoint(12.5, 50.0), keypoint(3.0, 10.0, False)], SIZE, "task 1")
    clicks = [
        c for shape, result in zip(frame.shapes, read, strict=True) for c in keypoint_clicks(shape, result)
    ]
    assert clicks == [(12, 20, True), (3, 4, False)]


def test_a_keypoint_on_a_pixels_edge_is_that_pixels_click():
    """20 / 480 of 480 rows in percent comes back as 19.999999999999996: it had been a click on row 19."""
    size = (480, 854)
    result = {**keypoint(339 / 854 * 100, 20 / 480 * 100), "original_width": 854, "original_height": 480}
    frame, read = annotation_shapes([result], size, "task 1")
    (shape,), (result,) = frame.shapes, read
    assert keypoint_clicks(shape, result) == [(339, 20, True)]


def test_a_rectangle_is_its_pixels_for_the_box_tool_and_for_a_mask():
    frame, _ = annotation_shapes([rectangle(10.0, 25.0, 20.0, 50.0)], SIZE, "task 1")
    assert rectangle_box(frame.shapes[0]) == (10, 10, 29, 29)  # corners included
    ids = regions_mask(frame, SIZE, [7])
    expected = np.zeros(SIZE, np.uint8)
    expected[10:30, 10:30] = 7
    assert np.array_equal(ids, expected)


def test_a_brush_result_names_its_object_and_decodes_to_its_mask():
    mask = np.zeros(SIZE, bool)
    mask[5:9, 60:70] = True
    result = brush_result(mask, "car", 12, ("tag", "image"))
    assert (result["id"], result["from_name"], result["to_name"]) == ("frugalseg-12", "tag", "image")
    assert result_object(result) == 12 and result_object({"id": "a1"}) is None
    assert np.array_equal(ls_decode(result["value"]["rle"], 40, 100), mask)


def test_the_brush_control_of_a_labeling_config():
    config = '<View><Image name="img" value="$image"/><BrushLabels name="tag" toName="img"/></View>'
    assert brush_control(config) == ("tag", "img")
    assert brush_control('<View><Image name="img" value="$image"/></View>') is None
    with pytest.raises(DataError, match="not XML"):
        brush_control("<View>")


@pytest.mark.parametrize(
    ("results", "words"),
    [
        ([], "task 1: no brush, polygon, rectangle or keypoint to read"),
        (["x"], "task 1: result 1 is not an object"),
        (
            [{**keypoint(5, 5), "original_width": 50, "original_height": 20}],
            "task 1 result k: drawn on an image of 50×20, the task's image is 100×40",
        ),
        (
            [{**keypoint(5, 5), "value": {"keypointlabels": ["car"]}}],
            "task 1 result k: not a Label Studio result",
        ),
        (  # a region without its labels had been dropped, and a task of it alone with it
            [{key: v for key, v in rectangle(5, 5, 10, 10).items() if key != "value"}],
            "task 1 result r: a rectanglelabels result without its value's rectanglelabels",
        ),
    ],
)
def test_results_that_cannot_be_read_name_the_task_and_the_result(results, words):
    with pytest.raises(DataError) as caught:
        annotation_shapes(results, SIZE, "task 1")
    assert words in caught.value.problem


def test_a_rectangle_and_keypoints_beside_the_backends_answer_of_their_label_are_its_object(tmp_path) -> None:
    """As the ML backend books them (a box with its clicks): `label import` had made three objects of
    the answer (``frugalseg-2``), the rectangle drawn for it and the keypoints correcting it."""
    import json

    from frugalseg.interop.label_studio import read_label_studio

    square = [[10, 10], [40, 10], [40, 40], [10, 40]]
    answer = {"id": "frugalseg-2", "type": "polygonlabels", "original_width": 100, "original_height": 40,
              "value": {"points": square, "polygonlabels": ["car"]}}  # fmt: skip
    other = {**rectangle(60, 10, 20, 50, "r2"), "value": {**rectangle(60, 10, 20, 50)["value"],
                                                          "rectanglelabels": ["bus"]}}  # fmt: skip
    results = [rectangle(5, 5, 50, 60), answer, keypoint(30.5, 50.5), other]
    for result in results:
        result.update(from_name="label", to_name="image")
    task = {"id": 1, "data": {"image": "/data/local-files/?d=clip/00001.jpg"},
            "annotations": [{"id": 1, "result": results, "was_cancelled": False}]}  # fmt: skip
    path = tmp_path / "project.json"
    path.write_text(json.dumps([task]), encoding="utf-8")
    [frame] = read_label_studio(path).frames
    assert [(s.type, s.label, s.instance_id) for s in frame.shapes] == [
        ("box", "car", 2),
        ("polygon", "car", 2),
        ("points", "car", 2),
        ("box", "bus", 1),  # a rectangle of a label no kept region has: a new object
    ]
