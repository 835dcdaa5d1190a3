"""Object ids of imported tool files: one id per object on a frame, the same object on every frame.

`frugalseg label import` of tiny hand-made exports of frames 0 and 1 of the fake DAVIS ``squares-a``
(64×48): COCO image ids, LabelMe group ids, the duplicate-object check, MOTS's ignored regions.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import write_moving_squares

from frugalseg.cli import main

DUPLICATE = "an object is one annotation, track or region per frame: give one of them its own id"


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_squares(tmp_path_factory.mktemp("davis"))


def _import(file: Path, tool: str, root: Path, store: Path, *maps: str) -> int:
    args = ["label", "import", str(file), "--tool", tool, "--format", "davis", "--root", str(root)]
    return main([*args, "--out", str(store), *(f for m in maps for f in ("--map", m))])


def _refused(file: Path, tool: str, root: Path, tmp_path: Path, capsys, problem: str, *maps: str) -> None:
    """The import of ``file`` fails with the one line ``error: <file>: <problem>`` and writes no store."""
    store = tmp_path / "store"
    code = _import(file, tool, root, store, *maps)
    assert capsys.readouterr().err.splitlines() == [f"error: {file}: {problem}"]
    assert code == 2
    assert not store.exists()


def _read(store: Path, frame: int, suffix: str) -> np.ndarray:
    return cv2.imread(str(store / f"train/squares-a/{frame:05d}_fine_{suffix}.png"), cv2.IMREAD_UNCHANGED)


def _ring(x0: int, y0: int, x1: int, y1: int) -> list[int]:
    """A COCO polygon of the box of pixels x0 ≤ x < x1, y0 ≤ y < y1."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _coco(tmp_path: Path, annotations: list[dict], images: list[dict] | None = None) -> Path:
    """A COCO file of frame 0 of squares-a (image 1), categories swan (1), bird (2) and rock (3)."""
    images = images or [{"id": 1, "file_name": "squares-a/00000.jpg", "width": 64, "height": 48}]
    categories = [{"id": 1, "name": "swan"}, {"id": 2, "name": "bird"}, {"id": 3, "name": "rock"}]
    listed = [{"id": n, "image_id": 1, "iscrowd": 0, **a} for n, a in enumerate(annotations, start=1)]
    path = tmp_path / "coco.json"
    path.write_text(json.dumps({"images": images, "annotations": listed, "categories": categories}), "utf-8")
    return path


def test_two_coco_images_of_one_id_are_refused(davis, tmp_path, capsys):
    """Image 1 twice: annotation 1 would land on either frame (the last one read, before)."""
    images = [{"id": 1, "file_name": f"squares-a/{n:05d}.jpg", "width": 64, "height": 48} for n in (0, 1)]
    coco = _coco(tmp_path, [{"category_id": 1, "segmentation": [_ring(4, 8, 16, 20)]}], images)
    expected = (
        "image 1 (squares-a/00000.jpg) and image 1 (squares-a/00001.jpg) have the same id: "
        "give each image its own"
    )
    _refused(coco, "coco", davis, tmp_path, capsys, expected, "swan=object")


def test_one_track_id_under_two_coco_labels_of_one_class_is_refused(davis, tmp_path, capsys):
    """track_id 3 on a swan and on a bird, both mapped to object: one object 4 of two annotations."""
    coco = _coco(tmp_path, [
        {"category_id": 1, "segmentation": [_ring(4, 8, 16, 20)], "attributes": {"track_id": 3}},
        {"category_id": 2, "segmentation": [_ring(40, 20, 52, 30)], "attributes": {"track_id": 3}},
    ])  # fmt: skip
    expected = (
        f"image 1 (squares-a/00000.jpg): annotation 1 (image 1) ('swan') and annotation 2 (image 1) ('bird') "
        f"are both object 4; {DUPLICATE}"
    )
    _refused(coco, "coco", davis, tmp_path, capsys, expected, "swan=object", "bird=object")


def test_a_coco_position_that_is_another_annotations_track_is_refused(davis, tmp_path, capsys):
    """track_id 1 is object 2; the second annotation, without track_id, is object 2 by its position."""
    coco = _coco(tmp_path, [
        {"category_id": 1, "segmentation": [_ring(4, 8, 16, 20)], "attributes": {"track_id": 1}},
        {"category_id": 2, "segmentation": [_ring(40, 20, 52, 30)]},
    ])  # fmt: skip
    expected = (
        f"image 1 (squares-a/00000.jpg): annotation 1 (image 1) ('swan') and annotation 2 (image 1) ('bird') "
        f"are both object 2; {DUPLICATE}"
    )
    _refused(coco, "coco", davis, tmp_path, capsys, expected, "swan=object", "bird=object")


