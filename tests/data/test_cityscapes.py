"""The Cityscapes reader: label files, snippets and partial snippets, on generated trees and real samples."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.data.clips import LabelKind, LabelRef
from frugalseg.data.formats import CityscapesFormat, get_format
from frugalseg.data.formats.cityscapes import LABEL_IDS, instance_ids_path, read_instance_ids
from frugalseg.data.io import read_frame, read_label, write_png_atomic
from frugalseg.errors import DataError

from .fake_cityscapes import SIZE, write_snippets

H, W = SIZE


def test_label_ids_map_to_train_ids_by_hand(tmp_path: Path) -> None:
    ids = np.array([[7, 8, 26, 24], [0, 33, 1, 255]], np.uint8)  # road, sidewalk, car, person, unlabeled, …
    write_png_atomic(tmp_path / "a_labelIds.png", ids)
    fmt = CityscapesFormat(tmp_path)
    decoded = fmt.read_label(LabelRef(tmp_path / "a_labelIds.png", LabelKind.FINE, LABEL_IDS))
    np.testing.assert_array_equal(decoded, [[0, 1, 13, 11], [255, 18, 255, 255]])
    np.testing.assert_array_equal(read_label(tmp_path / "a_labelIds.png"), ids)  # train ids: as stored


def test_label_ids_that_no_class_has_are_refused(tmp_path: Path) -> None:
    """Ids 34…254 are in no Cityscapes table (255 is read as ignore): the file is not a label-id map."""
    write_png_atomic(tmp_path / "a_labelIds.png", np.array([[7, 34], [250, 255]], np.uint8))
    fmt = CityscapesFormat(tmp_path)
    with pytest.raises(DataError, match=r"a_labelIds.png: label ids \[34, 250\] belong to no class"):
        fmt.read_label(LabelRef(tmp_path / "a_labelIds.png", LabelKind.FINE, LABEL_IDS))


def test_label_ids_map_to_the_real_train_ids(shared_data: Path) -> None:
    gt = shared_data / "cityscapes_dev/gtFine/train/aachen/aachen_000000_000019_gtFine_"
    expected = cv2.imread(str(gt) + "labelTrainIds.png", cv2.IMREAD_UNCHANGED)
    ref = LabelRef(Path(str(gt) + "labelIds.png"), LabelKind.FINE, LABEL_IDS)
    np.testing.assert_array_equal(CityscapesFormat(shared_data / "cityscapes_dev").read_label(ref), expected)


def test_cityscapes_dev_is_one_thirty_frame_clip(shared_data: Path) -> None:
    root = shared_data / "cityscapes_dev"
    data = CityscapesFormat(root)
    assert data.splits() == ["train"]
    (clip,) = data.clips("train")
    assert clip.clip_id == "aachen_000000_000019"
    assert len(clip.frames) == 30 and clip.anchor_index == 19
    assert list(clip.offsets) == list(range(-19, 11))
    seq = root / "leftImg8bit_sequence/train/aachen"
    assert clip.frame_path(0) == seq / "aachen_000000_000019_leftImg8bit.png"
    assert clip.frame_path(-19) == seq / "aachen_000000_000000_leftImg8bit.png"
    assert clip.frame_path(10) == seq / "aachen_000000_000029_leftImg8bit.png"
    assert all(path.is_file() for path in clip.frames)
    fine = clip.label(0, LabelKind.FINE)
    assert fine.path == root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"
    assert clip.label(0, LabelKind.COARSE) is None and list(clip.labels) == [0]
    assert data.ground_truth(clip) == {0: fine}
    assert read_frame(clip.frame_path(0)).shape == (1024, 2048, 3)


def test_cityscapes_tiny_is_a_single_frame_clip(shared_data: Path) -> None:
    root = shared_data / "cityscapes_tiny"
    data = get_format("cityscapes", root)
    assert data.num_classes == 19 and len(data.class_names) == 19 and data.class_names[13] == "car"
    assert data.palette[0] == (128, 64, 128)
    (clip,) = data.clips("val")
    assert clip.clip_id == "frankfurt_000000_000294" and clip.anchor_index == 0
    assert clip.frames == [root / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"]
    assert clip.label(0, LabelKind.FINE).path.name == "frankfurt_000000_000294_gtFine_labelTrainIds.png"
    assert read_label(clip.label(0, LabelKind.FINE).path, 19).shape == (128, 256)


def test_label_file_preference_and_coarse_only_clips(tmp_path: Path) -> None:
    root = write_snippets(tmp_path / "ds", anchors=(19, 49, 79))
    gt = root / "gtFine/train/c"
    write_png_atomic(gt / "c_000001_000019_gtFine_labelIds.png", np.zeros((H, W), np.uint8))
    (gt / "c_000001_000049_gtFine_labelTrainIds.png").rename(gt / "c_000001_000049_gtFine_labelIds.png")
    (gt / "c_000001_000079_gtFine_labelTrainIds.png").unlink()
    coarse = root / "gtCoarse/train/c/c_000001_000079_gtCoarse_labelIds.png"
    write_png_atomic(coarse, np.zeros((H, W), np.uint8))
    clips = CityscapesFormat(root).clips("train")
    assert [c.clip_id for c in clips] == ["c_000001_000019", "c_000001_000049", "c_000001_000079"]
    assert clips[0].label(0, LabelKind.FINE).path == gt / "c_000001_000019_gtFine_labelTrainIds.png"
    assert clips[1].label(0, LabelKind.FINE).path == gt / "c_000001_000049_gtFine_labelIds.png"
    assert clips[2].label(0, LabelKind.FINE) is None
    assert clips[2].label(0, LabelKind.COARSE).path == coarse
    assert clips[2].frame_path(-19).name == "c_000001_000060_leftImg8bit.png"


def test_missing_snippet_frame_is_a_warning_naming_the_path(tmp_path: Path) -> None:
    root = write_snippets(tmp_path / "ds")
    missing = root / "leftImg8bit_sequence/train/c/c_000001_000007_leftImg8bit.png"
    missing.unlink()
    clips, problems = CityscapesFormat(root).scan("train")
    (problem,) = problems
    assert problem.warning and problem.path == missing and "missing frame (offset -12)" in problem.message
    (clip,) = clips
    assert clip.missing == {-12} and not clip.has_frame(-12) and clip.has_frame(-11)
    assert clip.nearest_frame(-12, 0) == -11 and clip.nearest_frame(-13, 0) == -13
    assert len(CityscapesFormat(root).clips("train")) == 1  # usable: warnings do not stop it


def test_unknown_split_lists_the_splits(tmp_path: Path) -> None:
    root = write_snippets(tmp_path / "ds")
    # cityscapesScripts' createPanopticImgs writes gtFine/cityscapes_panoptic_val/*.png: no split of its own
    write_png_atomic(
        root / "gtFine/cityscapes_panoptic_val/c_000001_000019_gtFine_panoptic.png", np.zeros((4, 4))
    )
    with pytest.raises(DataError, match=r"split 'val' does not exist; splits found: train\b") as info:
        CityscapesFormat(root).clips("val")
    assert str(root) in str(info.value) and CityscapesFormat(root).splits() == ["train"]


def test_instance_map_files(tmp_path: Path) -> None:
    label = np.zeros((6, 6), np.uint8)
    folder = tmp_path / "gtFine" / "train" / "town"
    folder.mkdir(parents=True)
    label_path = folder / "town_000000_000019_gtFine_labelTrainIds.png"
    cv2.imwrite(str(label_path), label)
    assert instance_ids_path(label_path) is None  # no instance map beside it yet
    ids = np.full(label.shape, 7, dtype=np.uint16)
    ids[3:5, 0:2] = 26003
    cv2.imwrite(str(folder / "town_000000_000019_gtFine_instanceIds.png"), ids)
    found = instance_ids_path(label_path)
    assert found == folder / "town_000000_000019_gtFine_instanceIds.png"
    assert instance_ids_path(folder / "town_000000_000019_gtFine_labelIds.png") == found
    read = read_instance_ids(found, label.shape)
    assert read.dtype == np.int32
    np.testing.assert_array_equal(read, np.where(ids >= 1000, ids, 0))  # plain label ids are no instances
    with pytest.raises(DataError, match=r"instanceIds.png: instance-id map is 6×6, its label 4×3"):
        read_instance_ids(found, (3, 4))
    with pytest.raises(DataError, match="does not exist"):
        read_instance_ids(folder / "missing_instanceIds.png")


def test_a_frame_copy_is_a_warning_naming_it_and_no_other_layout(tmp_path: Path, monkeypatch) -> None:
    """``c_000001_000019 (1)_leftImg8bit.png`` was skipped without a word, and when the folder listed it first
    the root was taken for another layout (its frames only, no labels)."""
    import shutil

    from frugalseg.data.formats import detect_format

    root = write_snippets(tmp_path / "ds")
    images = root / "leftImg8bit_sequence/train/c"
    copy = images / "c_000001_000019 (1)_leftImg8bit.png"
    shutil.copy(images / "c_000001_000019_leftImg8bit.png", copy)
    listed = Path.glob
    monkeypatch.setattr(
        Path,
        "glob",
        lambda self, pattern: iter(sorted(listed(self, pattern), key=lambda p: " " not in p.name)),
    )
    assert next(root.glob("leftImg8bit_sequence/*/*/*_leftImg8bit.png")) == copy  # the copy listed first
    assert detect_format(root) == "cityscapes"
    _, problems = CityscapesFormat(root).scan("train")
    assert [(p.path, p.message, p.warning) for p in problems] == [
        (copy, "not named <city>_<6 digits>_<6 digits>_leftImg8bit.png: not read", True)
    ]
