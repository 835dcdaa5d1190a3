"""The zip CVAT exports reads as the ``annotations.xml`` inside it, for both CVAT XML formats."""

from __future__ import annotations

import re
import zipfile

import pytest

from frugalseg.errors import DataError
from frugalseg.interop import read_export

VIDEO = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><name>clip</name><size>4</size><start_frame>0</start_frame>
<stop_frame>3</stop_frame><labels><label><name>car</name></label></labels>
<original_size><width>8</width><height>6</height></original_size></task></meta>
<track id="0" label="car"><box frame="1" keyframe="1" outside="0" xtl="1" ytl="2" xbr="3" ybr="5"/>
<box frame="2" keyframe="1" outside="1" xtl="1" ytl="2" xbr="3" ybr="5"/></track></annotations>
"""
IMAGES = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><name>clip</name><labels><label><name>car</name></label></labels></task></meta>
<image id="0" name="car-shadow/00007.jpg" width="8" height="6">
<box label="car" xtl="1" ytl="2" xbr="3" ybr="5"/></image></annotations>
"""


def _zip(path, members: dict[str, str]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


@pytest.mark.parametrize(("tool", "text"), [("cvat-video", VIDEO), ("cvat-images", IMAGES)])
def test_cvat_s_zip_reads_as_its_annotations_xml(tool, text, tmp_path):
    archive = _zip(tmp_path / "export.zip", {"annotations.xml": text, "images/frame_000000.PNG": "…"})
    export = read_export(tool, archive)
    boxes = [(f.key, f.size, s.instance_id, s.points.tolist()) for f in export.frames for s in f.shapes]
    expected = [(1 if tool == "cvat-video" else "car-shadow/00007.jpg", (6, 8), 1, [[1, 2], [3, 5]])]
    assert boxes == expected and export.path == archive and export.labels == ("car",)
    if tool == "cvat-video":
        assert export.numbers == range(0, 4) and export.video == "clip"


def test_a_zip_without_annotations_xml_says_what_it_holds(tmp_path):
    archive = _zip(tmp_path / "export.zip", {"task/annotations.xml": VIDEO})
    message = (
        f"{archive}: a CVAT export zip holds annotations.xml at its top; this one holds task/annotations.xml"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        read_export("cvat-video", archive)
    _zip(archive, {"annotations.xml": VIDEO[:-40]})
    message = f"{archive}: annotations.xml: not valid XML (unclosed token: line 6, column 0)"
    with pytest.raises(DataError, match=re.escape(message)):
        read_export("cvat-video", archive)
