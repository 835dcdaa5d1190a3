"""import(export(store)) gives back the store's label maps and instance ids bit for bit, every format."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import squares, write_moving_squares

from frugalseg.autolabel.clicks import Click, clicks_json_path, write_clicks_json
from frugalseg.autolabel.runs import run_config
from frugalseg.autolabel.store import LabelStore, instances_path
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import DavisFormat, get_format
from frugalseg.data.io import encode_png, write_bytes_atomic
from frugalseg.interop import WRITERS, ClassMapping, import_export, read_export, stored_frames, write_export


def _labels() -> dict[tuple[int, LabelKind], tuple[np.ndarray, np.ndarray | None]]:
    """Labels of clip squares-a of every kind, with 255 holes, two objects, and thin shapes."""
    ids = squares(0, 0)
    fine = (ids > 0).astype(np.uint8)
    fine[0, :5] = IGNORE_INDEX
    pseudo = (squares(3, 0) > 0).astype(np.uint8)
    pseudo[40:, 60:] = IGNORE_INDEX
    clicks = np.full(ids.shape, IGNORE_INDEX, np.uint8)
    clicks[10, 10], clicks[25, 45], clicks[2, 60] = 1, 1, 0
    boxes = np.full(ids.shape, IGNORE_INDEX, np.uint8)
    boxes[8:20, 14:26] = 1
    coarse = np.full(ids.shape, IGNORE_INDEX, np.uint8)
    coarse[30:40, 0:20] = 0
    coarse[32:38, 40:55] = 1
    return {
        (0, LabelKind.FINE): (fine, ids.astype(np.uint16)),
        (3, LabelKind.PSEUDO): (pseudo, None),
        (0, LabelKind.CLICKS): (clicks, None),
        (5, LabelKind.BOXES): (boxes, None),
        (9, LabelKind.COARSE): (coarse, None),
    }


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_squares(tmp_path_factory.mktemp("davis"))


def write_store(root: Path, davis: Path, seconds: dict[LabelKind, float] | None = None) -> LabelStore:
    """A store of `_labels`, each label costing ``seconds[kind]`` (default 0)."""
    fmt = get_format("davis", davis)
    clip = next(c for c in fmt.clips("train") if c.clip_id == "squares-a")
    store = LabelStore(root)
    seconds = seconds or {}
    with store.run(run_config(fmt, "train", "test", {})):
        for (offset, kind), (label, instances) in _labels().items():
            if instances is not None:
                path = instances_path(store.label_path(clip, offset, kind))
                write_bytes_atomic(path, encode_png(instances, path))
            store.write(clip, offset, kind, label, engine="test", settings={}, source_offset=0,
                        seconds=seconds.get(kind, 0))  # fmt: skip
    return store


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("tool", list(WRITERS))
def test_import_of_export_is_the_store(tool, davis, tmp_path):
    fmt = get_format("davis", davis)
    store = write_store(tmp_path / "store", davis)
    suffix = ".xml" if tool.startswith("cvat") else ".json"
    out = tmp_path / f"export{suffix}"
    write_export(tool, out, stored_frames(store, fmt), list(fmt.class_names))
    back = LabelStore(tmp_path / "back")
    summary = import_export(read_export(tool, out), fmt, "train", back, ClassMapping(fmt.class_names))
    assert summary.written == {"fine": 1, "pseudo": 1, "clicks": 1, "boxes": 1, "coarse": 1}
    key = lambda r: (r["clip_id"], r["offset"], r["kind"])  # noqa: E731
    original, imported = sorted(store.records(), key=key), sorted(back.records(), key=key)
    assert [key(r) for r in imported] == [key(r) for r in original]
    for a, b in zip(original, imported, strict=True):
        assert a["path"] == b["path"]
        np.testing.assert_array_equal(_read(back.root / b["path"]), _read(store.root / a["path"]))
        has_ids = instances_path(store.root / a["path"]).is_file()
        assert instances_path(back.root / b["path"]).is_file() == has_ids
        if has_ids:
            ids = _read(instances_path(back.root / b["path"]))
            assert ids.dtype == np.uint8  # object ids 1 and 2: a DAVIS-style object mask
            np.testing.assert_array_equal(ids, _read(instances_path(store.root / a["path"])))
            np.testing.assert_array_equal(DavisFormat.read_mask(instances_path(back.root / b["path"])), ids)


@pytest.mark.parametrize("tool", list(WRITERS))
def test_a_negative_click_under_its_objects_id_comes_back_negative(tool, davis, tmp_path):
    """Beside a mask of object 1, its negative click (background, id 1) had been written under the
    object's name, and came back a positive click."""
    fmt = get_format("davis", davis)
    clip = next(c for c in fmt.clips("train") if c.clip_id == "squares-a")
    ids = squares(0, 0)
    store = LabelStore(tmp_path / "store")
    clicks = [Click(10, 10, 1, 1), Click(60, 2, 0, 1)]  # positive on object 1; negative, of object 1
    sparse = np.full(ids.shape, IGNORE_INDEX, np.uint8)
    for click in clicks:
        sparse[click.y, click.x] = click.train_id
    with store.run(run_config(fmt, "train", "test", {})):
        path = instances_path(store.label_path(clip, 0, LabelKind.FINE))
        write_bytes_atomic(path, encode_png(ids.astype(np.uint16), path))
        store.write(clip, 0, LabelKind.FINE, (ids > 0).astype(np.uint8), engine="test", settings={},
                    source_offset=0, seconds=0)  # fmt: skip
        store.write(clip, 0, LabelKind.CLICKS, sparse, engine="test", settings={}, source_offset=0, seconds=0)
        write_clicks_json(
            clicks_json_path(store.label_path(clip, 0, LabelKind.CLICKS)), clicks, ids.shape, 2.0
        )
    out = tmp_path / ("export.xml" if tool.startswith("cvat") else "export.json")
    write_export(tool, out, stored_frames(store, fmt), list(fmt.class_names))
    back = LabelStore(tmp_path / "back")
    import_export(read_export(tool, out), fmt, "train", back, ClassMapping(fmt.class_names))
    (record,) = [r for r in back.records() if r["kind"] == "clicks"]
    np.testing.assert_array_equal(_read(back.root / record["path"]), sparse)


