"""A CVAT for video task exported with its images (``frame_000010.png`` …) imports onto those images.

CVAT names the images of video frame N ``frame_N`` (six digits); a task of start_frame 10 and step 3
holds frames 10, 13, 16, which the folder's files name, not their places 0, 1, 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from frugalseg.cli import main

_TASK = """<annotations><version>1.1</version><meta><task><name>t</name><size>{size}</size>
<start_frame>10</start_frame><stop_frame>{stop}</stop_frame><frame_filter>step=3</frame_filter>
<labels><label><name>car</name></label></labels>
<original_size><width>64</width><height>48</height></original_size></task><source>t.mp4</source></meta>
<track id="0" label="car">
<box frame="{frame}" outside="0" occluded="0" keyframe="1" xtl="4" ytl="6" xbr="20" ybr="16" z_order="0"/>
<box frame="{after}" outside="1" occluded="0" keyframe="1" xtl="4" ytl="6" xbr="20" ybr="16" z_order="0"/>
</track></annotations>"""


def _images(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for number in (10, 13, 16):
        cv2.imwrite(str(folder / f"frame_{number:06d}.png"), np.full((48, 64, 3), number, np.uint8))
    return folder


def _args(xml: Path, images: Path, store: Path) -> list[str]:
    return ["label", "import", str(xml), "--tool", "cvat-video", "--format", "video", "--root", str(images),
            "--split", "all", "--clip", "images", "--map", "car=object", "--out", str(store)]  # fmt: skip


def test_a_video_task_imports_onto_its_frames_named_by_number(tmp_path, capsys):
    images = _images(tmp_path / "images")
    xml = tmp_path / "annotations.xml"
    xml.write_text(_TASK.format(size=3, stop=16, frame=13, after=16), encoding="utf-8")
    store = tmp_path / "store"
    assert main(_args(xml, images, store)) == 0, capsys.readouterr().err
    assert "1 frames, 1 shapes" in capsys.readouterr().out
    boxes = json.loads((store / "all/images/frame_000013_boxes.json").read_text(encoding="utf-8"))
    assert [(b["x0"], b["y0"], b["x1"], b["y1"]) for b in boxes["boxes"]] == [(4, 6, 20, 16)]
    assert not (store / "all/images/frame_000010_boxes.json").exists()

    # frugalseg's own CVAT file numbers the folder's frames by place (0, 1, 2), and reads back so
    back = tmp_path / "back.xml"
    assert main(["label", "export", "--store", str(store), "--tool", "cvat-video", "--out", str(back)]) == 0
    assert 'frame="1"' in back.read_text(encoding="utf-8")
    again = tmp_path / "again"
    assert main([*_args(back, images, again)[:-4], "--out", str(again)]) == 0
    for name in ("frame_000013_boxes_labelTrainIds.png", "frame_000013_boxes_instanceIds.png"):
        a = cv2.imread(str(store / "all/images" / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(again / "all/images" / name), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(a, b)


def test_a_task_frame_the_folder_lacks_is_named(tmp_path, capsys):
    images = _images(tmp_path / "images")
    xml = tmp_path / "annotations.xml"
    xml.write_text(_TASK.format(size=4, stop=19, frame=19, after=19), encoding="utf-8")
    store = tmp_path / "store"
    assert main(_args(xml, images, store)) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {xml}: frame 19 (track 0): clip images holds no frame_000019 "
        "(its 3 frames are named frame_000010…frame_000016)"
    ]
    assert not store.exists()


def test_frames_named_img1_to_img12_are_said_to_need_cvat_s_natural_sorting(tmp_path, capsys, caplog):
    """CVAT sorts a task's images as text by default (img10 before img2), and a CVAT for video file numbers
    frames by place: frugalseg's file of such a folder put its masks on other frames of that task, unsaid."""
    images = tmp_path / "images"
    images.mkdir()
    for number in range(1, 13):
        cv2.imwrite(str(images / f"img{number}.png"), np.full((48, 64, 3), number, np.uint8))
    xml = tmp_path / "annotations.xml"
    task = _TASK.format(size=12, stop=11, frame=1, after=2).replace("<start_frame>10", "<start_frame>0")
    xml.write_text(task.replace("step=3", ""), encoding="utf-8")
    back = tmp_path / "back.xml"
    with caplog.at_level("WARNING", logger="frugalseg"):
        assert main(_args(xml, images, tmp_path / "store")) == 0, capsys.readouterr().err
        export = ["label", "export", "--store", str(tmp_path / "store"), "--tool", "cvat-video", "--out"]
        assert main([*export, str(back)]) == 0
    said = [r.getMessage() for r in caplog.records if "Sorting method 'Natural'" in r.getMessage()]
    assert said == [
        f"{path}: the frames of images are in another order when sorted as text, CVAT's default (its frame 1 "
        "is img2.png, as text img10.png): create its CVAT task with Sorting method 'Natural', or its frame "
        "numbers are other frames"
        for path in (xml, back)
    ]
    assert (tmp_path / "store/all/images/img2_boxes.json").exists()  # frame 1 is the clip's second frame
