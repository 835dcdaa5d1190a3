"""A Label Studio round trip: a model's predictions, a person's edits of frugalseg's own, emptied tasks.

What Label Studio 1.23.2 did with a ``label export --tool label-studio`` file and an ML backend's
predictions: its editor drops a prediction's ``meta`` when a person accepts or edits it (but keeps the
region ids), a task whose person deleted every region is an annotation of no result, and its brush PNG
export is a zip of PNGs.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from data.fake_davis import squares, write_moving_squares

from frugalseg.autolabel.store import LabelStore, instances_path
from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.errors import DataError
from frugalseg.interop import ClassMapping, import_export, read_export
from frugalseg.interop.label_studio import (
    annotation_shapes,
    read_label_studio,
    result_object,
    write_label_studio,
)
from frugalseg.interop.label_studio_regions import brush_result

FRAME = "JPEGImages/480p/squares-a/{:05d}.jpg"
SIZE = (48, 64)


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_squares(tmp_path_factory.mktemp("davis"))


def _import(path: Path, davis: Path, out: Path) -> LabelStore:
    fmt = get_format("davis", davis)
    store = LabelStore(out)
    import_export(read_export("label-studio", path), fmt, "train", store, ClassMapping(fmt.class_names))
    return store


def _png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return np.asarray(image)


def _task(task_id: int, frame: int, **lists: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": task_id, "data": {"image": f"/data/local-files/?d={FRAME.format(frame)}"}, **lists}


def test_a_models_prediction_is_a_pseudo_label_and_frugalsegs_own_keeps_its_kind(davis, tmp_path):
    """The ML backend's brush (no kind recorded) is a model's guess: pseudo, not a person's fine label."""
    swan = squares(0, 0) == 1
    guess = brush_result(swan, "object", 1, ("label", "image"))  # frugalseg's ML backend's prediction
    own = tmp_path / "own.json"
    write_label_studio(own, [(FRAME.format(3), SIZE, [(LabelKind.FINE, "object", 1, squares(3, 0) == 1)])])
    [exported] = json.loads(own.read_text(encoding="utf-8"))
    tasks = [
        _task(1, 0, annotations=[], predictions=[{"model_version": "frugalseg-flow", "result": [guess]}]),
        {**exported, "id": 2},
    ]
    path = tmp_path / "project.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    export = read_label_studio(path)
    assert [(s.kind, s.instance_id) for f in export.frames for s in f.shapes] == [
        (LabelKind.PSEUDO, 1), (LabelKind.FINE, 1)
    ]  # fmt: skip
    store = _import(path, davis, tmp_path / "store")
    assert sorted((r["offset"], r["kind"]) for r in store.records()) == [(0, "pseudo"), (3, "fine")]
    pseudo = store.root / "train/squares-a/00000_pseudo_labelTrainIds.png"
    assert np.array_equal(_png(pseudo), swan.astype(np.uint8))  # the rest is the data set's background
    assert np.array_equal(_png(instances_path(pseudo)), swan.astype(np.uint8))


def _without_meta(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "meta"}


def test_edited_regions_keep_their_objects_by_id_and_a_new_region_takes_a_free_one(davis, tmp_path):
    """Meta dropped, regions reordered, one drawn from scratch: objects 1 and 2 stay, the new one is 3."""
    ids = squares(0, 0)
    objects = [(LabelKind.FINE, "background", None, ids == 0), (LabelKind.FINE, "object", 1, ids == 1),
               (LabelKind.FINE, "object", 2, ids == 2)]  # fmt: skip
    path = tmp_path / "export.json"
    write_label_studio(path, [(FRAME.format(0), SIZE, objects)])
    [task] = json.loads(path.read_text(encoding="utf-8"))
    predicted = task["predictions"][0]["result"]
    assert [r["id"] for r in predicted] == ["frugalseg-class-1", "frugalseg-1-2", "frugalseg-2-3"]
    new = np.zeros(SIZE, bool)
    new[35:45, 5:20] = True  # on the background
    drawn = brush_result(new, "object", 0, ("label", "image")) | {"id": "Xk3bq9Zt1a"}  # the editor's id
    erased = brush_result((ids == 0) & ~new, "background", 0, ("label", "image"))  # drawn last: erased there
    background = {**_without_meta(predicted[0]), "value": erased["value"]}
    edited = [drawn, _without_meta(predicted[2]), _without_meta(predicted[1]), background]
    task["annotations"] = [{"id": 5, "result": edited, "was_cancelled": False}]
    path.write_text(json.dumps([task]), encoding="utf-8")
    [frame] = read_label_studio(path).frames
    assert [(s.label, s.kind, s.instance_id) for s in frame.shapes] == [
        ("object", None, 3), ("object", None, 2), ("object", None, 1), ("background", None, None)
    ]  # fmt: skip
    store = _import(path, davis, tmp_path / "store")
    fine = store.root / "train/squares-a/00000_fine_labelTrainIds.png"
    expected = ids.copy()
    expected[new] = 3
    assert np.array_equal(_png(instances_path(fine)), expected)
    assert np.array_equal(_png(fine), (expected > 0).astype(np.uint8))