def test_a_coco_export_holds_objects_not_crowds(davis, tmp_path, capsys):
    """Every mask had been written ``iscrowd`` 1, which COCO's evaluation and detectron2's loader skip."""
    from pycocotools.coco import COCO

    fmt = get_format("davis", davis)
    out = tmp_path / "export.json"
    frames = stored_frames(write_store(tmp_path / "store", davis), fmt)
    write_export("coco", out, frames, list(fmt.class_names))
    coco = COCO(str(out))
    masks = [a for a in coco.dataset["annotations"] if a["segmentation"]]
    assert len(masks) >= 3 and {a["id"] for a in masks} <= set(coco.getAnnIds(iscrowd=False))
    assert all(coco.annToMask(a).sum() == a["area"] > 0 for a in masks)


#: What each label of `_labels` cost to make (the pseudo label none: a propagation's).
SECONDS = {LabelKind.FINE: 6.5, LabelKind.CLICKS: 2.25, LabelKind.BOXES: 3.0, LabelKind.COARSE: 11.125}


@pytest.mark.parametrize("tool", list(WRITERS))
def test_import_of_export_keeps_each_labels_seconds(tool, davis, tmp_path):
    """The annotation seconds of the store's manifest (its cost ledger) come back, not 0.0."""
    fmt = get_format("davis", davis)
    store = write_store(tmp_path / "store", davis, SECONDS)
    out = tmp_path / "export"
    write_export(tool, out, stored_frames(store, fmt), list(fmt.class_names))
    back = LabelStore(tmp_path / "back")
    import_export(read_export(tool, out), fmt, "train", back, ClassMapping(fmt.class_names))
    assert {r["kind"]: r["seconds"] for r in back.records()} == {
        "fine": 6.5, "pseudo": 0.0, "clicks": 2.25, "boxes": 3.0, "coarse": 11.125
    }  # fmt: skip


