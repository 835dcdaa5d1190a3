"""The tools' own conventions: CVAT's frame names of video tasks, object ids counted from 0, and how a
polygon becomes pixels (pycocotools, as CVAT's and Label Studio's exports leave it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import write_moving_squares
from data.fake_video import numbered_frame, write_video

from frugalseg.autolabel.boxes import boxes_json_path
from frugalseg.autolabel.store import LabelStore, instances_path
from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.errors import ConfigError, DataError
from frugalseg.interop import ClassMapping, import_export, read_export
from frugalseg.interop.raster import rasterize

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
    path.write_text(
        json.dumps({"images": [image], "annotations": annotations, "categories": categories}),
        encoding="utf-8",
    )
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
        in_train = rf"is named '{name}' in split 'train' \(the file is of another video's or data set's " + (
            r"frames, or another split's: give --split\)"
        )
        with pytest.raises(DataError, match=in_train):
            import_export(read_export("coco", other), fmt, "train", LabelStore(tmp_path / "d"), mapping)
    assert not any((tmp_path / p).exists() for p in "acd")


def test_coco_track_ids_count_from_0_and_other_ids_stay(tmp_path):
    coco = _cvat_coco(tmp_path / "coco.json", "a.jpg", (48, 64), [0, 5, None])
    shapes = read_export("coco", coco).frames[0].shapes
    assert [shape.instance_id for shape in shapes] == [1, 6, None]
    data = json.loads(coco.read_text(encoding="utf-8"))
    for annotation in data["annotations"]:
        del annotation["attributes"]["track_id"]
    coco.write_text(json.dumps(data), encoding="utf-8")
    assert [shape.instance_id for shape in read_export("coco", coco).frames[0].shapes] == [
        1,
        2,
        3,
    ]  # positions
    data["annotations"][0]["attributes"]["track_id"] = -1
    coco.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"coco.json: annotation 1 \(image 1\): track_id -1 is negative"):
        read_export("coco", coco)


def _video_task(video: str, tracks: list[list[dict]], frames_count: int = 7) -> dict:
    """A Label Studio video task as its export holds it: one ``videorectangle`` result per track."""
    result = [
        {"id": f"t{k}", "type": "videorectangle", "from_name": "box", "to_name": "video", "origin": "manual",
         "value": {"framesCount": frames_count, "duration": frames_count / 24, "labels": ["object"],
                   "sequence": [{"rotation": 0, "time": item["frame"] / 24, **item} for item in sequence]}}
        for k, sequence in enumerate(tracks)
    ]  # fmt: skip
    return {"id": 7, "data": {"video": video}, "annotations": [{"id": 1, "result": result}]}


#: Track 1 moves and shrinks from LS frame 1 to 5, then lasts; track 2 shows on frame 2 alone
#: (a disabled keyframe), then from frame 4 on. Percent of a 128 × 64 frame.
TRACKS = [
    [{"frame": 1, "enabled": True, "x": 12.5, "y": 12.5, "width": 25, "height": 50},
     {"frame": 5, "enabled": True, "x": 37.5, "y": 12.5, "width": 25, "height": 25}],
    [{"frame": 2, "enabled": False, "x": 50, "y": 50, "width": 25, "height": 25},
     {"frame": 4, "enabled": True, "x": 50, "y": 50, "width": 12.5, "height": 12.5}],
]  # fmt: skip
#: Clip frame → (x0, y0, x1, y1) in pixels of each track drawn there, worked out by hand: between
#: keyframes every property moves linearly (frame 2 of track 1: x = 12.5 + 25 · 1/4 = 18.75 % = 24 px).
EXPECTED = {
    0: {1: (16, 8, 48, 40)},
    1: {1: (24, 8, 56, 36), 2: (64, 32, 96, 48)},
    2: {1: (32, 8, 64, 32)},
    3: {1: (40, 8, 72, 28), 2: (64, 32, 80, 40)},
    4: {1: (48, 8, 80, 24), 2: (64, 32, 80, 40)},
    5: {1: (48, 8, 80, 24), 2: (64, 32, 80, 40)},
}  # LS frame 7 (framesCount, one past the 6-frame clip, as its editor's rounding counts) is left out


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name in ("bike", "car"):
        write_video(folder / f"{name}.mp4", [numbered_frame(i) for i in range(6)])
    return folder


def test_label_studio_video_task_gives_the_boxes_its_editor_draws(videos, tmp_path):
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([_video_task("/data/upload/3/1a2b3c4d-bike.mp4", TRACKS)]), encoding="utf-8")
    fmt = get_format("video", videos)
    store = LabelStore(tmp_path / "store")
    summary = import_export(
        read_export("label-studio", tasks), fmt, "all", store, ClassMapping(fmt.class_names)
    )
    assert summary.written == {"boxes": 6}
    for record in store.records():
        assert (record["clip_id"], record["kind"]) == ("bike", "boxes")
        boxes = EXPECTED[record["offset"]]
        label = cv2.imread(str(store.root / record["path"]), cv2.IMREAD_UNCHANGED)
        ids = cv2.imread(str(instances_path(store.root / record["path"])), cv2.IMREAD_UNCHANGED)
        expected_ids = np.zeros((64, 128), np.uint8)
        for instance, (x0, y0, x1, y1) in boxes.items():
            expected_ids[y0:y1, x0:x1] = instance
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(label, np.where(expected_ids > 0, 1, 255))
        written = json.loads(boxes_json_path(store.root / record["path"]).read_text(encoding="utf-8"))[
            "boxes"
        ]
        assert {b["instance_id"]: (b["x0"], b["y0"], b["x1"], b["y1"]) for b in written} == boxes


def test_label_studio_video_task_that_names_no_clip_says_what_it_must_hold(videos, tmp_path):
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([_video_task("/data/upload/3/1a2b3c4d-clip.mp4", TRACKS)]), encoding="utf-8")
    fmt = get_format("video", videos)
    with pytest.raises(
        DataError,
        match=r"tasks.json: task 7 frame 1: its video 'clip.mp4' is no clip of the split \(bike, car\): "
        r"a video task must name a clip's video file \(car-shadow.mp4 for clip car-shadow\), or --clip",
    ):
        import_export(read_export("label-studio", tasks), fmt, "all", LabelStore(tmp_path / "s"),
                      ClassMapping(fmt.class_names))  # fmt: skip
    assert not (tmp_path / "s").exists()
    tasks.write_text(json.dumps([{"id": 3, "data": {}, "annotations": []}]), encoding="utf-8")
    with pytest.raises(
        DataError, match=r"task 3: its data names no image or video \(a task holds data.image or"
    ):
        read_export("label-studio", tasks)


def test_label_studio_video_task_of_a_real_clip(shared_data, tmp_path):
    """car-shadow.mp4 (854 × 480, 40 frames): a box from LS frame 1 to 11, read at frame 5 (clip frame 4)."""
    track = [{"frame": 1, "enabled": True, "x": 10, "y": 20, "width": 30, "height": 40},
             {"frame": 11, "enabled": False, "x": 20, "y": 30, "width": 30, "height": 40}]  # fmt: skip
    tasks = tmp_path / "tasks.json"
    tasks.write_text(
        json.dumps([_video_task("/data/upload/1/0123abcd-car-shadow.mp4", [track], 40)]), encoding="utf-8"
    )
    fmt = get_format("video", shared_data / "video_dev/car-shadow.mp4")
    store = LabelStore(tmp_path / "store")
    import_export(read_export("label-studio", tasks), fmt, "all", store, ClassMapping(fmt.class_names))
    assert [r["offset"] for r in store.records()] == list(range(11))
    frame = next(r for r in store.records() if r["offset"] == 4)
    label = cv2.imread(str(store.root / frame["path"]), cv2.IMREAD_UNCHANGED)
    # x = 10 + 10 · 4/10 = 14 % → 119.56 px, y = 24 % → 115.2 px; the box covers the pixels it touches
    rows, cols = np.nonzero(label == 1)
    assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (119, 115, 376, 308)


#: The triangle (1, 1), (7, 1), (1, 5) on a 10 × 8 frame as pycocotools fills it: the pixels whose
#: centres lie inside, 12 of them, its area (OpenCV's fillPoly of the same vertices fills 21).
TRIANGLE = [[1, 1], [7, 1], [1, 5]]
TRIANGLE_PIXELS = [(1, range(1, 6)), (2, range(1, 5)), (3, range(1, 3)), (4, range(1, 2))]


def _polygon_files(folder: Path) -> dict[str, Path]:
    """The triangle as CVAT for images, COCO, Label Studio and labelme write a polygon."""
    points = ";".join(f"{x},{y}" for x, y in TRIANGLE)
    files = {"cvat-images": folder / "cvat.xml", "coco": folder / "coco.json",
             "label-studio": folder / "ls.json", "labelme": folder / "labelme.json"}  # fmt: skip
    files["cvat-images"].write_text(
        f'<annotations><image id="0" name="a.jpg" width="10" height="8">'
        f'<polygon label="object" points="{points}" z_order="0"/></image></annotations>',
        encoding="utf-8",
    )
    flat = [float(v) for point in TRIANGLE for v in point]
    image = {"id": 1, "file_name": "a.jpg", "width": 10, "height": 8}
    annotation = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [flat], "iscrowd": 0}
    categories = [{"id": 1, "name": "object"}]
    files["coco"].write_text(
        json.dumps({"images": [image], "annotations": [annotation], "categories": categories}),
        encoding="utf-8",
    )
    percent = [[x * 10.0, y * 12.5] for x, y in TRIANGLE]
    result = {"type": "polygonlabels", "original_width": 10, "original_height": 8,
              "value": {"points": percent, "polygonlabels": ["object"]}}  # fmt: skip
    task = {
        "id": 1,
        "data": {"image": "/data/upload/1/0123abcd-a.jpg"},
        "annotations": [{"result": [result]}],
    }
    files["label-studio"].write_text(json.dumps([task]), encoding="utf-8")
    shape = {"label": "object", "points": TRIANGLE, "shape_type": "polygon", "group_id": None}
    files["labelme"].write_text(json.dumps({"imagePath": "a.jpg", "imageHeight": 8, "imageWidth": 10,
                                            "shapes": [shape]}), encoding="utf-8")  # fmt: skip
    return files


@pytest.mark.parametrize("tool", ["cvat-images", "coco", "label-studio", "labelme"])
def test_polygons_are_filled_as_pycocotools_fills_them(tool, tmp_path):
    export = read_export(tool, _polygon_files(tmp_path)[tool])
    (frame,) = export.frames
    label = rasterize(frame, (8, 10), [1])[LabelKind.FINE].label
    expected = np.full((8, 10), 255, np.uint8)
    for row, cols in TRIANGLE_PIXELS:
        expected[row, list(cols)] = 1
    np.testing.assert_array_equal(label, expected)
    filled = np.zeros((8, 10), np.uint8)
    cv2.fillPoly(filled, [np.array(TRIANGLE, np.int32)], 1)
    assert (expected == 1).sum() == 12 and filled.sum() == 21


@pytest.mark.skipif(
    sys.getfilesystemencoding().lower().replace("-", "") != "utf8",
    reason="file names beyond ASCII need a UTF-8 file system encoding (this one is ASCII: the C locale)",
)
def test_a_frame_name_macos_wrote_decomposed_is_the_frame_held_composed(davis, tmp_path):
    """COCO's ``file_name`` in NFD (``u`` + U+0308, as macOS writes ``ü``) had matched no frame of the
    folder, whose names Linux holds as written (NFC): both look alike, so the refusal puzzled."""
    folder = tmp_path / "frames"
    folder.mkdir()
    source = davis / "JPEGImages/480p/squares-a"
    for k in range(3):
        (folder / f"\u00fcn\u00ef {k}.jpg").write_bytes((source / f"{k:05d}.jpg").read_bytes())
    fmt = get_format("video", folder)
    coco = _cvat_coco(tmp_path / "coco.json", "u\u0308ni\u0308 2.jpg", (48, 64), [0])
    store = LabelStore(tmp_path / "store")
    import_export(read_export("coco", coco), fmt, "all", store, ClassMapping(fmt.class_names))
    (record,) = store.records()
    assert record["offset"] == 2


def test_a_name_of_no_frame_of_a_video_s_only_split_does_not_ask_for_another_split(tmp_path):
    """A COCO file of another video onto a folder of frames (split 'all', the only one) had said "(a frame of
    another: give --split)"."""
    from frugalseg.data.clips import Clip
    from frugalseg.interop.stores import FrameIndex

    clip = Clip("mine", "all", [tmp_path / "frame_0001.jpg", tmp_path / "frame_0002.jpg"], 0)
    with pytest.raises(DataError) as refused:
        FrameIndex([clip]).by_name("car-shadow.mp4/00000.png", tmp_path / "coco.json", "image 1")
    assert str(refused.value).endswith(
        "image 1: no frame of the data set is named 'car-shadow.mp4/00000.png' in split 'all' (the file is "
        "of another video's or data set's frames)"
    )


@pytest.mark.parametrize(("tracks", "maps"), [([0], True), ([None], False)])
def test_a_frame_without_objects_of_a_file_of_objects_gets_its_empty_instance_map(
    davis, tmp_path, tracks, maps
):
    """The object left the frame: `annotate export` wrote its frame's instance map (all 0), and the import of
    the tool's file gave none, so `annotate add --mask` had no file for that frame."""
    fmt = get_format("video", davis / "JPEGImages/480p/squares-a")
    from frugalseg.interop.shapes import Frame

    export = read_export("coco", _cvat_coco(tmp_path / "coco.json", "frame_000003.PNG", (48, 64), tracks))
    export.frames.append(Frame("frame_000004.PNG", (48, 64), element="image 2", empty=True))  # all deleted
    store = LabelStore(tmp_path / "store")
    import_export(export, fmt, "all", store, ClassMapping(fmt.class_names), background="background")
    empty = {r["offset"]: store.root / r["path"] for r in store.records()}[4]
    assert (cv2.imread(str(empty), cv2.IMREAD_UNCHANGED) == 0).all()
    assert instances_path(empty).is_file() is maps
    if maps:
        assert (cv2.imread(str(instances_path(empty)), cv2.IMREAD_UNCHANGED) == 0).all()
