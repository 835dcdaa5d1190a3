"""Label Studio 1.23.2's own JSON exports (``/api/projects/N/export``), as the server writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frugalseg.errors import DataError
from frugalseg.interop.label_studio import read_label_studio

RECTANGLE = {
    "original_width": 854, "original_height": 480, "image_rotation": 0, "id": "rect5", "from_name": "box",
    "to_name": "image", "type": "rectanglelabels", "origin": "manual",
    "value": {"x": 25.0, "y": 20.625, "width": 37.5, "height": 37.5, "rotation": 0,
              "rectanglelabels": ["car"]},
}  # fmt: skip


def _task(task_id: int, frame: int, annotations: list[dict[str, Any]]) -> dict[str, Any]:
    """A task of ``exportType=JSON&download_all_tasks=true``: its predictions are listed by id."""
    return {
        "id": task_id, "drafts": [], "predictions": [task_id + 1, task_id + 21, task_id + 81],
        "data": {"image": f"/data/local-files/?d=car-shadow.mp4/{frame:05d}.png"}, "meta": {},
        "annotations": annotations, "total_annotations": len(annotations), "total_predictions": 3,
        "project": 2,
    }  # fmt: skip


def test_a_json_export_lists_predictions_by_id_and_they_are_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    annotation = {
        "id": 3, "completed_by": 1, "result": [RECTANGLE], "was_cancelled": False, "lead_time": 7.0,
        "prediction": {"id": 8, "result": []},
    }  # fmt: skip
    path = tmp_path / "project-2.json"
    whole = {**_task(9, 7, []), "predictions": [11, {"id": 12, "result": [RECTANGLE]}]}  # read: not warned of
    path.write_text(json.dumps([_task(2, 0, []), _task(7, 5, [annotation]), _task(8, 6, []), whole]))
    export = read_label_studio(path)
    frame, predicted = export.frames  # tasks 2 and 8 have nothing to read
    assert (frame.key, frame.size, frame.element, frame.lead_time) == ("car-shadow.mp4/00005.png", (480, 854),
                                                                       "task 7", 7.0)  # fmt: skip
    assert (predicted.element, [s.type for s in predicted.shapes]) == ("task 9", ["box"])
    [box] = frame.shapes
    assert (box.type, box.label) == ("box", "car")
    np.testing.assert_allclose(box.points, [[213.5, 99.0], [533.75, 279.0]])
    assert export.labels == ("car",)
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == (
        f"{path}: 2 tasks no one annotated left out (2, 8): Label Studio's JSON export lists their "
        "predictions by id alone; submit a prediction in Label Studio to export it as the person's"
    )


def test_a_json_min_export_is_refused_saying_to_export_json(tmp_path: Path) -> None:
    minimal = {
        "image": "/data/local-files/?d=car-shadow.mp4/00005.png", "id": 7, "box": [RECTANGLE["value"]],
        "annotator": 1, "annotation_id": 3, "lead_time": 7.0,
    }  # fmt: skip
    path = tmp_path / "project-2-min.json"
    path.write_text(json.dumps([minimal]))
    with pytest.raises(DataError) as caught:
        read_label_studio(path)
    assert caught.value.problem == (
        "task 7: its data names no image or video (a task holds data.image or data.video); this looks "
        "like Label Studio's JSON-MIN export: export the project as JSON"
    )
    path.write_text(json.dumps([{"id": 7, "data": {}, "annotations": []}]))
    with pytest.raises(DataError) as caught:
        read_label_studio(path)
    assert (
        caught.value.problem
        == "task 7: its data names no image or video (a task holds data.image or data.video)"
    )


def test_a_frame_name_with_spaces_hashes_ampersands_and_percents_is_encoded_as_label_studio_encodes_it() -> (
    None
):
    """Label Studio's own sync writes ``?d=schw%C3%A4n%20clip/…``; an unencoded ``#`` cut the name (404)."""
    from frugalseg.interop.label_studio import image_name, local_file_url

    name = "schwän clip/Bild #1 ä&x+%41.jpg"
    url = local_file_url(name)
    assert url == "/data/local-files/?d=schw%C3%A4n%20clip/Bild%20%231%20%C3%A4%26x%2B%2541.jpg"
    assert image_name(url) == name
    assert image_name("/data/local-files/?d=schw%C3%A4n%20clip/Bild%20%231%20%C3%A4%26x.jpg") == (
        "schwän clip/Bild #1 ä&x.jpg"
    )


def test_a_skipped_task_is_warned_of_as_skipped_not_as_one_no_one_annotated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    skip = {"id": 4, "completed_by": 1, "result": [], "was_cancelled": True, "lead_time": 2.0}
    path = tmp_path / "project-2.json"
    path.write_text(json.dumps([_task(2, 0, [skip]), _task(8, 6, [])]))
    assert read_label_studio(path).frames == []
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{path}: 1 task a person skipped left out (2): a skip says nothing of the frame",
        f"{path}: 1 task no one annotated left out (8): Label Studio's JSON export lists their "
        "predictions by id alone; submit a prediction in Label Studio to export it as the person's",
    ]