def test_a_label_studio_annotations_lead_time_is_its_labels_seconds(davis, tmp_path):
    """A person's annotation in Label Studio records the seconds it took: the label it makes costs them."""
    import json

    fmt = get_format("davis", davis)
    out = tmp_path / "ls.json"
    write_export("label-studio", out, stored_frames(write_store(tmp_path / "store", davis), fmt),
                 list(fmt.class_names))  # fmt: skip
    tasks = json.loads(out.read_text(encoding="utf-8"))
    for task in tasks:  # a person's annotations of the predictions, without frugalseg's meta
        results = [{**r, "meta": {}} for r in task["predictions"][0]["result"]]
        results = [r for r in results if r["type"] == "brushlabels"][:1]
        task["annotations"] = [{"id": 7, "lead_time": 41.5, "result": results}]
    tasks[0]["annotations"].append({"id": 8, "lead_time": 99.0, "was_cancelled": True, "result": []})
    out.write_text(json.dumps(tasks), encoding="utf-8")
    back = LabelStore(tmp_path / "back")
    import_export(read_export("label-studio", out), fmt, "train", back, ClassMapping(fmt.class_names))
    assert sorted((r["offset"], r["kind"], r["seconds"]) for r in back.records()) == [
        (0, "fine", 41.5), (3, "fine", 41.5), (5, "fine", 41.5), (9, "fine", 41.5)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("tool", "value"), [("coco", "-1"), ("coco", True), ("label-studio", "soon"), ("cvat-video", "nan")]
)
def test_recorded_seconds_that_are_not_seconds_name_the_element(tool, value, davis, tmp_path):
    import json
    import re

    from frugalseg.errors import DataError

    fmt = get_format("davis", davis)
    out = tmp_path / "export"
    write_export(tool, out, stored_frames(write_store(tmp_path / "store", davis, SECONDS), fmt),
                 list(fmt.class_names))  # fmt: skip
    text = out.read_text(encoding="utf-8")
    if tool == "cvat-video":
        text = text.replace('"frugalseg_seconds">6.5<', f'"frugalseg_seconds">{value}<', 1)
    else:
        recorded = f'"frugalseg_seconds": {json.dumps(value)}'
        text = re.sub(r'"frugalseg_seconds": ?6\.5', recorded, text, count=1)
    out.write_text(text, encoding="utf-8")
    element = r"(annotation 1 \(image 1\)|task 1 result frugalseg-class-1|track 0 \(frame 0\))"
    problem = f"frugalseg_seconds {re.escape(repr(value))} is not a number of seconds ≥ 0"
    with pytest.raises(DataError, match=rf"{element}: {problem}"):
        read_export(tool, out)


