"""`frugalseg annotate export` and ``annotate propose --task`` keep each object apart and under its name.

The data are squares-a of `data.fake_davis` (10 frames of 64×48 holding objects 1 and 2) as a person's
folder of frames (format ``video``); the person names object 1 ``car`` and object 2 ``road patch``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import squares

from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.cli import main

pytestmark = pytest.mark.usefixtures("one_cv_thread")

NAMES = ["--name", "1=car", "--name", "2=road patch"]


@pytest.fixture(scope="module")
def named(frames: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session whose frame 0 is drawn with objects 1 (car) and 2 (road patch)."""
    state = tmp_path_factory.mktemp("session") / "two"
    start = ["--format", "video", "--root", str(frames), "--flow-downscale", "2"]
    first = ["--video", "squares-a", "--frame", "0", "--mask", str(frames.parents[3] / "a0.png")]
    assert main(["annotate", "add", "--state", str(state), *start, *first, *NAMES]) == 0
    return state


def test_export_keeps_object_ids_in_the_store_and_names_in_its_tool_files(
    named: Path, tmp_path: Path, capsys
) -> None:
    capsys.readouterr()
    out = tmp_path / "two-labels"
    assert main(["annotate", "export", "--state", str(named), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        f"tool files of 10 frames, each object under its id and name, in {out}-tools/: "
        "coco.json, label-studio.json, cvat-video-squares-a.xml"
    )
    config = f"{out}-tools/label-studio-config.xml"
    assert lines[2] == f"the labeling config of a Label Studio project for its tasks: {config}"
    assert '<BrushLabels name="label" toName="image">' in Path(config).read_text(encoding="utf-8")
    masks = AnnotationSession.open(named).state("squares-a").masks
    for t in range(10):
        kind = "fine" if t == 0 else "pseudo"
        ids = cv2.imread(
            str(out / "all" / "squares-a" / f"{t:05d}_{kind}_instanceIds.png"), cv2.IMREAD_UNCHANGED
        )
        np.testing.assert_array_equal(ids, masks[t], err_msg=f"frame {t}")
    assert set(np.unique(masks[0]).tolist()) == {0, 1, 2}

    coco = json.loads((Path(f"{out}-tools") / "coco.json").read_text(encoding="utf-8"))
    assert coco["categories"] == [
        {"id": 1, "name": "car", "supercategory": ""},
        {"id": 2, "name": "road patch", "supercategory": ""},
    ]
    first = [a for a in coco["annotations"] if a["image_id"] == coco["images"][0]["id"]]
    assert sorted((a["category_id"], a["area"]) for a in first) == [
        (1, int((squares(0, 0) == 1).sum())),
        (2, int((squares(0, 0) == 2).sum())),
    ]

    # `label export` of the store: two objects on the first frame, each under its name (the store's run
    # records them), not one merged "object"
    store_coco = tmp_path / "two.coco.json"
    assert main(["label", "export", "--store", str(out), "--tool", "coco", "--out", str(store_coco)]) == 0
    exported = json.loads(store_coco.read_text(encoding="utf-8"))
    category = {c["id"]: c["name"] for c in exported["categories"]}
    assert sorted(category.values()) == ["background", "car", "object", "road patch"]
    image = exported["images"][0]["id"]
    named = sorted(
        (category[a["category_id"]], a["area"])
        for a in exported["annotations"]
        if a["image_id"] == image and category[a["category_id"]] != "background"
    )
    assert named == [
        ("car", int((squares(0, 0) == 1).sum())),
        ("road patch", int((squares(0, 0) == 2).sum())),
    ]


def test_a_task_names_its_objects_and_imports_back_as_they_are(
    named: Path, frames: Path, tmp_path: Path, capsys
) -> None:
    """Its object names map to the video's one class without a --map (which its line had printed)."""
    capsys.readouterr()
    task = tmp_path / "task.json"
    propose = ["annotate", "propose", "--state", str(named), "--frames", "uniform", "--json"]
    assert main([*propose, "--task", str(task), "--task-format", "label-studio"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["frame"] == 9  # stdout holds the proposal, the task line goes to stderr
    assert printed.err == (
        f"task: {task} (label-studio) holds frame 9 of squares-a with 2 object masks; the labeling config "
        f"of a Label Studio project for it: {tmp_path / 'task-config.xml'}\n"
    )
    (record,) = json.loads(task.read_text(encoding="utf-8"))
    labels = [r["value"]["brushlabels"] for r in record["predictions"][0]["result"]]
    assert labels == [["background"], ["car"], ["road patch"]]

    store = tmp_path / "store"
    imported = ["label", "import", str(task), "--tool", "label-studio", "--format", "video"]
    assert main([*imported, "--root", str(frames), "--out", str(store)]) == 0
    ids = cv2.imread(str(store / "all" / "squares-a" / "00009_pseudo_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ids, AnnotationSession.open(named).current_mask("squares-a", 9))


def test_a_store_whose_object_names_are_not_names_is_refused_naming_its_run(
    named: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "labels"
    assert main(["annotate", "export", "--state", str(named), "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["object_names"] == {"squares-a": {"1": "car", "2": "road patch"}}
    run["object_names"] = ["car"]
    (out / "run.json").write_text(json.dumps(run), encoding="utf-8")
    capsys.readouterr()
    coco = tmp_path / "x.json"
    assert main(["label", "export", "--store", str(out), "--tool", "coco", "--out", str(coco)]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'run.json'}: object_names is not {{clip: {{object id: name}}}}" in err
    assert "Traceback" not in err and not coco.exists()


def test_a_frame_without_objects_is_in_the_tool_files_and_imports_back(
    frames: Path, tmp_path: Path, capsys
) -> None:
    """Frames the objects had left held no shape, so their tool files dropped them: 10 labels exported,
    fewer came back."""
    state = tmp_path / "gone"
    start = ["--format", "video", "--root", str(frames), "--flow-downscale", "2", "--video", "squares-a"]
    cv2.imwrite(str(tmp_path / "none.png"), np.zeros((48, 64), np.uint8))
    assert main(["annotate", "add", "--state", str(state), *start, "--frame", "0", "--mask",
                 str(frames.parents[3] / "a0.png")]) == 0  # fmt: skip
    assert main(["annotate", "add", "--state", str(state), *start, "--frame", "9", "--mask",
                 str(tmp_path / "none.png")]) == 0  # fmt: skip
    masks = AnnotationSession.open(state).state("squares-a").masks
    empty = [t for t, ids in enumerate(masks) if not ids.any()]
    assert 9 in empty
    out = tmp_path / "labels"
    assert main(["annotate", "export", "--state", str(state), "--out", str(out)]) == 0
    capsys.readouterr()
    for tool, name in (("coco", "coco.json"), ("cvat-video", "cvat-video-squares-a.xml")):
        back = tmp_path / f"back-{tool}"
        imported = ["label", "import", str(Path(f"{out}-tools") / name), "--tool", tool, "--format", "video"]
        assert main([*imported, "--root", str(frames), "--map", "object=object", "--out", str(back)]) == 0
        records = [json.loads(line) for line in (back / "manifest.jsonl").read_text().splitlines()]
        assert sorted(r["offset"] for r in records) == list(range(10)), tool
        for t in empty:
            (record,) = [r for r in records if r["offset"] == t]
            label = cv2.imread(str(back / record["path"]), cv2.IMREAD_UNCHANGED)
            assert (label == 0).all(), (tool, t)


def test_the_frames_of_a_video_file_are_written_for_the_tools(tmp_path: Path, capsys) -> None:
    """Label Studio's tasks of a video file's session had named ``clip.mp4/00000`` files nowhere; the frames
    are PNGs under ``<store>-tools/frames/`` now, and the tool files name them and import back."""
    from data.fake_video import numbered_frame, read_number, write_video

    from frugalseg.autolabel.store import LabelStore

    video = write_video(tmp_path / "clip.mp4", [numbered_frame(t) for t in range(4)])
    mask = np.zeros((64, 128), np.uint8)
    mask[20:50, 30:90] = 1
    cv2.imwrite(str(tmp_path / "a0.png"), mask)
    state, out = tmp_path / "s", tmp_path / "ex"
    start = ["--format", "video", "--root", str(video), "--flow-downscale", "2", "--video", "clip"]
    added = [
        "annotate",
        "add",
        "--state",
        str(state),
        *start,
        "--frame",
        "0",
        "--mask",
        str(tmp_path / "a0.png"),
    ]
    assert main(added) == 0
    assert main(["annotate", "export", "--state", str(state), "--out", str(out)]) == 0
    capsys.readouterr()
    tools = Path(f"{out}-tools")
    tasks = json.loads((tools / "label-studio.json").read_text(encoding="utf-8"))
    named = [task["data"]["image"].split("?d=", 1)[1] for task in tasks]
    assert named == [f"clip.mp4/{t:05d}.png" for t in range(4)]
    for t in range(4):
        frame = cv2.imread(str(tools / "frames" / "clip.mp4" / f"{t:05d}.png"))[..., ::-1]
        assert frame.shape == (64, 128, 3) and read_number(frame) == t
    back = tmp_path / "back"
    imported = ["label", "import", str(tools / "label-studio.json"), "--tool", "label-studio"]
    assert main([*imported, "--format", "video", "--root", str(video), "--out", str(back)]) == 0
    assert sorted(r["offset"] for r in LabelStore(back).records()) == [0, 1, 2, 3]


def test_label_studio_tasks_of_one_folder_of_frames_name_the_folder(
    named: Path, frames: Path, tmp_path: Path, capsys
) -> None:
    """Label Studio serves files below its document root only: tasks naming ``00000.jpg`` alone could not
    be served from any root (the folder itself is refused as one); ``squares-a/00000.jpg`` is, from the
    folder above."""
    out = tmp_path / "ex"
    assert main(["annotate", "export", "--state", str(named), "--out", str(out)]) == 0
    capsys.readouterr()
    tasks = json.loads((Path(f"{out}-tools") / "label-studio.json").read_text(encoding="utf-8"))
    assert [task["data"]["image"] for task in tasks] == [
        f"/data/local-files/?d=squares-a/{t:05d}.jpg" for t in range(10)
    ]
    assert all((frames.parent / task["data"]["image"].split("?d=")[1]).is_file() for task in tasks)
    back = tmp_path / "back"
    imported = ["label", "import", str(Path(f"{out}-tools") / "label-studio.json"), "--tool", "label-studio"]
    assert main([*imported, "--format", "video", "--root", str(frames), "--out", str(back)]) == 0
    ids = cv2.imread(str(back / "all" / "squares-a" / "00004_pseudo_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ids, AnnotationSession.open(named).current_mask("squares-a", 4))


def test_a_new_export_leaves_a_tool_folder_it_did_not_make_as_it_was(
    named: Path, tmp_path: Path, capsys
) -> None:
    """``<out>-tools/`` holding a person's files: a new export had overwritten their ``coco.json``, and one
    that failed (or was stopped) removed the whole folder with their notes."""
    out = tmp_path / "labels"
    tools = Path(f"{out}-tools")
    tools.mkdir()
    (tools / "coco.json").write_text('{"mine": true}', encoding="utf-8")
    (tools / "notes.txt").write_text("mine", encoding="utf-8")
    capsys.readouterr()
    assert main(["annotate", "export", "--state", str(named), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: --out: {tools} holds files of its own, and a new export writes its tool files there: move "
        "them, or give another --out\n"
    )
    assert sorted(p.name for p in tools.iterdir()) == ["coco.json", "notes.txt"]
    assert (tools / "coco.json").read_text(encoding="utf-8") == '{"mine": true}' and not out.exists()
    # the tool folder of an earlier export of this store is this export's to write again
    (tools / "coco.json").unlink()
    (tools / "notes.txt").unlink()
    assert main(["annotate", "export", "--state", str(named), "--out", str(out)]) == 0
    assert main(["annotate", "export", "--state", str(named), "--out", str(out)]) == 0
