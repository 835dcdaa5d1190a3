"""Placing an export's frames in a data set, mapping its labels, and what a failed import leaves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data.fake_davis import write_moving_squares

from frugalseg.active.objects.session.given import read_clicks
from frugalseg.autolabel.boxes import boxes_json_path
from frugalseg.autolabel.clicks import clicks_json_path
from frugalseg.autolabel.store import LabelStore
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import get_format
from frugalseg.errors import ConfigError, DataError
from frugalseg.interop import ClassMapping, Frame, Shape, ToolExport, import_export, read_mapping
from frugalseg.interop.label_studio import read_label_studio
from frugalseg.interop.raster import rasterize


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_squares(tmp_path_factory.mktemp("davis"))


def _square(label: str, element: str = "shape 1") -> Shape:
    return Shape("polygon", label, element, np.array([[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]]))


def test_mapping_by_name_case_file_and_ignore(tmp_path):
    mapping = ClassMapping(["background", "road", "car"], {"Car": "car", "sky": "ignore", "parked": "road"})
    path = Path("x.json")
    names = ("Car", "CAR", "background", "sky", "parked", "road")
    assert [mapping.train_id(n, path, "e") for n in names] == [2, 2, 0, 255, 1, 1]
    with pytest.raises(  # the file's labels, not the --map names it lacks
        DataError, match=r"x.json: e: label 'tree' maps to no class; .* labels are 'tree', 'Car': map"
    ):
        mapping.train_id("tree", path, "e", ["tree", "Car"])
    with pytest.raises(ConfigError, match="--map: 'a' maps to 'b', not a class"):
        ClassMapping(["background"], {"a": "b"})
    (tmp_path / "m.json").write_text(json.dumps({"Car": "object"}), encoding="utf-8")
    (tmp_path / "m.txt").write_text("# tool = class\nparked car = object\n\nsky=ignore\n", encoding="utf-8")
    assert read_mapping(tmp_path / "m.json") == {"Car": "object"}
    assert read_mapping(tmp_path / "m.txt") == {"parked car": "object", "sky": "ignore"}


def test_on_an_object_data_set_any_name_is_an_object_s() -> None:
    """The page's export names a renamed object ("car"): its own re-import had asked for --map car=object."""
    mapping = ClassMapping(["background", "object"], {"sky": "ignore", "water": "background"})
    path = Path("x.json")
    names = ("car", "Object", "background", "sky", "water", "dog")
    assert [mapping.train_id(n, path, "e") for n in names] == [1, 1, 0, 255, 0, 1]
    with pytest.raises(DataError, match="x.json: e: the shape has no label"):
        mapping.train_id("", path, "e")


def test_coarse_kind_and_background(davis, tmp_path):
    frame = Frame("squares-a/00003.jpg", (48, 64), [_square("object")], "image 1")
    export = ToolExport(tmp_path / "e.json", "coco", [frame], ("object",))
    fmt = get_format("davis", davis)
    store = LabelStore(tmp_path / "store")
    mapping = ClassMapping(fmt.class_names)
    summary = import_export(
        export, fmt, "train", store, mapping, dense_kind=LabelKind.COARSE, background="background"
    )
    assert summary.written == {"coarse": 1}
    (record,) = store.records()
    assert (record["clip_id"], record["offset"], record["kind"], record["engine"]) == (
        "squares-a",
        3,
        "coarse",
        "import",
    )
    labels = rasterize(frame, (48, 64), [1], dense_kind=LabelKind.COARSE, background=0)[
        LabelKind.COARSE
    ].label
    assert labels[2:6, 2:6].all() and (labels[2:6, 2:6] == 1).all() and (labels == 0).sum() == 48 * 64 - 16
    assert IGNORE_INDEX not in labels


