"""The tools' own conventions: CVAT's frame names of video tasks, object ids counted from 0, and how a
polygon becomes pixels (pycocotools, as CVAT's and Label Studio's exports leave it)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import write_moving_squares
from data.fake_video import numbered_frame, write_video

from frugalseg.autolabel.store import LabelStore, instances_path
from frugalseg.data.formats import get_format
from frugalseg.errors import ConfigError, DataError
from frugalseg.interop import ClassMapping, import_export, read_export

#: The square (2, 2)–(6, 5) as pycocotools rasterises it: pixel edges at integers, 4 × 3 pixels.
SQUARE = [2, 2, 6, 2, 6, 5, 2, 5]


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_squares(tmp_path_factory.mktemp("davis"))


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "car.mp4", [numbered_frame(i) for i in range(6)])


def _cvat_coco(path: Path, file_name: str, size: tuple[int, int], track_ids: list[int | None]) -> Path:
    """A COCO file as CVAT exports a video task: frames ``frame_NNNNNN.PNG``, ``track_id`` from 0."""
    annotations = [
        {"id": k + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1,
         "segmentation": [[v + 10 * k for v in SQUARE]],
         "attributes": {"occluded": False, "track_id": track, "keyframe": True}}
        for k, track in enumerate(track_ids)
    ]  # fmt: skip
    image = {"id": 1, "file_name": file_name, "width": size[1], "height": size[0]}
    categories = [{"id": 1, "name": "object", "supercategory": ""}]
    path.write_text(json.dumps({"images": [image], "annotations": annotations, "categories": categories}))
    return path


def _expected_ids(size: tuple[int, int], ids: list[int]) -> np.ndarray:
    """The instance map of squares k = 0, 1 … (moved by 10 k pixels) holding ids ``ids``."""
    expected = np.zeros(size, np.uint8)
    for k, instance in enumerate(ids):
        expected[2 + 10 * k : 5 + 10 * k, 2 + 10 * k : 6 + 10 * k] = instance
    return expected


@pytest.mark.parametrize("root", ["video", "frame-folder"])
def test_cvat_frame_names_of_a_video_task_are_frame_numbers(root, video, davis, tmp_path):
    fmt = get_format("video", video if root == "video" else davis / "JPEGImages/480p/squares-a")
    size = (64, 128) if root == "video" else (48, 64)
    coco = _cvat_coco(tmp_path / "coco.json", "frame_000003.PNG", size, [0, 1])
    store = LabelStore(tmp_path / "store")
    import_export(read_export("coco", coco), fmt, "all", store, ClassMapping(fmt.class_names))
    (record,) = store.records()
    assert (record["clip_id"], record["offset"]) == (fmt.sequences("all")[0], 3)
    ids = cv2.imread(str(instances_path(store.root / record["path"])), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ids, _expected_ids(size, [1, 2]))  # track_id 0 → object 1, 1 → 2


def test_cvat_frame_names_need_the_clip_among_several_and_a_frame_of_it(davis, tmp_path):
    fmt = get_format("davis", davis)
    mapping = ClassMapping(fmt.class_names)
    coco = _cvat_coco(tmp_path / "coco.json", "frame_000004.PNG", (48, 64), [0])
    with pytest.raises(
        ConfigError, match=r"--clip: .*coco.json: the video's clip is not known \(the file names"
    ):
        import_export(read_export("coco", coco), fmt, "train", LabelStore(tmp_path / "a"), mapping)
    import_export(
        read_export("coco", coco), fmt, "train", LabelStore(tmp_path / "b"), mapping, clip="squares-b"
    )
    (record,) = LabelStore(tmp_path / "b").records()
    assert (record["clip_id"], record["offset"]) == ("squares-b", 4)
    past = _cvat_coco(tmp_path / "past.json", "frame_000010.PNG", (48, 64), [0])
    with pytest.raises(
        DataError, match=r"past.json: image 1 \(frame_000010.PNG\): past the end of clip squares-a"
    ):
        import_export(
            read_export("coco", past), fmt, "train", LabelStore(tmp_path / "c"), mapping, clip="squares-a"
        )
    for name in ("frame_04.PNG", "img_000004.PNG"):  # not CVAT's names: still refused
        other = _cvat_coco(tmp_path / "other.json", name, (48, 64), [0])
        with pytest.raises(DataError, match=f"no frame of the data set is named '{name}'"):
            import_export(read_export("coco", other), fmt, "train", LabelStore(tmp_path / "d"), mapping)
    assert not any((tmp_path / p).exists() for p in "acd")


def test_coco_track_ids_count_from_0_and_other_ids_stay(tmp_path):
    coco = _cvat_coco(tmp_path / "coco.json", "a.jpg", (48, 64), [0, 5, None])
    shapes = read_export("coco", coco).frames[0].shapes
    assert [shape.instance_id for shape in shapes] == [1, 6, None]
    data = json.loads(coco.read_text())
    for annotation in data["annotations"]:
        del annotation["attributes"]["track_id"]
    coco.write_text(json.dumps(data))
    assert [shape.instance_id for shape in read_export("coco", coco).frames[0].shapes] == [
        1,
        2,
        3,
    ]  # positions
    data["annotations"][0]["attributes"]["track_id"] = -1
    coco.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"coco.json: annotation 1 \(image 1\): track_id -1 is negative"):
        read_export("coco", coco)
