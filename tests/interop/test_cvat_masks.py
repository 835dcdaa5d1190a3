"""CVAT for video masks: written as CVAT writes mask shapes (its importer keeps a mask track's first
shape only), and read on the frames CVAT gives them, checked by hand."""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import parse

import numpy as np
from data.fake_davis import write_moving_squares

from frugalseg.autolabel.store import LabelStore
from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.interop import ClassMapping, import_export, read_export
from frugalseg.interop.cvat import write_cvat_video

SIZE = (6, 8)


def _mask(*pixels: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(SIZE, bool)
    for row, col in pixels:
        mask[row, col] = True
    return mask


A3, A4, A9 = _mask((1, 2), (1, 3), (2, 2)), _mask((2, 3), (3, 3)), _mask((5, 7))
B4 = _mask((0, 0), (0, 1), (1, 0))


def _tracks(path: Path) -> list[list[tuple[str, int, str, str]]]:
    """Per track: (tag, frame, outside, instance_id attribute) of each shape."""
    root = parse(path).getroot()
    return [
        [
            (
                el.tag,
                int(el.get("frame", -1)),
                el.get("outside", ""),
                el.findtext("attribute[@name='instance_id']"),
            )
            for el in track
        ]
        for track in root.iter("track")
    ]


def _shown(export) -> dict[tuple[int, int | None], list[list[int]]]:
    """(frame, object) → the pixels of its mask, of every frame the file gives a mask."""
    return {
        (int(frame.key), shape.instance_id): np.argwhere(shape.get_mask()).tolist()
        for frame in export.frames
        for shape in frame.shapes
        if shape.type == "mask"
    }


HEAD = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><name>clip</name><size>10</size><start_frame>0</start_frame>
<stop_frame>9</stop_frame><frame_filter></frame_filter><labels><label><name>car</name></label></labels>
<original_size><width>8</width><height>6</height></original_size></task></meta>
"""


def test_each_mask_is_a_track_of_its_own_so_cvat_keeps_every_frame_and_both_layouts_read(tmp_path):
    path = tmp_path / "clip.xml"
    a, b = (LabelKind.FINE, "car", 1), (LabelKind.FINE, "car", 2)
    frames = [(3, [(*a, A3)]), (4, [(*a, A4), (*b, B4)]), (9, [(*a, A9)])]
    write_cvat_video(path, frames, size=SIZE, labels=["car"], name="clip", frame_count=10)
    # a keyframe on its frame, an outside copy on the next; none past the last frame, 9
    assert _tracks(path) == [
        [("mask", 3, "0", "1"), ("mask", 4, "1", "1")],
        [("mask", 4, "0", "1"), ("mask", 5, "1", "1")],
        [("mask", 4, "0", "2"), ("mask", 5, "1", "2")],
        [("mask", 9, "0", "1")],
    ]
    root = parse(path).getroot()
    outside = root.find("track[3]/mask[2]")
    kept = root.find("track[3]/mask[1]")
    assert outside is not None and kept is not None
    assert (
        [outside.get(k) for k in ("rle", "left", "top", "width", "height")]
        == [kept.get(k) for k in ("rle", "left", "top", "width", "height")]
        == ["0, 3, 1", "0", "0", "2", "2"]
    )  # the copy is the mask itself, as CVAT writes it
    # what CVAT's importer keeps: the first shape of each mask track
    first = {(track[0][1], track[0][3]) for track in _tracks(path)}
    assert first == {(3, "1"), (4, "1"), (4, "2"), (9, "1")}
    assert _shown(read_export("cvat-video", path)) == {
        (3, 1): [[1, 2], [1, 3], [2, 2]],
        (4, 1): [[2, 3], [3, 3]],
        (4, 2): [[0, 0], [0, 1], [1, 0]],
        (9, 1): [[5, 7]],
    }
    # frugalseg's exports before, one track per object (a keyframe mask on each labelled frame,
    # ``outside`` after a gap), read as they were
    path = tmp_path / "old.xml"
    path.write_text(
        HEAD
        + """<track id="0" label="car">
      <mask frame="3" outside="0" keyframe="1" rle="0, 3, 1" left="2" top="1" width="2" height="2"/>
      <mask frame="4" outside="0" keyframe="1" rle="0, 2" left="3" top="2" width="1" height="2"/>
      <mask frame="5" outside="1" keyframe="1" rle="0, 1" left="3" top="2" width="1" height="1"/>
      <mask frame="9" outside="0" keyframe="1" rle="0, 1" left="7" top="5" width="1" height="1"/>
    </track></annotations>""",
        encoding="utf-8",
    )
    assert _shown(read_export("cvat-video", path)) == {
        (3, 1): [[1, 2], [1, 3], [2, 2]],
        (4, 1): [[2, 3], [3, 3]],
        (9, 1): [[5, 7]],
    }


STEP_HEAD = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><name>clip</name><size>13</size><start_frame>2</start_frame>
<stop_frame>38</stop_frame><frame_filter>step=3</frame_filter><labels><label><name>car</name></label></labels>
<original_size><width>8</width><height>6</height></original_size></task></meta>
"""


def test_a_mask_is_read_on_its_own_frame_alone_as_cvat_keeps_it(tmp_path):
    """A mask on the second-to-last task frame has no outside copy (CVAT writes none): not carried on.

    Task frames 2, 5 … 35, 38. A box left inside lasts to the task's end, as in CVAT; a mask does not,
    nor does a track of two masks fill the frames between them.
    """
    path = tmp_path / "task.xml"
    path.write_text(
        STEP_HEAD
        + """<track id="0" label="car">
    <mask frame="35" keyframe="1" outside="0" occluded="0" rle="0, 1" left="7" top="5" width="1" height="1"/>
    </track>
    <track id="1" label="car">
    <mask frame="5" keyframe="1" outside="0" occluded="0" rle="0, 2" left="3" top="2" width="1" height="2"/>
    <mask frame="14" keyframe="1" outside="0" occluded="0" rle="0, 1" left="0" top="0" width="1" height="1"/>
    </track>
    <track id="2" label="car">
      <box frame="35" keyframe="1" outside="0" occluded="0" xtl="1" ytl="1" xbr="3" ybr="4"/>
    </track></annotations>""",
        encoding="utf-8",
    )
    export = read_export("cvat-video", path)
    shown = {(int(f.key), s.instance_id, s.type) for f in export.frames for s in f.shapes}
    assert shown == {(35, 1, "mask"), (5, 2, "mask"), (14, 2, "mask"), (35, 3, "box"), (38, 3, "box")}
    assert _shown(export) == {(35, 1): [[5, 7]], (5, 2): [[2, 3], [3, 3]], (14, 2): [[0, 0]]}


def test_a_cvat_2_task_s_own_source_names_its_clip(tmp_path):
    """CVAT 2 writes ``<source>`` in ``<task>``: task "street run 7" of squares-b.mp4 is clip squares-b."""
    davis = write_moving_squares(tmp_path / "davis")
    path = tmp_path / "annotations.xml"
    path.write_text(
        HEAD.replace("<name>clip</name>", "<name>street run 7</name>")
        .replace("<name>car</name>", "<name>object</name>")
        .replace("</original_size>", "</original_size><source>squares-b.mp4</source>")
        .replace("<width>8</width><height>6</height>", "<width>64</width><height>48</height>")
        + """<track id="0" label="object">
      <box frame="2" keyframe="1" outside="0" occluded="0" xtl="4" ytl="8" xbr="16" ybr="20"/>
      <box frame="3" keyframe="1" outside="1" occluded="0" xtl="4" ytl="8" xbr="16" ybr="20"/>
    </track></annotations>""",
        encoding="utf-8",
    )
    export = read_export("cvat-video", path)
    assert export.video == "squares-b.mp4"
    fmt = get_format("davis", davis)
    store = LabelStore(tmp_path / "store")
    import_export(export, fmt, "train", store, ClassMapping(fmt.class_names))
    assert [(r["clip_id"], r["offset"], r["kind"]) for r in store.records()] == [("squares-b", 2, "boxes")]


def test_a_job_export_gives_the_frame_size_in_meta(tmp_path):
    """CVAT 2's job export: ``<meta><job>…</job><original_size>…</original_size></meta>``."""
    path = tmp_path / "job.xml"
    job = HEAD.replace("<task>", "<job>").replace("</task>", "</job>")
    job = job.replace("<original_size><width>8</width><height>6</height></original_size></job>", "</job>")
    path.write_text(
        job.replace("</meta>", "<original_size><width>8</width><height>6</height></original_size></meta>")
        + """<track id="0" label="car">
    <mask frame="4" keyframe="1" outside="0" rle="0, 3, 1" left="0" top="0" width="2" height="2"/>
    </track></annotations>""",
        encoding="utf-8",
    )
    export = read_export("cvat-video", path)
    assert [(f.key, f.size) for f in export.frames] == [(4, (6, 8))]
    assert _shown(export) == {(4, 1): [[0, 0], [0, 1], [1, 0]]}
