"""The VEIS reader on a tiny generated tree with known colour labels and instance colours.

The tree comes from ``fake_veis.py``; labels hold hand-chosen classes, so a decoded pixel is compared
with its class, not with what the reader computed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalseg.data.check import check_dataset
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import detect_format, get_format
from frugalseg.data.io import write_png_atomic

from . import fake_veis as veis
from .reading import clips_by_id
from .reading import problems as found_problems


@pytest.fixture
def veis_root(tmp_path: Path) -> Path:
    return veis.write_veis(tmp_path / "veis")


def test_veis_every_frame_is_a_clip_and_its_ground_truth_is_every_frame(veis_root: Path) -> None:
    fmt = get_format("veis", veis_root)
    assert fmt.splits() == ["train", "val"]
    assert fmt.num_classes == 19 and fmt.class_names[13] == "car"
    train = clips_by_id(fmt, "train")
    assert sorted(train) == [f"town01/{i:06d}" for i in range(4)]
    clip = train["town01/000002"]
    assert clip.anchor_index == 2
    assert [p.name for p in clip.frames] == [f"{i:06d}.png" for i in range(4)]
    label = fmt.read_label(clip.label(0, LabelKind.FINE))
    np.testing.assert_array_equal(label, veis.expected_label(2))
    assert label[22, 30] == veis.CAR and label[20, 23] == veis.POLE and label[18, 12] == IGNORE_INDEX
    assert label[22, 41] == veis.BICYCLE and label[30, 0] == IGNORE_INDEX
    truth = fmt.ground_truth(clip)
    assert sorted(truth) == [-2, -1, 0, 1]
    for offset, ref in truth.items():
        np.testing.assert_array_equal(fmt.read_label(ref), veis.expected_label(2 + offset))
    assert sorted(clips_by_id(fmt, "val")) == ["town02/000000", "town02/000001"]


def test_veis_instance_ids_number_each_instance_colour(veis_root: Path) -> None:
    fmt = get_format("veis", veis_root)
    train = clips_by_id(fmt, "train")
    ids = fmt.instance_ids(train["town01/000001"])
    assert ids[2, 2] == 0
    car, person = ids[22, 30], ids[22, 3]
    assert car > 0 and person > 0 and car != person
    assert set(np.unique(ids[20:28, 26:38]).tolist()) == {car}
    assert fmt.instance_ids(train["town01/000000"]) is None


def test_veis_is_detected_and_checks_clean(veis_root: Path) -> None:
    assert detect_format(veis_root) == "veis"
    assert check_dataset(veis_root) == []


def test_veis_check_names_every_instance_image_of_another_size(veis_root: Path) -> None:
    """A VEIS clip holds its whole sequence: its anchor's label was read as a neighbour of an earlier clip,
    and its instance image went unchecked (one of four named)."""
    labels = sorted((veis_root / "labels/train/town01").glob("*.png"))
    wrong = [veis_root / "instances/train/town01" / label.name for label in labels]
    for path in wrong:
        write_png_atomic(path, np.zeros((veis.H, veis.W - 8, 3), np.uint8))
    found = {(p.path, p.message) for p in check_dataset(veis_root)}
    message = f"instance image is {veis.W - 8}×{veis.H}, its label {veis.W}×{veis.H}"
    assert found == {(path, message) for path in wrong} and len(wrong) >= 2


def test_veis_check_names_each_planted_fault(veis_root: Path) -> None:
    label = veis.colour_label(0)
    label[3, 3] = (1, 2, 3)
    write_png_atomic(veis_root / "labels/train/town01/000000.png", label)
    write_png_atomic(veis_root / "labels/train/town01/000001.png", veis.colour_label(1)[:, :40])
    (veis_root / "images/val/town02/000001.png").write_bytes(b"not a png")
    (veis_root / "images/train/town01/000002.png").unlink()
    (veis_root / "labels/train/town01/000002.png").unlink()
    write_png_atomic(veis_root / "labels/val/town02/000007.png", veis.colour_label(0))
    write_png_atomic(veis_root / "labels/val/town09/000000.png", veis.colour_label(0))
    assert found_problems(veis_root) == {
        ("labels/val/town09", "labels of a video with no frame folder in images/", False),
        ("labels/train/town01/000000.png", "colours (1, 2, 3) are no Cityscapes label colour", False),
        (
            "labels/train/town01/000001.png",
            "label size 40×32 differs from its frame's 48×32 (000001.png)",
            False,
        ),
        ("images/val/town02/000001.png", "cannot decode image (corrupt or not an image)", False),
        ("images/train/town01/000002.png", "missing frame of video 'town01'", True),
        ("labels/val/town02/000007.png", f"label has no frame in {veis_root / 'images/val/town02'}", False),
    }