def test_regions_that_name_no_object_never_take_an_id_another_region_names():
    """An ML backend's ``frugalseg-1`` keeps object 1; the person's regions before and after it are 2, 3."""
    results = []
    for k, result_id in enumerate(("a", "frugalseg-1", "b", "frugalseg-4-2")):
        mask = np.zeros(SIZE, bool)
        mask[k * 10 : k * 10 + 5, 0:5] = True
        results.append(brush_result(mask, "object", 0, ("label", "image")) | {"id": result_id})
    frame, _ = annotation_shapes(results, SIZE, "task 1")
    assert [s.instance_id for s in frame.shapes] == [2, 1, 3, 4]
    assert [result_object(r) for r in results] == [None, 1, None, 4]
    assert result_object({"id": "frugalseg-class-1"}) is None and result_object({"id": "frugalseg-12"}) == 12


def test_a_task_whose_person_deleted_every_region_is_an_all_background_label(davis, tmp_path):
    """The person's "nothing here" (an annotation of no result, not cancelled) is a fine label of 0s."""
    swan = squares(0, 0) == 1
    kept = [{"id": 1, "result": [brush_result(swan, "object", 1, ("label", "image"))]}]
    tasks = [
        _task(1, 0, annotations=kept),
        _task(2, 1, annotations=[{"id": 2, "result": [], "was_cancelled": False, "lead_time": 4.5}]),
        _task(3, 2, annotations=[{"id": 3, "result": [], "was_cancelled": True}]),  # skipped: left out
    ]
    path = tmp_path / "project.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    export = read_label_studio(path)
    assert [(f.element, len(f.shapes), f.empty) for f in export.frames] == [("task 1", 1, False),
                                                                             ("task 2", 0, True)]  # fmt: skip
    store = _import(path, davis, tmp_path / "store")
    assert sorted((r["offset"], r["kind"], r["seconds"]) for r in store.records()) == [
        (0, "fine", 0.0), (1, "fine", 4.5)
    ]  # fmt: skip
    nothing = store.root / "train/squares-a/00001_fine_labelTrainIds.png"
    assert np.array_equal(_png(nothing), np.zeros(SIZE, np.uint8))
    # a file of objects (task 1 brushes object 1): none on it, as `annotate export` writes such a frame
    assert np.array_equal(_png(instances_path(nothing)), np.zeros(SIZE, np.uint8))


def test_label_studios_brush_png_export_is_refused_saying_to_export_json(tmp_path):
    archive = tmp_path / "project-2-at-2025-brush.zip"
    with zipfile.ZipFile(archive, "w") as written:
        written.writestr("task-2-annotation-2-by-1-label-object-0.png", b"\x89PNG\r\n\x1a\n")
    folder = tmp_path / "unzipped"
    folder.mkdir()
    (folder / "task-2-annotation-2-by-1-label-object-0.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    single = tmp_path / "task-2-annotation-2-by-1-label-object-0.png"  # one region's export: the PNG itself
    single.write_bytes(b"\x89PNG\r\n\x1a\n")
    for path, what in ((archive, "a zip"), (folder, "a folder"), (single, "a PNG image")):
        with pytest.raises(DataError) as caught:
            read_export("label-studio", path)
        assert caught.value.problem == (
            f"{what}, not a JSON file: Label Studio's brush PNG export (BRUSH_TO_PNG) is not read "
            "(its PNGs name no frame or object); export the project as JSON"
        )


def test_label_studios_brush_numpy_and_coco_zips_are_named_as_what_they_are(tmp_path):
    """Both had been refused as "Label Studio's brush PNG export (BRUSH_TO_PNG)"; the COCO one is readable."""
    numpy, coco = tmp_path / "p1.BRUSH_TO_NUMPY.zip", tmp_path / "p1.BRUSH_TO_COCO.zip"
    with zipfile.ZipFile(numpy, "w") as written:
        written.writestr("task-1-annotation-1-by-1-label-car-0.npy", b"\x93NUMPY")
    with zipfile.ZipFile(coco, "w") as written:
        written.writestr("images/", b"")
        written.writestr("result_coco.json", b"{}")
    problems = {}
    for path in (numpy, coco):
        with pytest.raises(DataError) as caught:
            read_export("label-studio", path)
        problems[path.name] = caught.value.problem
    assert problems == {
        numpy.name: "a zip, not a JSON file: Label Studio's brush NumPy export (BRUSH_TO_NUMPY) is not read "
        "(its arrays name no frame or object); export the project as JSON",
        coco.name: "a zip holding a COCO file: Label Studio's brush COCO export (BRUSH_TO_COCO) is read by "
        "--tool coco from its JSON file (unzip it); or export the project as JSON",
    }


@pytest.mark.parametrize(
    "text", ["id,image,brush\n1,/data/upload/1/a.jpg,\n", "id\timage\n1\t/data/upload/1/a.jpg\n"]
)
def test_label_studios_csv_and_tsv_exports_are_refused_saying_to_export_json(tmp_path, text):
    path = tmp_path / "project-2-at-2025.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_export("label-studio", path)
    assert caught.value.problem == (
        "not valid JSON (Expecting value: line 1 column 1 (char 0)): "
        "export the project as JSON (not CSV, TSV or JSON-MIN)"
    )


def test_a_zip_given_as_coco_is_named_a_zip(tmp_path):
    """Label Studio's COCO export is a zip of result.json and the images: it had read as 'not valid JSON'."""
    archive = tmp_path / "project-2-at-2025-coco.zip"
    with zipfile.ZipFile(archive, "w") as written:
        written.writestr("result.json", "{}")
    with pytest.raises(DataError) as caught:
        read_export("coco", archive)
    assert caught.value.problem == "a zip archive, not a JSON file: unzip it and give the JSON file it holds"