def test_two_exported_frames_that_are_one_frame(davis, tmp_path):
    frames = [Frame("squares-a/00001.jpg", None, [_square("object")], "image 1"),
              Frame("480p/squares-a/00001.png", None, [_square("object")], "image 2")]  # fmt: skip
    export = ToolExport(tmp_path / "e.json", "coco", frames, ("object",))
    fmt = get_format("davis", davis)
    with pytest.raises(
        DataError,
        match=r"e.json: image 1 and image 2 are the same frame .*squares-a/00001.jpg: keep one of them in "
        r"the tool \(delete the other, or its annotation\) and export again$",
    ):
        import_export(export, fmt, "train", LabelStore(tmp_path / "out"), ClassMapping(fmt.class_names))
    assert not (tmp_path / "out").exists()


def test_a_failure_while_writing_leaves_no_store(davis, tmp_path, monkeypatch):
    frames = [Frame(f"squares-a/0000{t}.jpg", None, [_square("object")], f"image {t}") for t in (1, 2)]
    export = ToolExport(tmp_path / "e.json", "coco", frames, ("object",))
    fmt = get_format("davis", davis)
    calls = []

    def write(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    original = LabelStore.write
    monkeypatch.setattr(LabelStore, "write", write)
    with pytest.raises(OSError, match="disk full"):
        import_export(export, fmt, "train", LabelStore(tmp_path / "out"), ClassMapping(fmt.class_names))
    assert not (tmp_path / "out").exists()


def test_a_failed_import_keeps_a_store_another_run_joined(davis, tmp_path, monkeypatch):
    frames = [Frame(f"squares-a/0000{t}.jpg", None, [_square("object")], f"image {t}") for t in (1, 2)]
    export = ToolExport(tmp_path / "e.json", "coco", frames, ("object",))
    fmt = get_format("davis", davis)
    joined = []

    def write(self, *args, **kwargs):
        if joined:
            raise OSError("disk full")
        other = LabelStore(self.root)  # a second import of the same file, started meanwhile
        other.open_run(json.loads(other.run_path.read_text(encoding="utf-8")))
        joined.append(other)
        return original(self, *args, **kwargs)

    original = LabelStore.write
    monkeypatch.setattr(LabelStore, "write", write)
    with pytest.raises(OSError, match="disk full"):
        import_export(export, fmt, "train", LabelStore(tmp_path / "out"), ClassMapping(fmt.class_names))
    assert [r["offset"] for r in LabelStore(tmp_path / "out").records()] == [1]


def test_a_video_export_of_an_unknown_clip_lists_the_clips(davis, tmp_path):
    frame = Frame(3, None, [_square("object")], "frame 3")
    export = ToolExport(tmp_path / "e.xml", "cvat-video", [frame], ("object",), video="other.mp4")
    fmt = get_format("davis", davis)
    with pytest.raises(
        ConfigError,
        match=r"--clip: .*e.xml: the video's clip is not known \(asked 'other'\); .*squares-a, squares-b",
    ):
        import_export(export, fmt, "train", LabelStore(tmp_path / "out"), ClassMapping(fmt.class_names))
    summary = import_export(
        export, fmt, "train", LabelStore(tmp_path / "out"), ClassMapping(fmt.class_names), clip="squares-b"
    )
    assert summary.written == {"fine": 1}
    assert (tmp_path / "out/train/squares-b/00003_fine_labelTrainIds.png").is_file()


def test_instance_ids_past_254_are_kept_in_16_bits(davis, tmp_path):
    import cv2

    shape = _square("object")
    shape.instance_id = 4003  # a MOTS object id
    export = ToolExport(
        tmp_path / "e", "mots", [Frame("squares-b/00002.png", (48, 64), [shape], "1")], ("object",)
    )
    fmt = get_format("davis", davis)
    import_export(export, fmt, "train", LabelStore(tmp_path / "out"), ClassMapping(fmt.class_names))
    ids = cv2.imread(str(tmp_path / "out/train/squares-b/00002_fine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    assert (
        ids.dtype == np.uint16 and set(np.unique(ids).tolist()) == {0, 4003} and (ids[2:6, 2:6] == 4003).all()
    )


def test_an_export_without_shapes_writes_no_store(davis, tmp_path):
    fmt = get_format("davis", davis)
    export = ToolExport(tmp_path / "empty.json", "coco", [], ())
    with pytest.raises(DataError, match=r"empty.json: holds no shapes to import \(read as coco\)"):
        import_export(export, fmt, "train", LabelStore(tmp_path / "out"), ClassMapping(fmt.class_names))
    assert not (tmp_path / "out").exists()


def test_shapes_mapped_to_ignore_unlabel_their_pixels_and_are_not_listed():
    points = Shape("points", "sky", "p", np.array([[1.0, 1.0]]), instance_id=3)
    box = Shape("box", "sky", "b", np.array([[2.0, 2.0], [4.0, 4.0]]), instance_id=4)
    kept = Shape("points", "car", "q", np.array([[5.0, 5.0]]), instance_id=5)
    frame = Frame("f.png", (8, 8), [kept, points, box], "f")
    made = rasterize(frame, (8, 8), [1, IGNORE_INDEX, IGNORE_INDEX])
    clicks, boxes = made[LabelKind.CLICKS], made[LabelKind.BOXES]
    assert [(c.x, c.y, c.train_id) for c in clicks.clicks] == [(5, 5, 1)] and boxes.boxes == []
    assert (boxes.label == IGNORE_INDEX).all() and clicks.label[1, 1] == IGNORE_INDEX
    assert clicks.instances is not None and clicks.instances[1, 1] == 0 and clicks.instances[5, 5] == 5


def _keypoint(
    result_id: str, x: float, y: float, label: str = "object", positive: bool | None = None
) -> dict:
    """A keypoint as Label Studio's editor exports it on a 64×48 frame (``is_positive`` for smart ones)."""
    value = {"x": x * 100 / 64, "y": y * 100 / 48, "width": 1, "keypointlabels": [label]}
    result = {"id": result_id, "type": "keypointlabels", "from_name": "click", "to_name": "image",
              "original_width": 64, "original_height": 48, "value": value}  # fmt: skip
    return result if positive is None else {**result, "is_positive": positive}


def _ls_task(task_id: int, frame: str, results: list[dict]) -> dict:
    return {"id": task_id, "data": {"image": f"/data/local-files/?d={frame}"},
            "annotations": [{"id": task_id, "result": results, "was_cancelled": False}]}  # fmt: skip


def test_label_studio_keypoints_of_one_label_are_one_objects_and_negative_ones_negative(davis, tmp_path):
    """As the ML backend reads them: smart keypoints (two positive, one negative) and a keypoint beside the
    rectangle of its label had imported as one new object each, every one positive."""
    rectangle = {"id": "r1", "type": "rectanglelabels", "from_name": "box", "to_name": "image",
                 "original_width": 64, "original_height": 48,
                 "value": {"x": 12.5, "y": 12.5, "width": 25.0, "height": 25.0, "rotation": 0,
                           "rectanglelabels": ["object"]}}  # fmt: skip
    tasks = [
        _ls_task(
            1,
            "squares-a/00001.jpg",
            [
                _keypoint("a1", 10.5, 12.5, positive=True),
                _keypoint("a2", 20.5, 14.5, positive=True),
                _keypoint("a3", 40.5, 30.5, positive=False),
            ],
        ),  # fmt: skip
        _ls_task(2, "squares-a/00002.jpg", [rectangle, _keypoint("b1", 12.5, 14.5)]),
        _ls_task(
            3, "squares-a/00003.jpg", [_keypoint("c1", 10.5, 12.5), _keypoint("c2", 50.5, 40.5, "background")]
        ),  # fmt: skip
    ]
    path = tmp_path / "project.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    fmt = get_format("davis", davis)
    store = LabelStore(tmp_path / "out")
    import_export(read_label_studio(path), fmt, "train", store, ClassMapping(fmt.class_names))
    clicks = {
        t: [(c["x"], c["y"], c["train_id"], c["instance_id"]) for c in json.loads(
            clicks_json_path(store.root / f"train/squares-a/0000{t}_clicks_labelTrainIds.png").read_text()
        )["clicks"]]
        for t in (1, 2, 3)
    }  # fmt: skip
    assert clicks == {
        1: [(10, 12, 1, 1), (20, 14, 1, 1), (40, 30, 0, 1)],
        2: [(12, 14, 1, 1)],
        3: [(10, 12, 1, 1), (50, 40, 0, None)],
    }
    boxes_file = boxes_json_path(store.root / "train/squares-a/00002_boxes_labelTrainIds.png")
    boxes = json.loads(boxes_file.read_text())
    assert [(b["x0"], b["instance_id"]) for b in boxes["boxes"]] == [(8, 1)]
    given = [read_clicks(store.root / f"train/squares-a/0000{t}_clicks.json", (48, 64)) for t in (1, 3)]
    assert [[(c.object, c.positive) for c in g] for g in given] == [[(1, True), (1, True), (1, False)],
                                                                     [(1, True), (1, False)]]  # fmt: skip


def test_a_negative_keypoint_without_a_background_class_is_refused(tmp_path):
    from data.fake_cityscapes import write_still

    root = write_still(tmp_path / "cs", split="val", city="c", size=(48, 64), fine=True)
    path = tmp_path / "project.json"
    frame = "c/c_000000_000019_leftImg8bit.png"
    path.write_text(json.dumps([_ls_task(4, frame, [_keypoint("n", 5.5, 5.5, "car", positive=False)])]))
    fmt = get_format("cityscapes", root)
    refusal = r"task 4 result n: a negative click of 'car' needs the class of what is not an object"
    with pytest.raises(DataError, match=refusal):
        import_export(
            read_label_studio(path), fmt, "val", LabelStore(tmp_path / "out"), ClassMapping(fmt.class_names)
        )
    assert not (tmp_path / "out").exists()


def test_an_import_keeps_the_tools_object_names_for_the_next_export(davis, tmp_path):
    """The page's "Bush & shrub", exported and imported back, had been exported again as `object`."""
    from frugalseg.cli import main

    bush = _square("Bush & shrub", "polygon 1")
    bush.instance_id = 2
    dog = _square("object", "polygon 2")
    dog.points = dog.points + 10
    dog.instance_id = 1
    export = ToolExport(tmp_path / "e.json", "coco", [Frame("squares-a/00001.jpg", None, [bush, dog], "1")],
                        ("Bush & shrub", "object"))  # fmt: skip
    fmt = get_format("davis", davis)
    store = LabelStore(tmp_path / "out")
    import_export(export, fmt, "train", store, ClassMapping(fmt.class_names))
    run = json.loads(store.run_path.read_text(encoding="utf-8"))
    assert run["object_names"] == {"squares-a": {"2": "Bush & shrub"}}
    xml = tmp_path / "again.xml"
    exported = ["label", "export", "--store", str(store.root), "--tool", "cvat-video", "--out", str(xml)]
    assert main(exported) == 0
    text = xml.read_text(encoding="utf-8")
    assert 'label="Bush &amp; shrub"' in text and 'label="object"' in text
    import_export(export, fmt, "train", store, ClassMapping(fmt.class_names))  # the same file again: one run


def test_a_frame_named_by_file_name_alone_on_a_set_of_several_clips_takes_clip(tmp_path):
    """Label Studio's uploads name a frame by file name alone (``1a2b3c4d-00001.jpg``): on a set of several
    clips it names several frames, and ``--clip``, which had applied to video exports only, could not say
    which."""
    import shutil

    root = write_moving_squares(tmp_path / "davis")
    shutil.rmtree(root / "ImageSets")  # one split, "all", of both clips
    fmt = get_format("davis", root)
    mapping = ClassMapping(fmt.class_names)

    def imported(clip: str | None, out: str) -> LabelStore:
        frames = [Frame("00001.jpg", None, [_square("object")], "task 1")]
        export = ToolExport(tmp_path / "e.json", "label-studio", frames, ("object",))
        store = LabelStore(tmp_path / out)
        import_export(export, fmt, "all", store, mapping, clip=clip)
        return store

    with pytest.raises(DataError) as caught:
        imported(None, "out")
    assert caught.value.problem.endswith(
        ": name it with its folder, or give the clip its frames are of as --clip"
    )
    assert [(r["clip_id"], r["offset"]) for r in imported("squares-b", "b").records()] == [("squares-b", 1)]
    with pytest.raises(ConfigError, match="--clip"):
        imported("nowhere", "c")


def test_a_label_studio_coco_image_is_placed_by_its_url_path(tmp_path):
    """Label Studio's COCO export names an image ``00001.jpg`` beside its URL: on a set of several clips
    the bare name had named several frames."""
    import shutil

    from frugalseg.interop.coco import read_coco

    root = write_moving_squares(tmp_path / "davis")
    shutil.rmtree(root / "ImageSets")
    fmt = get_format("davis", root)
    image = {"id": 1, "file_name": "00001.jpg", "width": 64, "height": 48,
             "path": "/data/local-files/?d=JPEGImages/480p/squares-b/00001.jpg"}  # fmt: skip
    annotation = {"id": 1, "image_id": 1, "category_id": 0, "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]}
    coco = tmp_path / "result.json"
    coco.write_text(json.dumps({"images": [image], "annotations": [annotation],
                                "categories": [{"id": 0, "name": "object"}]}), encoding="utf-8")  # fmt: skip
    store = LabelStore(tmp_path / "out")
    import_export(read_coco(coco), fmt, "all", store, ClassMapping(fmt.class_names))
    assert [(r["clip_id"], r["offset"]) for r in store.records()] == [("squares-b", 1)]


def test_cityscapes_labels_of_no_class_are_unlabelled_on_its_19_classes() -> None:
    """A COCO file of Cityscapes' own label list had been refused at 'ego vehicle', 'static', 'out of roi'
    and 'rectification border' until each was mapped to ignore."""
    from frugalseg.data.classes import CITYSCAPES

    mapping = ClassMapping(CITYSCAPES.names)
    path = Path("x.json")
    names = ("ego vehicle", "static", "out of roi", "rectification border", "license plate", "car", "road")
    assert [mapping.train_id(n, path, "e") for n in names] == [255, 255, 255, 255, 255, 13, 0]
    assert ClassMapping(CITYSCAPES.names, {"static": "building"}).train_id("static", path, "e") == 2
    with pytest.raises(DataError, match="label 'ego vehicle' maps to no class"):  # not on other classes
        ClassMapping(["background", "road", "car"]).train_id("ego vehicle", path, "e")


def test_a_frame_is_found_by_the_name_label_studio_gave_its_upload(tmp_path):
    """An upload of ``shot 03.jpg`` is ``/data/upload/2/f92b819d-shot_03.jpg``: it was no frame of the data
    set, "of another video's"; a name two frames would take is still refused."""
    import cv2

    from frugalseg.data.formats import get_format
    from frugalseg.interop.label_studio import image_name
    from frugalseg.interop.stores import FrameIndex

    clip = tmp_path / "My clip"
    clip.mkdir()
    for name in ("shot 01", "shot 02", "shot 03", "a b", "a_b"):
        cv2.imwrite(str(clip / f"{name}.jpg"), np.zeros((8, 8, 3), np.uint8))
    fmt = get_format("video", clip)
    index = FrameIndex(fmt.clips(fmt.default_split(), labelled=False))
    path = Path("tasks.json")
    found, offset = index.by_name(image_name("/data/upload/2/f92b819d-shot_03.jpg"), path, "task 11")
    assert found.frame_path(offset) == clip / "shot 03.jpg"
    assert index.by_name("a_b.jpg", path, "task 12")[0].frame_path(
        index.by_name("a_b.jpg", path, "t")[1]
    ) == (clip / "a_b.jpg")  # its own name first
    with pytest.raises(DataError, match="no frame of the data set is named 'shot_04.jpg'"):
        index.by_name("shot_04.jpg", path, "task 13")