def test_an_object_id_shared_with_a_region_mapped_to_ignore_is_accepted(davis, tmp_path):
    """A shape mapped to ignore makes no object: its id is no second annotation of object 4."""
    coco = _coco(tmp_path, [
        {"category_id": 1, "segmentation": [_ring(4, 8, 16, 20)], "attributes": {"track_id": 3}},
        {"category_id": 3, "segmentation": [_ring(40, 20, 52, 30)], "attributes": {"track_id": 3}},
    ])  # fmt: skip
    store = tmp_path / "store"
    assert _import(coco, "coco", davis, store, "swan=object", "rock=ignore") == 0
    label, ids = _read(store, 0, "labelTrainIds"), _read(store, 0, "instanceIds")
    assert (label[8:20, 4:16] == 1).all() and (label[20:30, 40:52] == 255).all()
    assert np.unique(label, return_counts=True)[1].tolist() == [48 * 64 - 144 - 120, 144, 120]
    assert (ids[8:20, 4:16] == 4).all()
    assert np.unique(ids, return_counts=True)[1].tolist() == [48 * 64 - 144, 144]


def _labelme(folder: Path, frame: int, *shapes: dict) -> None:
    folder.mkdir(exist_ok=True)
    data = {"imagePath": f"squares-a/{frame:05d}.jpg", "imageHeight": 48, "imageWidth": 64,
            "shapes": list(shapes)}  # fmt: skip
    (folder / f"{frame:05d}.json").write_text(json.dumps(data), encoding="utf-8")


def _square(x0: int, y0: int, x1: int, y1: int, group: int | None) -> dict:
    points = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    return {"label": "swan", "points": points, "shape_type": "polygon", "group_id": group}


def test_a_labelme_group_is_one_object_on_every_frame(davis, tmp_path):
    """group_id g is object g + 1 in every file; an ungrouped shape takes the smallest id no group takes.

    Before, groups were numbered per file: group 1 was object 2 on frame 0 and 4 on frame 1 (after the
    file's shapes), group 0 object 5, and the ungrouped shape 2, its position.
    """
    folder = tmp_path / "labelme"
    _labelme(folder, 0, _square(4, 8, 16, 20, 1))
    _labelme(folder, 1, _square(6, 8, 18, 20, 1), _square(50, 2, 60, 6, None), _square(40, 21, 52, 31, 0))
    store = tmp_path / "store"
    assert _import(folder, "labelme", davis, store, "swan=object") == 0
    first, second = _read(store, 0, "instanceIds"), _read(store, 1, "instanceIds")
    assert (first[8:20, 4:16] == 2).all()
    assert np.unique(first, return_counts=True)[1].tolist() == [48 * 64 - 144, 144]
    assert (second[8:20, 6:18] == 2).all() and (second[21:31, 40:52] == 1).all()
    assert (second[2:6, 50:60] == 3).all()
    assert np.unique(second, return_counts=True)[0].tolist() == [0, 1, 2, 3]
    assert np.unique(second, return_counts=True)[1].tolist() == [48 * 64 - 120 - 144 - 40, 120, 144, 40]


@pytest.mark.parametrize("group", [-1, "1", 1.5, True, 65535])
def test_a_labelme_group_id_that_is_no_object_id_is_refused(davis, tmp_path, capsys, group):
    _labelme(tmp_path, 0, _square(4, 8, 16, 20, group))
    file = tmp_path / "00000.json"
    expected = f"shape 1: group_id {group!r} is not a whole number from 0 to 65534"
    _refused(file, "labelme", davis, tmp_path, capsys, expected, "swan=object")


def test_a_mots_ignored_region_is_ignore_not_background(davis, tmp_path):
    """MOTS's 10000 is an ignored region: 255 in the label (it was background, 0), no object's id."""
    folder = tmp_path / "mots"
    (folder / "squares-a").mkdir(parents=True)
    (folder / "labels.txt").write_text("swan\n", encoding="utf-8")
    ids = np.zeros((48, 64), np.uint16)
    ids[8:20, 4:16] = 1001
    ids[30:40, 50:60] = 10000
    cv2.imwrite(str(folder / "squares-a" / "00000.png"), ids)
    store = tmp_path / "store"
    assert _import(folder, "mots", davis, store, "swan=object") == 0
    label, instances = _read(store, 0, "labelTrainIds"), _read(store, 0, "instanceIds")
    assert (label[30:40, 50:60] == 255).all() and (label[8:20, 4:16] == 1).all()
    assert np.unique(label, return_counts=True)[0].tolist() == [0, 1, 255]
    assert np.unique(label, return_counts=True)[1].tolist() == [48 * 64 - 144 - 100, 144, 100]
    assert (instances[30:40, 50:60] == 0).all()
    assert np.unique(instances, return_counts=True)[1].tolist() == [48 * 64 - 144, 144]
    assert (instances[8:20, 4:16] == 1001).all()
