"""`frugalseg label import|export` end to end, as a user runs them on a DAVIS-style folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import squares, write_moving_squares

from frugalseg.cli import main
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.interop.cvat import write_cvat_video
from frugalseg.interop.rle import coco_encode


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_squares(tmp_path_factory.mktemp("davis"))


def _coco(path: Path) -> Path:
    """Frames 0 and 4 of squares-a: each object an RLE mask of 'vehicle', and a box."""
    images, annotations = [], []
    for image_id, frame in enumerate((0, 4), start=1):
        ids = squares(frame, 0)
        images.append({"id": image_id, "file_name": f"squares-a/{frame:05d}.jpg", "width": 64, "height": 48})
        for obj in (1, 2):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 7,
                                "segmentation": coco_encode(ids == obj), "iscrowd": 1})  # fmt: skip
    annotations.append({"id": 99, "image_id": 2, "category_id": 7, "segmentation": [], "bbox": [1, 2, 3, 4]})
    data = {"images": images, "annotations": annotations, "categories": [{"id": 7, "name": "vehicle"}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_import_then_export_then_import_again(davis, tmp_path, capsys):
    coco = _coco(tmp_path / "coco.json")
    store = tmp_path / "store"
    args = ["label", "import", str(coco), "--tool", "coco", "--format", "davis", "--root", str(davis)]
    code = main([*args, "--out", str(store), "--map", "vehicle=object", "--background", "background"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"label import: 2 frames, 5 shapes of {coco} → 3 labels (1 boxes, 2 fine) in {store}" in out
    label = cv2.imread(str(store / "train/squares-a/00004_fine_labelTrainIds.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(label, (squares(4, 0) > 0).astype(np.uint8))
    ids = cv2.imread(str(store / "train/squares-a/00004_fine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ids, squares(4, 0))  # the annotations' positions 1, 2 are the objects
    boxes = cv2.imread(str(store / "train/squares-a/00004_boxes_labelTrainIds.png"), cv2.IMREAD_UNCHANGED)
    assert np.argwhere(boxes != IGNORE_INDEX).min(0).tolist() == [2, 1]  # bbox [1, 2, 3, 4]: rows 2…5
    assert np.argwhere(boxes != IGNORE_INDEX).max(0).tolist() == [5, 3]
    side = json.loads((store / "train/squares-a/00004_boxes.json").read_text(encoding="utf-8"))
    assert side["boxes"][0] | {"iou": None} == {"x0": 1, "y0": 2, "x1": 4, "y1": 6, "train_id": 1,
                                                "instance_id": 3, "iou": None, "filtered": False}  # fmt: skip
    run = json.loads((store / "run.json").read_text(encoding="utf-8"))
    assert (run["engine"], run["format"], run["split"], run["settings"]["tool"]) == (
        "import",
        "davis",
        "train",
        "coco",
    )

    back = tmp_path / "back.xml"
    assert main(["label", "export", "--store", str(store), "--tool", "cvat-video", "--out", str(back)]) == 0
    # objects 1 and 2 of frames 0 and 4 and the box; not the background regions written beside them
    assert f"label export: 2 frames, 5 objects of {store} → {back} (cvat-video)" in capsys.readouterr().out
    again = tmp_path / "again"
    assert main(["label", "import", str(back), "--tool", "cvat-video", *args[5:], "--out", str(again)]) == 0
    for name in (
        "00000_fine_labelTrainIds.png",
        "00004_fine_instanceIds.png",
        "00004_boxes_labelTrainIds.png",
    ):
        a = cv2.imread(str(store / "train/squares-a" / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(again / "train/squares-a" / name), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(a, b)


def test_report_prices_imported_masks_by_their_objects(davis, tmp_path, capsys):
    store = tmp_path / "store"
    args = ["label", "import", str(_coco(tmp_path / "coco.json")), "--tool", "coco", "--format", "davis"]
    assert main([*args, "--root", str(davis), "--out", str(store), "--map", "vehicle=object"]) == 0
    assert main(["label", "report", str(store), "--no-progress"]) == 0
    out = capsys.readouterr().out
    # frames 0 and 4 hold objects 1 and 2 each (their instance maps), the box is listed beside its label
    assert "(4 object masks, 1 boxes)" in out


def test_import_calls_the_layout_format_and_the_tool_file_tool(davis, tmp_path, capsys):
    """As every other command: ``--format`` is the data set layout; the old ``--data`` is refused."""
    out = tmp_path / "store"
    start = ["label", "import", str(_coco(tmp_path / "coco.json")), "--root", str(davis), "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main([*start, "--format", "coco", "--data", "davis"])  # the old spelling
    assert exit_info.value.code == 2
    assert "argument --format: invalid choice: 'coco'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*start, "--tool", "coco", "--format", "davis", "--data", "davis"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("unrecognized arguments: --data davis")
    assert not out.exists()
    assert main([*start, "--tool", "coco", "--format", "davis", "--map", "vehicle=object"]) == 0


@pytest.mark.parametrize(
    ("out", "where"),
    [("squares-a/imported", "is inside"), (".", "is"), ("..", "holds")],
)
def test_import_refuses_a_store_in_the_data_set_and_writes_nothing(davis, tmp_path, capsys, out, where):
    """Labels never go into a data set: ``--out`` inside ``--root`` (or it, or above it) is refused first."""
    data = tmp_path / "data"
    shutil.copytree(davis, data)
    args = ["label", "import", str(_coco(tmp_path / "coco.json")), "--tool", "coco", "--format", "davis"]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    store = data / out
    code = main([*args, "--root", str(data), "--out", str(store), "--map", "vehicle=object"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --out: {store} {where} the data set folder {data}: labels never go into a data set; "
        "give a label store folder outside it"
    ]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def _labelme(folder: Path, frame: int, label: str, points: list[list[float]], size=(48, 64)) -> None:
    """A labelme JSON of frame ``frame`` of squares-a holding one polygon, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    shapes = [{"label": "vehicle", "points": [[1, 1], [5, 1], [1, 5]], "shape_type": "polygon"},
              {"label": label, "points": points, "shape_type": "polygon"}]  # fmt: skip
    data = {"imagePath": f"squares-a/{frame:05d}.jpg", "imageHeight": size[0], "imageWidth": size[1],
            "shapes": shapes}  # fmt: skip
    (folder / f"{frame:05d}.json").write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("label", "points", "size", "problem"),
    [
        ("vehicle", [[1, 1], [70, 1], [1, 5]], (48, 64),
         "sub/00004.json: shape 2: point (70, 1) lies outside the 64×48 frame"),
        ("vehicle", [[1, 1], [5, 1]], (48, 64), "sub/00004.json: shape 2: a polygon needs 3 points, got 2"),
        ("vehicle", [[1, 1], [5, 1], [1, 5]], (40, 64), "sub/00004.json: the file says 64×40, the frame"),
    ],
)  # fmt: skip
def test_a_folder_import_names_the_file_of_each_error(davis, tmp_path, capsys, label, points, size, problem):
    """Each error of a folder of labelme files names the file in the folder, not only the folder."""
    folder = tmp_path / "lm"
    _labelme(folder, 0, "vehicle", [[1, 1], [5, 1], [1, 5]])
    _labelme(folder / "sub", 4, label, points, size)
    store = tmp_path / "store"
    args = ["label", "import", str(folder), "--tool", "labelme", "--format", "davis", "--root", str(davis)]
    assert main([*args, "--out", str(store), "--map", "vehicle=object"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {folder}: {problem}"), line
    assert not store.exists()


def test_a_video_export_of_another_clip_is_refused_naming_both(davis, tmp_path, capsys):
    """A CVAT video task of squares-a imported on squares-b's frames alone: refused unless --clip says so."""
    xml = tmp_path / "squares-a.xml"
    write_cvat_video(xml, [(2, [(LabelKind.FINE, "object", 1, squares(2, 0) == 1)])], size=(48, 64),
                     labels=["object"], name="squares-a", frame_count=10)  # fmt: skip
    frames = davis / "JPEGImages" / "480p"
    store = tmp_path / "store"
    args = ["label", "import", str(xml), "--tool", "cvat-video", "--format", "video", "--out", str(store)]
    assert main([*args, "--root", str(frames / "squares-b")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --clip: {xml} is of video 'squares-a', not of clip squares-b, the only clip of the "
        "data set: import it where squares-a is, or give --clip squares-b if it is of squares-b"
    ]
    assert not store.exists()
    assert main([*args, "--root", str(frames / "squares-a")]) == 0
    label = cv2.imread(str(store / "all/squares-a/00002_fine_labelTrainIds.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(label == 1, squares(2, 0) == 1)
    other = tmp_path / "other"
    assert main([*args[:-1], str(other), "--root", str(frames / "squares-b"), "--clip", "squares-b"]) == 0
    assert (other / "all/squares-b/00002_fine_labelTrainIds.png").is_file()


def test_export_calls_the_tool_file_tool_as_import_does(davis, tmp_path, capsys):
    """``label export --tool`` names the tool's file format; the old ``--format`` is refused by argparse."""
    store = tmp_path / "store"
    args = ["label", "import", str(_coco(tmp_path / "coco.json")), "--tool", "coco", "--format", "davis"]
    assert main([*args, "--root", str(davis), "--out", str(store), "--map", "vehicle=object"]) == 0
    capsys.readouterr()
    out = tmp_path / "back.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["label", "export", "--store", str(store), "--format", "coco", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --tool" in capsys.readouterr().err
    assert not out.exists()
    assert main(["label", "export", "--store", str(store), "--tool", "coco", "--out", str(out)]) == 0
    assert f"→ {out} (coco)" in capsys.readouterr().out


def test_an_edited_tool_file_is_refused_by_the_store_it_was_imported_into(davis, tmp_path, capsys):
    import hashlib

    coco = _coco(tmp_path / "coco.json")
    store = tmp_path / "store"
    args = ["label", "import", str(coco), "--tool", "coco", "--format", "davis", "--root", str(davis),
            "--out", str(store), "--map", "vehicle=object", "--background", "background"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    then = hashlib.sha256(coco.read_bytes()).hexdigest()
    assert json.loads((store / "run.json").read_text(encoding="utf-8"))["settings"]["sha256"] == then
    assert main(args) == 0  # unchanged: the import resumes, skipping what is there
    assert f"→ 0 labels (none) in {store}, 3 already there" in capsys.readouterr().out
    label = store / "train/squares-a/00004_fine_labelTrainIds.png"
    before = label.read_bytes()
    data = json.loads(coco.read_text(encoding="utf-8"))
    data["annotations"][2]["segmentation"] = coco_encode(squares(3, 0) == 1)  # object 1 redrawn on frame 4
    coco.write_text(json.dumps(data), encoding="utf-8")
    now = hashlib.sha256(coco.read_bytes()).hexdigest()
    assert main(args) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {coco}: changed since it was imported into {store} (sha256 {then[:12]}… then, {now[:12]}… "
        "now); that store keeps what the file held then: give a new --out to import the file as it is now"
    ]
    assert label.read_bytes() == before and len((store / "manifest.jsonl").read_bytes().splitlines()) == 3
    again = tmp_path / "again"
    assert main([*args[:-5], str(again), *args[-4:]]) == 0
    ids = cv2.imread(str(again / "train/squares-a/00004_fine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ids == 1, squares(3, 0) == 1)


@pytest.mark.parametrize(
    ("file_name", "other"),
    [
        ("JPEGImages/480p/blackswan/00003.jpg", "blackswan"),  # a DAVIS tree's sequence
        ("blackswan.mp4/00003", "blackswan"),  # frugalseg's name of another video's frame
        ("00003.jpg", None),  # a file name alone (an upload)
        ("default/00003.jpg", None),  # a folder of the tool's own
        ("squares-b/00003.jpg", None),
    ],
)
def test_a_frame_named_in_another_clips_folder_is_refused(davis, tmp_path, capsys, file_name, other):
    clip = davis / "JPEGImages/480p/squares-b"  # a folder of frames as the video's clip
    coco = tmp_path / "coco.json"
    image = {"id": 1, "file_name": file_name, "width": 64, "height": 48}
    annotation = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}
    data = {"images": [image], "annotations": [annotation], "categories": [{"id": 1, "name": "object"}]}
    coco.write_text(json.dumps(data), encoding="utf-8")
    store = tmp_path / "store"
    args = ["label", "import", str(coco), "--tool", "coco", "--format", "video", "--root", str(clip)]
    if other is None:
        assert main([*args, "--out", str(store)]) == 0
        assert (store / "all/squares-b/00003_boxes_labelTrainIds.png").is_file()
        return
    assert main([*args, "--out", str(store)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {coco}: image 1 ({file_name}): {file_name!r} is a frame of {other}, not of clip squares-b "
        f"(only its file name matches {clip}/00003.jpg)"
    ]
    assert not store.exists()


def test_a_map_typed_under_the_c_locale_names_the_files_label(davis, tmp_path, capsys):
    coco = _coco(tmp_path / "coco.json")
    data = json.loads(coco.read_text(encoding="utf-8"))
    data["categories"] = [{"id": 7, "name": "objét"}]
    coco.write_text(json.dumps(data), encoding="utf-8")
    store = tmp_path / "store"
    args = ["label", "import", str(coco), "--tool", "coco", "--format", "davis", "--root", str(davis)]
    # what Python hands over for --map 'objét=object' when LC_ALL=C PYTHONUTF8=0
    assert main([*args, "--out", str(store), "--map", "obj\udcc3\udca9t=object"]) == 0
    assert f"→ 3 labels (1 boxes, 2 fine) in {store}, 0 already there" in capsys.readouterr().out


def test_printed_hints_quote_clip_and_label_names_as_one_word(davis, tmp_path, capsys):
    import shlex

    xml = tmp_path / "squares-a.xml"
    write_cvat_video(xml, [(2, [(LabelKind.FINE, "it's", 1, squares(2, 0) == 1)])], size=(48, 64),
                     labels=["it's"], name="squares-a", frame_count=10)  # fmt: skip
    clip = tmp_path / "voiture ombre"
    clip.symlink_to(davis / "JPEGImages/480p/squares-b")
    store = tmp_path / "store"
    args = ["label", "import", str(xml), "--tool", "cvat-video", "--format", "video", "--out", str(store)]
    assert main([*args, "--root", str(clip)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(
        "import it where squares-a is, or give --clip 'voiture ombre' if it is of voiture ombre"
    ), line
    # an object's name is any name on a folder of frames: a --background that names no class shows the hint
    assert main([*args, "--root", str(clip), "--clip", "voiture ombre", "--background", "it's"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    hint = "map it with --map 'it'\"'\"'s=CLASS' or a --mapping file"
    assert line.endswith(hint) and shlex.split(hint)[4] == "it's=CLASS", line
    assert not store.exists()


def test_report_prices_an_import_at_the_anchor_by_its_own_objects(davis, tmp_path, capsys):
    """Frame 0 is the anchor, whose truth holds two squares; the person drew one: one mask's work
    (the data set's objects were counted)."""
    ids = squares(0, 0)
    data = {
        "images": [{"id": 1, "file_name": "squares-a/00000.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "segmentation": coco_encode(ids == 1),
                         "iscrowd": 1}],
        "categories": [{"id": 7, "name": "vehicle"}],
    }  # fmt: skip
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps(data), encoding="utf-8")
    store = tmp_path / "store"
    args = ["label", "import", str(coco), "--tool", "coco", "--format", "davis", "--root", str(davis)]
    assert main([*args, "--out", str(store), "--map", "vehicle=object"]) == 0
    assert len(np.unique(ids[ids > 0])) == 2
    assert main(["label", "report", str(store), "--no-progress"]) == 0
    assert "(1 object masks)" in capsys.readouterr().out


def test_an_out_that_is_a_file_or_a_folder_of_other_files_is_refused(davis, tmp_path, capsys):
    """``--out`` a file had been '[Errno 20] Not a directory', a folder of other files took the labels beside
    them, and ``label export --out`` a folder '[Errno 21] Is a directory'."""
    coco = _coco(tmp_path / "coco.json")
    start = ["label", "import", str(coco), "--tool", "coco", "--format", "davis", "--root", str(davis)]
    start += ["--map", "vehicle=object"]
    notes = tmp_path / "notes.txt"
    notes.write_text("mine", encoding="utf-8")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "photo.jpg").write_bytes(b"mine")
    for out, problem in (
        (notes, f"{notes} is a file: name a new folder for the label store"),
        (
            notes / "store",
            f"{notes / 'store'}: {notes} is a file, not a folder: name a new folder for the label store",
        ),
        (mine, f"{mine} holds files but no label store: name a new folder for the store"),
    ):
        assert main([*start, "--out", str(out)]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: --out: {problem}"
    assert sorted(p.name for p in mine.iterdir()) == ["photo.jpg"]
    store = tmp_path / "store"
    assert main([*start, "--out", str(store)]) == 0
    assert main([*start, "--out", str(store)]) == 0  # a store is resumed
    creating = tmp_path / "creating"  # another run's store: its lock and manifest made, its run.json not yet
    creating.mkdir()
    (creating / "manifest.jsonl").write_bytes(b"")
    assert main([*start, "--out", str(creating)]) == 2  # a manifest alone is a file of some other tool
    (creating / ".lock").write_bytes(b"")
    assert main([*start, "--out", str(creating)]) == 0
    capsys.readouterr()
    assert main(["label", "export", "--store", str(store), "--tool", "coco", "--out", str(mine)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == f"error: --out: {mine} is a folder: name the file to write"
    manifest = (store / "manifest.jsonl").read_bytes()
    for inside in (store / "manifest.jsonl", store / "new.json"):  # the manifest had been overwritten
        assert main(["label", "export", "--store", str(store), "--tool", "coco", "--out", str(inside)]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error == f"error: --out: {inside} lies in the store {store}: write the tool's file elsewhere"
    assert (store / "manifest.jsonl").read_bytes() == manifest and not (store / "new.json").exists()
    xml = ["label", "export", "--store", str(store), "--tool", "cvat-video"]
    assert (
        main([*xml, "--out", str(tmp_path / "x.json")]) == 2
    )  # an XML file had been written as x.json without a word
    assert (
        capsys.readouterr().err.strip()
        == f"error: --out: {tmp_path / 'x.json'}: --tool cvat-video writes a .xml file"
    )
    assert not (tmp_path / "x.json").exists()


def test_a_frame_past_the_end_of_its_named_clip_is_refused_not_left_out(tmp_path, capsys):
    """squares-a has 4 frames, squares-b 10: squares-a's 00007 is no frame, whatever squares-b holds."""
    from data.fake_davis import squares, write_davis

    masks = {"squares-a": [squares(t, 0) for t in range(4)], "squares-b": [squares(t, 1) for t in range(10)]}
    root = write_davis(tmp_path / "davis", masks)
    coco = tmp_path / "coco.json"
    names = ["JPEGImages/480p/squares-b/00003.jpg", "JPEGImages/480p/squares-a/00007.jpg"]
    images = [{"id": k, "file_name": name, "width": 64, "height": 48} for k, name in enumerate(names, 1)]
    annotations = [{"id": k, "image_id": k, "category_id": 1, "bbox": [1, 2, 3, 4]} for k in (1, 2)]
    data = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "object"}]}
    coco.write_text(json.dumps(data), encoding="utf-8")
    store = tmp_path / "store"
    args = ["label", "import", str(coco), "--tool", "coco", "--format", "davis", "--root", str(root)]
    assert main([*args, "--out", str(store)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {coco}: image 2 ({names[1]}): {names[1]!r}: clip squares-a holds no frame 00007.jpg (its "
        "frames: 00000.jpg…00003.jpg)"
    ]
    assert not store.exists()


@pytest.mark.parametrize("option", ["--out", "--frames-out"])
def test_export_into_the_data_set_is_refused_and_writes_nothing(davis, tmp_path, capsys, option):
    """A tool's file or frames written into the data set had been read as a sequence (JPEGImages/480p/…) by
    every later command, or had overwritten a frame."""
    data = shutil.copytree(davis, tmp_path / "data")
    store = tmp_path / "store"
    imported = ["label", "import", str(_coco(tmp_path / "coco.json")), "--tool", "coco", "--format", "davis"]
    assert main([*imported, "--root", str(data), "--out", str(store), "--map", "vehicle=object"]) == 0
    inside = data / "JPEGImages" / "480p"
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    out = (
        ["--out", str(inside / "squares-a" / "00003.jpg")]
        if option == "--out"
        else ["--out", str(tmp_path / "t.json")]
    )
    frames = ["--frames-out", str(inside)] if option == "--frames-out" else []
    assert main(["label", "export", "--store", str(store), "--tool", "label-studio", *out, *frames]) == 2
    err = capsys.readouterr().err
    assert f"error: {option}: " in err and f"is inside the data set folder {data}" in err
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    assert not (tmp_path / "t.json").exists()
