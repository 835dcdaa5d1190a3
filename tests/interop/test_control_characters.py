"""Object names with control characters (``"car\\u0000x\\u000bname"``) still give files every tool parses:
the JSON writers escape them, the CVAT XML writer puts U+FFFD where XML 1.0 cannot hold a character."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from frugalseg.data.clips import Clip, LabelKind
from frugalseg.interop import read_export, write_tool_files
from frugalseg.interop.cvat import write_cvat_video
from frugalseg.interop.stored_frames import StoredFrame

HOSTILE = "car\u0000x\u000bname"
SHOWN = "car\ufffdx\ufffdname"


def square() -> np.ndarray:
    mask = np.zeros((8, 8), bool)
    mask[2:5, 3:6] = True
    return mask


def test_every_writer_s_file_parses(tmp_path: Path) -> None:
    clip = Clip("clip", "train", [tmp_path / "00000.jpg", tmp_path / "00001.jpg"], 0)
    objects = [(LabelKind.FINE, HOSTILE, 1, square()), (LabelKind.FINE, "tab\tand\nline", 2, ~square())]
    frames = [StoredFrame(clip, 0, "clip/00000.jpg", (8, 8), objects)]
    files = write_tool_files(frames, [HOSTILE, "tab\tand\nline"], tmp_path / "tools")
    assert [f.name for f in files] == ["coco.json", "label-studio.json", "cvat-video-clip.xml"]
    coco = json.loads(files[0].read_text(encoding="utf-8"))
    assert HOSTILE in [c["name"] for c in coco["categories"]]  # JSON keeps the name as it was
    json.loads(files[1].read_text(encoding="utf-8"))
    ElementTree.parse(files[2])  # today: "not well-formed (invalid token)"
    cvat = read_export("cvat-video", files[2])
    assert cvat.labels == (SHOWN, "tab\tand\nline")
    assert sorted(s.label for f in cvat.frames for s in f.shapes) == [SHOWN, "tab\tand\nline"]


def test_a_task_name_and_repeated_labels_are_written_as_xml_text(tmp_path: Path) -> None:
    path = tmp_path / "video.xml"
    objects = [(LabelKind.FINE, "a\u0001", 1, square()), (LabelKind.FINE, "a\u0002", 2, ~square())]
    labels = ["a\u0001", "a\u0002", "\ud800"]
    write_cvat_video(path, [(0, objects)], size=(8, 8), labels=labels, name="v\u001b", frame_count=1)
    root = ElementTree.parse(path).getroot()
    assert root.findtext("meta/task/name") == "v\ufffd"
    assert [e.text for e in root.iterfind("meta/task/labels/label/name")] == ["a\ufffd", "\ufffd"]
    assert [t.get("label") for t in root.iterfind("track")] == ["a\ufffd", "a\ufffd"]  # two objects still
