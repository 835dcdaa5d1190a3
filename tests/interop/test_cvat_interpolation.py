"""CVAT for video files that leave frames out are filled in as CVAT does, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from frugalseg.errors import DataError
from frugalseg.interop import read_export

HEAD = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><name>v</name><size>5</size><start_frame>0</start_frame>
<stop_frame>8</stop_frame><frame_filter>step=2</frame_filter><labels><label><name>car</name></label></labels>
<original_size><width>64</width><height>48</height></original_size></task></meta>
"""


def _read(tmp_path, tracks: str):
    path = tmp_path / "annotations.xml"
    path.write_text(HEAD + tracks + "</annotations>\n", encoding="utf-8")
    return read_export("cvat-video", path)


def _shapes(export, track: int) -> dict[int, np.ndarray]:
    return {
        frame.key: shape.points
        for frame in export.frames
        for shape in frame.shapes
        if shape.instance_id == track + 1
    }


def test_boxes_move_linearly_between_keyframes_on_the_task_frames(tmp_path):
    export = _read(
        tmp_path,
        """
      <track id="0" label="car">
        <box frame="0" outside="0" keyframe="1" xtl="0" ytl="0" xbr="4" ybr="4"/>
        <box frame="8" outside="0" keyframe="1" xtl="8" ytl="4" xbr="12" ybr="8"/>
      </track>""",
    )
    boxes = _shapes(export, 0)
    assert sorted(boxes) == [0, 2, 4, 6, 8]  # frames 0…8 every 2 (step=2)
    # frame f: xtl = 8·f/8, ytl = 4·f/8, xbr = 4 + 8·f/8, ybr = 4 + 4·f/8
    np.testing.assert_allclose(boxes[2], [[2, 1], [6, 5]])
    np.testing.assert_allclose(boxes[4], [[4, 2], [8, 6]])
    np.testing.assert_allclose(boxes[6], [[6, 3], [10, 7]])
    assert export.frames[1].shapes[0].element == "track 0 (frame 2, interpolated)"


def test_polygons_move_vertex_by_vertex_and_stop_when_outside(tmp_path):
    export = _read(
        tmp_path,
        """
      <track id="3" label="car">
        <polygon frame="0" outside="0" keyframe="1" points="0,0;4,0;0,4"/>
        <polygon frame="4" outside="0" keyframe="1" points="4,4;8,4;4,8"/>
        <polygon frame="6" outside="1" keyframe="1" points="4,4;8,4;4,8"/>
      </track>
      <track id="4" label="car">
        <polygon frame="2" outside="0" keyframe="1" points="10,10;20,10;10,20"/>
        <polygon frame="6" outside="0" keyframe="1" points="10,10;20,10;20,20;10,20"/>
      </track>""",
    )
    first = _shapes(export, 3)
    assert sorted(first) == [0, 2, 4]  # outside from 6 on
    np.testing.assert_allclose(first[2], [[2, 2], [6, 2], [2, 6]])  # half way
    second = _shapes(export, 4)
    assert sorted(second) == [2, 4, 6, 8]  # the last shape is inside: it lasts to the task's end
    np.testing.assert_allclose(second[4], [[10, 10], [20, 10], [10, 20]])  # vertex count changes: kept
    np.testing.assert_allclose(second[8], [[10, 10], [20, 10], [20, 20], [10, 20]])


def test_a_shape_off_the_task_frames_names_its_track(tmp_path):
    with pytest.raises(DataError, match=r"track 7: frame 3 is not a frame of the task \(0…8 every 2\)"):
        _read(
            tmp_path,
            '<track id="7" label="car"><box frame="3" outside="0" xtl="0" ytl="0" xbr="1" ybr="1"/></track>',
        )


def test_a_mask_is_cvats_row_major_runs_in_its_box(tmp_path):
    export = _read(
        tmp_path,
        """
      <track id="0" label="car">
        <mask frame="0" outside="0" keyframe="1" rle="1, 2, 2, 1" left="5" top="7" width="3" height="2"/>
        <mask frame="2" outside="1" keyframe="1" rle="0, 1" left="0" top="0" width="1" height="1"/>
      </track>""",
    )
    (frame,) = export.frames
    mask = frame.shapes[0].get_mask()
    # box rows 7-8, columns 5-7: 0 1 1 / 0 0 0 … 1 → the runs 1 zero, 2 ones, 2 zeros, 1 one
    assert np.argwhere(mask).tolist() == [[7, 6], [7, 7], [8, 7]]


def test_a_cvat_2_job_export_gives_its_frames_in_meta_job(tmp_path):
    path = tmp_path / "job.xml"
    path.write_text(
        HEAD.replace("<task>", "<job>").replace("</task>", "</job>")
        + '<track id="0" label="car">'
        + '<box frame="4" outside="0" keyframe="1" xtl="1" ytl="1" xbr="3" ybr="3"/>'
        + '<box frame="6" outside="1" keyframe="1" xtl="1" ytl="1" xbr="3" ybr="3"/></track></annotations>',
        encoding="utf-8",
    )
    export = read_export("cvat-video", path)
    assert [frame.key for frame in export.frames] == [4] and export.frames[0].size == (48, 64)
