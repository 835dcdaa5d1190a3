"""The annotation loop through a tool: `annotate propose --task` writes the proposed frame with its current
masks, `label import` of the tool's file gives its object ids, and `annotate add --mask` takes them."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from data.fake_davis import palette_png, squares, write_moving_squares

from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.cli import main


@pytest.fixture(autouse=True)
def one_cv_thread():
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(previous)


@pytest.mark.parametrize("tool", ["label-studio", "cvat-video"])
def test_propose_a_task_import_it_and_add_it(tool, tmp_path, capsys):
    davis = write_moving_squares(tmp_path / "davis")
    shutil.rmtree(davis / "Annotations")  # a person's data: frames without masks, read as format video
    frames = davis / "JPEGImages" / "480p" / "squares-a"
    palette_png(tmp_path / "a0.png", squares(0, 0))
    state = tmp_path / "session"
    start = ["--root", str(frames), "--split", "all"]
    first = ["--video", "squares-a", "--frame", "0", "--mask", str(tmp_path / "a0.png")]
    assert main(["annotate", "add", "--state", str(state), "--format", "video", *start, *first]) == 0
    capsys.readouterr()
    task = tmp_path / ("task.json" if tool == "label-studio" else "task.xml")
    propose = ["annotate", "propose", "--state", str(state), "--video", "squares-a", "--frames", "uniform"]
    assert main([*propose, "--json", "--task", str(task), "--task-format", tool]) == 0
    printed = capsys.readouterr()
    frame = json.loads(printed.out)["frame"]  # stdout holds the one JSON object
    config = f"; the labeling config of a Label Studio project for it: {tmp_path / 'task-config.xml'}"
    said = f"task: {task} ({tool}) holds frame {frame} of squares-a with 2 object masks"
    assert printed.err == said + (config if tool == "label-studio" else "") + "\n"
    assert (tmp_path / "task-config.xml").is_file() == (tool == "label-studio")
    current = AnnotationSession.open(state).current_mask("squares-a", frame)
    assert current is not None and set(np.unique(current).tolist()) == {0, 1, 2}

    store = tmp_path / "store"
    imported = [
        "label",
        "import",
        str(task),
        "--tool",
        tool,
        "--format",
        "video",
        *start,
        "--out",
        str(store),
    ]
    assert main(imported) == 0
    ids_path = store / f"all/squares-a/{frame:05d}_pseudo_instanceIds.png"
    ids = cv2.imread(str(ids_path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ids, current)  # the tool's file holds the loop's masks, object by object
    made = ["--video", "squares-a", "--frame", str(frame), "--mask", str(ids_path)]
    assert main(["annotate", "add", "--state", str(state), *made]) == 0
    assert frame in AnnotationSession.open(state).state("squares-a").annotated


def test_a_task_of_a_videos_frame_names_the_frame_written_beside_it(tmp_path, capsys):
    """`propose --task --frames-out`: Label Studio cannot serve ``x.mp4/00005``: a PNG of it is named."""
    from data.fake_davis import COLOURS
    from data.fake_video import write_video

    from frugalseg.data.io import read_frame

    videos = tmp_path / "videos"
    write_video(videos / "squares-a.mp4", [COLOURS[squares(t, 0)] for t in range(6)])
    palette_png(tmp_path / "a0.png", squares(0, 0))
    state, task, frames = tmp_path / "session", tmp_path / "task.json", tmp_path / "frames"
    start = ["--state", str(state), "--format", "video", "--root", str(videos), "--split", "all"]
    first = ["--video", "squares-a", "--frame", "0", "--mask", str(tmp_path / "a0.png")]
    assert main(["annotate", "add", *start, *first]) == 0
    capsys.readouterr()
    propose = ["annotate", "propose", "--state", str(state), "--frames", "uniform", "--json"]
    assert (
        main([*propose, "--task", str(task), "--task-format", "label-studio", "--frames-out", str(frames)])
        == 0
    )
    frame = json.loads(capsys.readouterr().out)["frame"]
    (written,) = json.loads(task.read_text(encoding="utf-8"))
    assert written["data"]["image"] == f"/data/local-files/?d=squares-a.mp4/{frame:05d}.png"
    shown = read_frame(frames / "squares-a.mp4" / f"{frame:05d}.png")
    np.testing.assert_array_equal(shown, read_frame(videos / "squares-a.mp4" / f"{frame:05d}"))
    assert main([*propose, "--frames-out", str(frames)]) == 2
    assert "--frames-out: writes the frame of a --task: give --task too" in capsys.readouterr().err


def test_a_tasks_tool_format_follows_its_suffix_and_a_mismatch_is_refused(tmp_path, capsys):
    """A ``.json`` task had been written as CVAT XML (the default format) without a word."""
    davis = write_moving_squares(tmp_path / "davis")
    palette_png(tmp_path / "a0.png", squares(0, 0))
    state = tmp_path / "session"
    start = [
        "--format",
        "video",
        "--root",
        str(davis / "JPEGImages" / "480p" / "squares-a"),
        "--split",
        "all",
    ]
    first = ["--video", "squares-a", "--frame", "0", "--mask", str(tmp_path / "a0.png")]
    assert main(["annotate", "add", "--state", str(state), *start, *first]) == 0
    propose = ["annotate", "propose", "--state", str(state), "--frames", "uniform"]
    capsys.readouterr()
    assert main([*propose, "--task", str(tmp_path / "task.json")]) == 0
    assert "(label-studio) holds frame" in capsys.readouterr().out
    assert isinstance(json.loads((tmp_path / "task.json").read_text(encoding="utf-8")), list)
    assert main([*propose, "--task", str(tmp_path / "task.xml")]) == 0
    assert "(cvat-video) holds frame" in capsys.readouterr().out
    assert (tmp_path / "task.xml").read_text(encoding="utf-8").startswith("<?xml")
    refused = {
        ("--task", str(tmp_path / "t.json"), "--task-format", "cvat-video"): (
            f"--task: {tmp_path / 't.json'}: --task-format cvat-video writes a .xml file"
        ),
        ("--task", str(tmp_path / "t.txt")): (
            f"--task: {tmp_path / 't.txt'}: name its tool with --task-format ("
        ),
        ("--task-format", "label-studio"): "--task-format: is the tool format of a --task: give --task too",
    }
    for options, said in refused.items():
        assert main([*propose, *options]) == 2
        assert said in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "t.txt").exists()
