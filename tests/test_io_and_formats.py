"""Readers, the Cityscapes format on the real samples, and clear errors on bad input."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from frugalseg.datamodules.check import check_dataset
from frugalseg.datamodules.clips import LabelKind
from frugalseg.datamodules.formats import FORMATS, CityscapesFormat, get_format
from frugalseg.datamodules.io import DataError, read_frame, read_label, write_png_atomic

H, W = 4, 6


def _frame(value: int) -> np.ndarray:
    return np.full((H, W, 3), value, dtype=np.uint8)


def _sequence_dataset(root: Path, anchors: tuple[int, ...] = (19,), split: str = "train") -> Path:
    """A hand-made Cityscapes sequence layout with tiny frames: city ``c``, sequence 000001."""
    for anchor in anchors:
        for number in range(anchor - 19, anchor + 11):
            write_png_atomic(
                root / f"leftImg8bit_sequence/{split}/c/c_000001_{number:06d}_leftImg8bit.png", _frame(number)
            )
        write_png_atomic(
            root / f"gtFine/{split}/c/c_000001_{anchor:06d}_gtFine_labelTrainIds.png",
            np.zeros((H, W), np.uint8),
        )
    return root


def test_read_frame_is_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    Image.fromarray(rgb).save(tmp_path / "f.png")
    np.testing.assert_array_equal(read_frame(tmp_path / "f.png"), rgb)


def test_write_png_atomic_round_trip_and_no_temp_left(tmp_path: Path) -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    target = tmp_path / "new" / "dir" / "x.png"
    write_png_atomic(target, rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(target)), rgb)
    assert os.listdir(target.parent) == ["x.png"]


def test_write_png_atomic_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_png_atomic(tmp_path / "y.png", np.zeros((2, 2), np.uint8))
    assert os.listdir(tmp_path) == []


def test_label_ids_map_to_train_ids_by_hand(tmp_path: Path) -> None:
    ids = np.array([[7, 8, 26, 24], [0, 33, 1, 250]], np.uint8)  # road, sidewalk, car, person, unlabeled, …
    write_png_atomic(tmp_path / "a_labelIds.png", ids)
    write_png_atomic(tmp_path / "a_labelTrainIds.png", ids)
    np.testing.assert_array_equal(
        read_label(tmp_path / "a_labelIds.png"), [[0, 1, 13, 11], [255, 18, 255, 255]]
    )
    np.testing.assert_array_equal(read_label(tmp_path / "a_labelTrainIds.png"), ids)


def test_label_ids_map_to_the_real_train_ids(shared_data: Path) -> None:
    gt = shared_data / "cityscapes_dev/gtFine/train/aachen/aachen_000000_000019_gtFine_"
    expected = cv2.imread(str(gt) + "labelTrainIds.png", cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(read_label(str(gt) + "labelIds.png", num_classes=19), expected)


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
    assert data.sequence_ground_truth(clip) == {}
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
    root = _sequence_dataset(tmp_path / "ds", anchors=(19, 49, 79))
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


def test_missing_snippet_frame_names_the_path(tmp_path: Path) -> None:
    root = _sequence_dataset(tmp_path / "ds")
    missing = root / "leftImg8bit_sequence/train/c/c_000001_000007_leftImg8bit.png"
    missing.unlink()
    with pytest.raises(DataError, match="missing frame") as info:
        CityscapesFormat(root).clips("train")
    assert info.value.path == missing and str(missing) in str(info.value)


def test_unknown_split_lists_the_splits(tmp_path: Path) -> None:
    root = _sequence_dataset(tmp_path / "ds")
    with pytest.raises(DataError, match=r"split 'val' does not exist; splits found: train") as info:
        CityscapesFormat(root).clips("val")
    assert str(root) in str(info.value)


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known formats: cityscapes, synthetic"):
        get_format("kitti", "/nowhere")
    assert FORMATS == ("cityscapes", "synthetic", "davis", "mose")


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.png: file does not exist"):
        read_frame(tmp_path / "nope.png")
    corrupt = tmp_path / "bad_labelTrainIds.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    for reader in (read_frame, read_label):
        with pytest.raises(DataError, match=r"bad_labelTrainIds\.png: cannot decode image"):
            reader(corrupt)


def test_label_must_be_single_channel_8_bit(tmp_path: Path) -> None:
    write_png_atomic(tmp_path / "rgb.png", np.zeros((2, 2, 3), np.uint8))
    write_png_atomic(tmp_path / "deep.png", np.zeros((2, 2), np.uint16))
    with pytest.raises(DataError, match=r"rgb\.png: label must be a single-channel image, got 3 channels"):
        read_label(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"deep\.png: label must be 8-bit, got uint16"):
        read_label(tmp_path / "deep.png")


def test_label_values_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "x_labelTrainIds.png"
    write_png_atomic(path, np.array([[0, 18, 255], [19, 40, 19]], np.uint8))
    with pytest.raises(
        DataError, match=r"x_labelTrainIds\.png: label values \[19, 40\] outside 0\.\.18 and 255"
    ):
        read_label(path, num_classes=19)
    assert read_label(path, num_classes=41)[1, 1] == 40


def test_label_size_mismatch_is_reported(tmp_path: Path) -> None:
    root = _sequence_dataset(tmp_path / "ds")
    label = root / "gtFine/train/c/c_000001_000019_gtFine_labelTrainIds.png"
    write_png_atomic(label, np.zeros((H + 1, W), np.uint8))
    (problem,) = check_dataset(root)
    assert problem.path == label
    assert (
        problem.message
        == f"label size {W}×{H + 1} differs from its frame's {W}×{H} (c_000001_000019_leftImg8bit.png)"
    )
