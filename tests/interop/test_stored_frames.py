"""The way from a store back to a tool (`frugalseg.interop.stored_frames`): which clicks and lines go out as
the tool's marks, and that they come back as they were."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from frugalseg.cli import main
from frugalseg.data.clips import IGNORE_INDEX


def _png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return np.asarray(image)


LINE_AND_CLICK = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><name>images</name><size>3</size><mode>interpolation</mode>
<start_frame>0</start_frame><stop_frame>2</stop_frame><labels><label><name>object</name></label></labels>
<original_size><width>25</width><height>20</height></original_size></task></meta>
<track id="0" label="object"><polyline frame="1" outside="0" occluded="0" keyframe="1"
 points="2.5,2.5;20.5,2.5" z_order="0"><attribute name="frugalseg_kind">clicks</attribute></polyline></track>
<track id="1" label="object"><points frame="1" outside="0" occluded="0" keyframe="1" points="10.5,2.5"
 z_order="0"><attribute name="frugalseg_kind">clicks</attribute></points></track>
</annotations>
"""


def _line_and_click_store(shared_data: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """`LINE_AND_CLICK` imported onto the sample's frames: the store, and the data options it was given."""
    images = shared_data / "tool_exports/cvat_dataset/for_video/images"
    where = ["--format", "video", "--root", str(images), "--clip", "images", "--map", "object=object"]
    (tmp_path / "task.xml").write_text(LINE_AND_CLICK, encoding="utf-8")
    store = tmp_path / "store"
    assert (
        main(
            [
                "label",
                "import",
                str(tmp_path / "task.xml"),
                "--tool",
                "cvat-video",
                *where,
                "--out",
                str(store),
            ]
        )
        == 0
    )
    return store, where


def test_a_click_of_one_object_on_a_line_of_another_comes_back_over_the_line(shared_data, tmp_path, capsys):
    """Object 2's click lies on object 1's line: CVAT's file had the line drawn over it once read back."""
    store, where = _line_and_click_store(shared_data, tmp_path)
    back, out = tmp_path / "back", tmp_path / "out.xml"
    assert main(["label", "export", "--store", str(store), "--tool", "cvat-video", "--out", str(out)]) == 0
    assert main(["label", "import", str(out), "--tool", "cvat-video", *where, "--out", str(back)]) == 0, (
        capsys.readouterr()
    )
    stem = "all/images/frame_000013_clicks"
    ids = _png(store / f"{stem}_instanceIds.png")
    assert (ids[2, 2], ids[2, 10], ids[2, 20]) == (1, 2, 1)
    np.testing.assert_array_equal(_png(back / f"{stem}_instanceIds.png"), ids)
    sent, came = (json.loads((s / f"{stem}.json").read_text("utf-8")) for s in (store, back))
    assert came == sent and len(sent["scribbles"]) == len(sent["clicks"]) == 1


def test_a_store_s_malformed_scribble_is_named_when_exported(shared_data, tmp_path, capsys):
    store, _ = _line_and_click_store(shared_data, tmp_path)
    side = store / "all/images/frame_000013_clicks.json"
    record = json.loads(side.read_text("utf-8"))
    record["scribbles"][0]["points"] = [[2.5, 2.5]]  # one vertex: no line
    side.write_text(json.dumps(record), encoding="utf-8")
    assert (
        main(
            [
                "label",
                "export",
                "--store",
                str(store),
                "--tool",
                "cvat-video",
                "--out",
                str(tmp_path / "o.xml"),
            ]
        )
        == 2
    )
    assert f"{side}: a scribble must be" in capsys.readouterr().err
    assert not (tmp_path / "o.xml").exists()


def test_a_label_clicks_store_s_clicks_go_out_as_points_though_it_keeps_no_instance_map(tmp_path):
    """`label clicks` gives a thing's click its instance id (26001) and writes no instance map: the clicks
    had gone out as one-pixel masks once objects were compared with a map that is not there."""
    from frugalseg.autolabel.clicks import Click, clicks_json, clicks_json_path
    from frugalseg.data.io import write_json_atomic, write_png_atomic
    from frugalseg.interop.stored_frames import _given_marks

    path = tmp_path / "a_clicks_labelTrainIds.png"
    label = np.full((8, 10), IGNORE_INDEX, np.uint8)
    label[4, 3] = 13
    write_png_atomic(path, label)
    click = Click(3, 4, 13, 26001)
    write_json_atomic(clicks_json_path(path), clicks_json([click], (8, 10), 0))
    classes = [f"c{k}" for k in range(19)]
    assert _given_marks(path, label, None, classes) == ([("c13", click)], [])
    other = np.zeros((8, 10), np.uint8)  # a map that says another object: the marks do not draw it
    assert _given_marks(path, label, other, classes) == ([], [])
