"""The IDD reader on a tiny generated tree with known level-3 labels, instances and IDD Temporal frames.

The tree comes from ``fake_idd.py``; labels hold hand-chosen classes, so a decoded pixel is compared
with its class, not with what the reader computed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from frugalseg.data.check import check_dataset
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import FORMATS, detect_format, get_format
from frugalseg.data.formats import idd as idd_format
from frugalseg.data.io import write_png_atomic
from frugalseg.errors import DataError

from . import fake_idd as idd
from .reading import clips_by_id
from .reading import problems as found_problems


@pytest.fixture
def idd_root(tmp_path: Path) -> Path:
    return idd.write_idd(tmp_path / "idd")


def test_idd_reads_level3_labels_and_finds_the_annotated_frame_among_temporal_frames(idd_root: Path) -> None:
    fmt = get_format("idd", idd_root)
    assert fmt.splits() == ["test", "train", "val"]
    assert fmt.num_classes == 26 and fmt.class_names[0] == "road" and fmt.class_names[25] == "sky"
    assert fmt.palette[9] == (0, 0, 142)  # car
    train = clips_by_id(fmt, "train")
    assert sorted(train) == ["0/000101", "0/000102"]
    clip = train["0/000101"]
    assert [p.name for p in clip.frames] == [
        "0000100.jpeg",
        "0000101.jpeg",
        "000101_leftImg8bit.png",  # the annotated image stands in for 0000102.jpeg
        "0000103.jpeg",
        "0000104.jpeg",
    ]
    assert clip.anchor_index == 2 and clip.missing == frozenset()
    label = fmt.read_label(clip.label(0, LabelKind.FINE))
    np.testing.assert_array_equal(label, idd.LABEL)
    assert fmt.class_names[label[22, 30]] == "car" and label[30, 0] == IGNORE_INDEX
    assert fmt.ground_truth(clip) == {0: clip.label(0, LabelKind.FINE)}
    assert [p.name for p in train["0/000102"].frames] == ["000102_leftImg8bit.png"]
    val = clips_by_id(fmt, "val")["1/frame0029"]
    assert val.frames[0].name == "frame0029_leftImg8bit.jpg" and val.label(0, LabelKind.FINE) is not None
    test = clips_by_id(fmt, "test")["2/000301"]
    assert test.labels == {}


def test_idd_instance_ids_keep_the_instances(idd_root: Path) -> None:
    fmt = get_format("idd", idd_root)
    train = clips_by_id(fmt, "train")
    ids = fmt.instance_ids(train["0/000101"])
    assert ids.dtype == np.int32
    assert sorted(np.unique(ids).tolist()) == [0, 4000, 4001, 9000]
    assert ids[20, 5] == 4000 and ids[20, 11] == 4001 and ids[22, 30] == 9000 and ids[2, 2] == 0
    assert fmt.instance_ids(train["0/000102"]) is None  # no instance map made
    assert set(fmt.classes.instance_classes) == {4, 5, 6, 7, 8, 9, 10, 11, 12}


def test_idd_is_detected_not_cityscapes_and_checks_clean(idd_root: Path) -> None:
    assert not FORMATS["cityscapes"].looks_like(idd_root)  # same folders, no city_seq_frame names
    assert detect_format(idd_root) == "idd"
    assert check_dataset(idd_root) == []
    # IDD's createLabels.py --panoptic writes gtFine/<split>_panoptic/*.png: no split of its own
    for split in ("train", "val"):
        write_png_atomic(
            idd_root / f"gtFine/{split}_panoptic/0_1_gtFine_panopticlevel3Ids.png", np.zeros((4, 4))
        )
    assert (
        get_format("idd", idd_root).splits()
        == sorted(get_format("idd", idd_root).splits())
        == [split for split in ("test", "train", "val") if (idd_root / "leftImg8bit" / split).is_dir()]
    )
    assert check_dataset(idd_root) == []


def test_idd_missing_temporal_frame_is_a_warning_of_a_partial_snippet(tmp_path: Path) -> None:
    root = idd.write_idd(tmp_path / "idd", with_gap=True)
    fmt = get_format("idd", root)
    clip = clips_by_id(fmt, "train")["0/000101"]  # no error: the snippet is partial
    assert clip.missing == frozenset({1}) and not clip.has_frame(1) and clip.has_frame(2)
    assert found_problems(root) == {
        (f"{idd.TEMPORAL}/0000103.jpeg", "missing frame (offset +1) of the snippet of 0/000101", True)
    }


def test_idd_anchor_is_cached_and_a_folder_without_the_image_warns(
    idd_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    get_format("idd", idd_root).clips("train")
    monkeypatch.setattr(idd_format, "find_anchor", lambda *_: pytest.fail("anchor not cached"))
    assert get_format("idd", idd_root).clips("train")[0].anchor_index == 2
    monkeypatch.undo()
    folder = idd_root / idd.TEMPORAL
    (folder / "0000102.jpeg").unlink()
    shutil.copy(folder / "0000101.jpeg", folder / "0000102.jpeg")
    with caplog.at_level("INFO", logger="frugalseg"):
        problems = found_problems(idd_root)
    # it had said "found the annotated frame among … of 1 image(s)" beside the warning that it was not
    assert "frames of 1 image(s), found in 0, in" in caplog.text
    assert len(problems) == 1
    path, message, warning = problems.pop()
    assert path == idd.TEMPORAL and warning
    assert message.startswith("none of its 5 frames shows the annotated image 000101_leftImg8bit.png")
    assert [p.name for p in clips_by_id(get_format("idd", idd_root), "train")["0/000101"].frames] == [
        "000101_leftImg8bit.png"
    ]


def test_idd_check_names_each_planted_fault(idd_root: Path) -> None:
    (idd_root / "gtFine/train/0/000102_gtFine_labellevel3Ids.png").unlink()  # polygons only
    bad = idd.LABEL.copy()
    bad[0, 0] = 30
    write_png_atomic(idd_root / "gtFine/train/0/000101_gtFine_labellevel3Ids.png", bad)
    write_png_atomic(idd_root / "gtFine/val/1/frame0029_gtFine_labellevel3Ids.png", idd.LABEL[:16])
    (idd_root / "leftImg8bit/test/2/000301_leftImg8bit.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    problems = found_problems(idd_root)
    polygons = [p for p in problems if p[0] == "gtFine/train/0/000102_gtFine_polygons.json"]
    assert len(polygons) == 1 and not polygons[0][2]
    assert "000102_gtFine_labellevel3Ids.png" in polygons[0][1]
    assert "createLabels.py" in polygons[0][1] and "--id-type level3Id" in polygons[0][1]
    assert problems - set(polygons) == {
        ("gtFine/train/0/000101_gtFine_labellevel3Ids.png", "label values [30] outside 0..25 and 255", False),
        (
            "gtFine/val/1/frame0029_gtFine_labellevel3Ids.png",
            "label size 48×16 differs from its frame's 48×32 (frame0029_leftImg8bit.jpg)",
            False,
        ),
        ("leftImg8bit/test/2/000301_leftImg8bit.png", "cannot decode image (corrupt or not an image)", False),
    }
    with pytest.raises(DataError, match="createLabels.py"):
        get_format("idd", idd_root).clips("train")