@pytest.fixture(scope="module")
def street_flow(tiny_streets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flow labels of a Cityscapes-layout set (19 classes, 255 where the flow gave up) at ±1, four clips."""
    from frugalseg.cli import main

    flow = tmp_path_factory.mktemp("streets") / "flow"
    argv = ["label", "propagate", "--format", "synthetic", "--root", str(tiny_streets), "--offsets=-1,1"]
    assert main([*argv, "--out", str(flow), "--no-progress"]) == 0
    return flow


@pytest.mark.parametrize("tool", list(WRITERS))
def test_a_propagated_store_of_street_scenes_comes_back(tool, tiny_streets, street_flow, tmp_path):
    fmt = get_format("synthetic", tiny_streets)
    frames = stored_frames(LabelStore(street_flow), fmt)
    if tool == "cvat-video":  # one video a file
        frames = [f for f in frames if f.clip.clip_id == frames[0].clip.clip_id]
    out = tmp_path / "export"
    write_export(tool, out, frames, list(fmt.class_names))
    back = LabelStore(tmp_path / "back")
    import_export(read_export(tool, out), fmt, "train", back, ClassMapping(fmt.class_names))
    assert len(back.records()) == len(frames) > 1
    for record in back.records():
        original = _read(street_flow / record["path"])
        assert (original == 255).any() and len(np.unique(original)) > 3
        np.testing.assert_array_equal(_read(back.root / record["path"]), original)


def _linked(davis: Path, out: Path) -> Path:
    """``davis`` with its clip folders linked in, as the annotation page's views of a data set are."""
    for part in ("JPEGImages", "Annotations"):
        for clip in (davis / part / "480p").iterdir():
            (out / part / "480p").mkdir(parents=True, exist_ok=True)
            (out / part / "480p" / clip.name).symlink_to(clip)
    return out


def _videos(out: Path) -> Path:
    """A folder of two 6-frame videos, ``squares-a.mp4`` and ``squares-b.mp4``."""
    from data.fake_video import numbered_frame, write_video

    for name in ("squares-a", "squares-b"):
        write_video(out / f"{name}.mp4", [numbered_frame(i) for i in range(6)])
    return out


def _clip_labels(
    clip: int, size: tuple[int, int]
) -> dict[tuple[int, LabelKind], tuple[np.ndarray, np.ndarray | None]]:
    """Labels of clip number ``clip`` at offsets 0 and 2 that differ from the other clip's."""
    ids = np.zeros(size, np.uint16)
    ids[5 + clip : 20, 4:30], ids[30:40, 40 + 3 * clip : 60] = 1, 2
    fine = (ids > 0).astype(np.uint8)
    fine[0, : 5 + clip] = IGNORE_INDEX
    pseudo = np.full(size, IGNORE_INDEX, np.uint8)
    pseudo[10 : 20 + clip, 10:30] = 1
    pseudo[40:, :20] = 0
    return {(0, LabelKind.FINE): (fine, ids), (2, LabelKind.PSEUDO): (pseudo, None)}


@pytest.fixture(scope="module", params=["davis", "davis-linked", "videos"])
def several_clips(request, davis: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    """(format, root, split) of a data set of two clips whose frames share file names."""
    out = tmp_path_factory.mktemp(request.param)
    if request.param == "davis":
        return "davis", davis, "train"
    if request.param == "davis-linked":
        return "davis", _linked(davis, out), "all"
    return "video", _videos(out), "all"


def _two_clip_store(fmt, split: str, folder: Path) -> LabelStore:
    """A store of `_clip_labels` of each clip of ``split``, the fine labels' instance ids beside them."""
    from frugalseg.data.io import image_size

    store = LabelStore(folder)
    with store.run(run_config(fmt, split, "test", {})):
        for n, clip in enumerate(fmt.clips(split)):
            width, height = image_size(clip.frame_path(0))
            for (offset, kind), (label, ids) in _clip_labels(n, (height, width)).items():
                if ids is not None:
                    path = instances_path(store.label_path(clip, offset, kind))
                    write_bytes_atomic(path, encode_png(ids.astype(np.uint8), path))
                store.write(clip, offset, kind, label, engine="test", settings={}, source_offset=0, seconds=0)
    return store


def test_tool_files_of_several_clips_import_back(several_clips, tmp_path):
    """Every writer's files of a store over two clips (frames ``00000.jpg`` in both) give the store back."""
    from frugalseg.interop import write_tool_files

    name, root, split = several_clips
    fmt = get_format(name, root)
    store = _two_clip_store(fmt, split, tmp_path / "store")
    frames = stored_frames(store, fmt)
    assert len({f.name for f in frames}) == len(frames) == 4
    files = write_tool_files(frames, list(fmt.class_names), tmp_path / "tools")
    assert [f.name for f in files] == ["coco.json", "label-studio.json", "cvat-video-squares-a.xml",
                                       "cvat-video-squares-b.xml"]  # fmt: skip
    key = lambda r: (r["clip_id"], r["offset"], r["kind"])  # noqa: E731
    original = sorted(store.records(), key=key)
    for tool, paths in (("coco", files[:1]), ("label-studio", files[1:2]), ("cvat-video", files[2:])):
        imported = []
        for path in paths:
            back = LabelStore(tmp_path / f"back-{path.stem}")
            import_export(read_export(tool, path), fmt, split, back, ClassMapping(fmt.class_names))
            imported += [(back, r) for r in back.records()]
        imported.sort(key=lambda item: key(item[1]))
        assert [key(r) for _, r in imported] == [key(r) for r in original], tool
        for a, (back, b) in zip(original, imported, strict=True):
            np.testing.assert_array_equal(_read(back.root / b["path"]), _read(store.root / a["path"]))
            ids = instances_path(store.root / a["path"])
            assert instances_path(back.root / b["path"]).is_file() == ids.is_file()
            if ids.is_file():
                np.testing.assert_array_equal(_read(instances_path(back.root / b["path"])), _read(ids))


@pytest.mark.parametrize("tool", list(WRITERS))
def test_frames_written_as_files_are_the_frames_and_import_back(several_clips, tool, tmp_path):
    """`with_frame_files`: a video's frame becomes a lossless PNG of it, an image file a copy of it, and the
    tool file naming them imports back to the same labels of the same frames."""
    from frugalseg.data.io import read_frame
    from frugalseg.interop import with_frame_files

    name, root, split = several_clips
    fmt = get_format(name, root)
    store = _two_clip_store(fmt, split, tmp_path / "store")
    frames = stored_frames(store, fmt)
    named = with_frame_files(frames, tmp_path / "frames")
    for before, after in zip(frames, named, strict=True):
        source, written = before.clip.frame_path(before.offset), tmp_path / "frames" / after.name
        if name == "video":
            assert after.name == f"{before.name}.png" and before.name.startswith("squares-")
            np.testing.assert_array_equal(read_frame(written), read_frame(source))
        else:
            assert after.name == before.name and written.read_bytes() == source.read_bytes()
    with_frame_files(frames, tmp_path / "frames")  # again: the same files, nothing left beside them
    assert sorted(p.name for p in (tmp_path / "frames").rglob("*") if p.is_file()) == sorted(
        Path(f.name).name for f in named
    )
    path = tmp_path / f"export{WRITERS[tool].format.suffix}"
    write_export(tool, path, [f for f in named if f.clip.clip_id == "squares-a"], list(fmt.class_names))
    back = LabelStore(tmp_path / "back")
    import_export(read_export(tool, path), fmt, split, back, ClassMapping(fmt.class_names), clip="squares-a")
    records = sorted(back.records(), key=lambda r: (r["offset"], r["kind"]))
    assert [(r["clip_id"], r["offset"], r["kind"]) for r in records] == [
        ("squares-a", 0, "fine"), ("squares-a", 2, "pseudo")
    ]  # fmt: skip
    original = {(r["offset"], r["kind"]): r for r in store.records() if r["clip_id"] == "squares-a"}
    for record in records:
        expected = store.root / original[record["offset"], record["kind"]]["path"]
        np.testing.assert_array_equal(_read(back.root / record["path"]), _read(expected))


def test_the_frames_of_a_data_set_that_is_one_folder_of_frames_go_into_its_clips_folder(davis, tmp_path):
    """`with_frame_files` on a root that is one clip's frames (``holiday/img 001.jpg``): the files were
    written straight into the folder, which Label Studio cannot serve (a storage lies below its root)."""
    from frugalseg.interop import with_frame_files

    holiday = tmp_path / "holiday"
    holiday.mkdir()
    sources = sorted((davis / "JPEGImages" / "480p" / "squares-a").glob("*.jpg"))[:3]
    for i, source in enumerate(sources, 1):
        (holiday / f"img 00{i}.jpg").write_bytes(source.read_bytes())
    fmt = get_format("video", holiday)
    store = _two_clip_store(fmt, "all", tmp_path / "store")
    named = with_frame_files(stored_frames(store, fmt), tmp_path / "frames")
    assert [f.name for f in named] == ["holiday/img 001.jpg", "holiday/img 003.jpg"]
    assert (tmp_path / "frames" / "holiday" / "img 003.jpg").read_bytes() == sources[2].read_bytes()
    path = tmp_path / "label-studio.json"
    write_export("label-studio", path, named, list(fmt.class_names))
    back = LabelStore(tmp_path / "back")
    import_export(read_export("label-studio", path), fmt, "all", back, ClassMapping(fmt.class_names))
    records = sorted(back.records(), key=lambda r: r["offset"])
    assert [(r["clip_id"], r["offset"], r["kind"]) for r in records] == [
        ("holiday", 0, "fine"), ("holiday", 2, "pseudo")
    ]  # fmt: skip
    for record, original in zip(records, sorted(store.records(), key=lambda r: r["offset"]), strict=True):
        np.testing.assert_array_equal(_read(back.root / record["path"]), _read(store.root / original["path"]))


def _hole_free_store(
    root: Path, davis: Path, kind: LabelKind = LabelKind.FINE, seconds: float = 0
) -> tuple[LabelStore, np.ndarray]:
    """A store of one label of squares-a frame 0 with no unlabelled pixel, and its object ids."""
    fmt = get_format("davis", davis)
    clip = next(c for c in fmt.clips("train") if c.clip_id == "squares-a")
    ids, store = squares(0, 0), LabelStore(root)
    with store.run(run_config(fmt, "train", "test", {})):
        path = instances_path(store.label_path(clip, 0, kind))
        write_bytes_atomic(path, encode_png(ids.astype(np.uint16), path))
        store.write(clip, 0, kind, (ids > 0).astype(np.uint8), engine="test", settings={},
                    source_offset=0, seconds=seconds)  # fmt: skip
    return store, ids


@pytest.mark.parametrize("tool", list(WRITERS))
def test_a_label_without_holes_is_written_without_its_background_and_comes_back(tool, davis, tmp_path):
    fmt = get_format("davis", davis)
    store, ids = _hole_free_store(tmp_path / "store", davis)
    frames = stored_frames(store, fmt)
    assert [(kind, name, i) for kind, name, i, _ in frames[0].objects] == [
        (LabelKind.FINE, "object", 1), (LabelKind.FINE, "object", 2)
    ]  # fmt: skip
    out = tmp_path / ("export.xml" if tool.startswith("cvat") else "export.json")
    write_export(tool, out, frames, list(fmt.class_names))
    back = LabelStore(tmp_path / "back")
    import_export(read_export(tool, out), fmt, "train", back, ClassMapping(fmt.class_names))
    (record,) = back.records()
    np.testing.assert_array_equal(_read(back.root / record["path"]), (ids > 0).astype(np.uint8))


def test_what_a_person_erases_in_label_studio_comes_back_background_not_unlabelled(davis, tmp_path):
    """The background had been written as a brush, which Label Studio's eraser never grows: every erased
    pixel came back 255 (ignore), and training never learnt "not the object" there."""
    import json

    from frugalseg.interop.rle import ls_decode, ls_encode

    fmt = get_format("davis", davis)
    store, ids = _hole_free_store(tmp_path / "store", davis)
    out = tmp_path / "ls.json"
    write_export("label-studio", out, stored_frames(store, fmt), list(fmt.class_names))
    (task,) = json.loads(out.read_text(encoding="utf-8"))
    results = [{**r, "meta": {}} for r in task["predictions"][0]["result"]]
    for result in results:  # the person erases the left half of each object
        mask = ls_decode(result["value"]["rle"], *ids.shape)
        mask[:, : mask.shape[1] // 2] = False
        result["value"]["rle"] = ls_encode(mask)
    task["annotations"] = [{"id": 7, "lead_time": 12.0, "result": results}]
    out.write_text(json.dumps([task]), encoding="utf-8")
    back = LabelStore(tmp_path / "back")
    import_export(read_export("label-studio", out), fmt, "train", back, ClassMapping(fmt.class_names))
    (record,) = back.records()
    expected = (ids > 0).astype(np.uint8)
    expected[:, : ids.shape[1] // 2] = 0
    np.testing.assert_array_equal(_read(back.root / record["path"]), expected)


@pytest.mark.parametrize("origin", ["prediction", "prediction-changed"])
def test_a_prediction_a_person_edited_in_label_studio_is_theirs_though_its_meta_stayed(
    origin, davis, tmp_path
):
    """*Create annotations from predictions* keeps each region's ``meta``: an edited pseudo region had come
    back ``pseudo`` at the prediction's 0 s. Its ``origin`` says the person changed it."""
    import json

    fmt = get_format("davis", davis)
    store, ids = _hole_free_store(tmp_path / "store", davis, LabelKind.PSEUDO, seconds=0.0)
    out = tmp_path / "ls.json"
    write_export("label-studio", out, stored_frames(store, fmt), list(fmt.class_names))
    (task,) = json.loads(out.read_text(encoding="utf-8"))
    results = [{**r, "origin": "prediction"} for r in task["predictions"][0]["result"]]
    results[0]["origin"] = origin
    assert results[0]["meta"]["frugalseg_kind"] == "pseudo"
    task["annotations"] = [{"id": 7, "lead_time": 20.0, "result": results}]
    out.write_text(json.dumps([task]), encoding="utf-8")
    back = LabelStore(tmp_path / "back")
    import_export(read_export("label-studio", out), fmt, "train", back, ClassMapping(fmt.class_names))
    expected = [(0, "pseudo", 0.0)] if origin == "prediction" else [(0, "fine", 20.0)]
    assert sorted((r["offset"], r["kind"], r["seconds"]) for r in back.records()) == expected
    # one label of the frame holds both objects, the one edited and the one kept as predicted
    (record,) = back.records()
    np.testing.assert_array_equal(_read(back.root / record["path"]), (ids > 0).astype(np.uint8))
    np.testing.assert_array_equal(_read(instances_path(back.root / record["path"])), ids)


def test_a_label_studio_annotations_lead_time_goes_to_the_mask_its_keypoints_made(davis, tmp_path):
    """An accepted interactive answer: the keypoints beside the brush they made. Both labels had 0 s."""
    import json

    fmt = get_format("davis", davis)
    store, ids = _hole_free_store(tmp_path / "store", davis)
    out = tmp_path / "ls.json"
    write_export("label-studio", out, stored_frames(store, fmt), list(fmt.class_names))
    (task,) = json.loads(out.read_text(encoding="utf-8"))
    results = [{**r, "meta": {}, "origin": "manual"} for r in task["predictions"][0]["result"]]
    keypoint = {
        "id": "K1", "type": "keypointlabels", "from_name": "click", "to_name": "image", "origin": "manual",
        "original_width": 64, "original_height": 48, "is_positive": True,
        "value": {"x": 10.5 * 100 / 64, "y": 10.5 * 100 / 48, "width": 0.5, "keypointlabels": ["object"]},
    }  # fmt: skip
    task["annotations"] = [{"id": 7, "lead_time": 13.0, "result": [keypoint, *results]}]
    out.write_text(json.dumps([task]), encoding="utf-8")
    back = LabelStore(tmp_path / "back")
    import_export(read_export("label-studio", out), fmt, "train", back, ClassMapping(fmt.class_names))
    assert sorted((r["kind"], r["seconds"]) for r in back.records()) == [("clicks", 0.0), ("fine", 13.0)]
