"""`data check` names an empty split's folder, and says a file given for a data set folder is a file."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest

from frugalseg.cli.data import register
from frugalseg.data.check import check_dataset
from frugalseg.data.formats import Problem, detect_format, get_format
from frugalseg.errors import DataError

from .fake_camvid import write_segnet
from .fake_cityscapes import write_snippets
from .fake_davis import write_davis
from .fake_video import numbered_frame, write_video


def _check_cli(root: Path, capsys: pytest.CaptureFixture, *options: str) -> tuple[int, list[str]]:
    parser = argparse.ArgumentParser(prog="frugalseg")
    register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(["data", "check", str(root), "--no-progress", *options])
    code = args.func(args)
    return code, capsys.readouterr().out.strip().splitlines()


def empty_train_split(root: Path) -> Path:
    """A SegNet CamVid tree whose ``train/`` and ``trainannot/`` folders are empty."""
    write_segnet(root)
    for folder in ("train", "trainannot"):
        shutil.rmtree(root / folder)
        (root / folder).mkdir()
    return root


def test_an_empty_split_is_a_problem_naming_its_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = empty_train_split(tmp_path / "camvid")
    assert check_dataset(root) == [Problem(root / "train", "split 'train' has no clips")]
    code, lines = _check_cli(root, capsys)
    assert code == 1
    assert lines == [
        f"{root / 'train'}: split 'train' has no clips",
        f"1 problem(s) and 0 warning(s) found in {root}",
    ]


def test_an_empty_split_is_named_by_its_list_or_its_frames_folder(tmp_path: Path) -> None:
    """An empty ``ImageSets/2017/val.txt`` had been blamed on the data set's root, an empty Cityscapes split
    on ``gtFine/<split>`` rather than its frames' folder."""
    davis = write_davis(tmp_path / "davis", {"a": [np.zeros((4, 6), np.uint8)] * 3})
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    (davis / "ImageSets" / "2017" / "train.txt").write_text("a\n", encoding="utf-8")
    (davis / "ImageSets" / "2017" / "val.txt").write_text("", encoding="utf-8")
    assert Problem(davis / "ImageSets" / "2017" / "val.txt", "split 'val' has no clips") in check_dataset(
        davis
    )
    cityscapes = write_snippets(tmp_path / "cityscapes")
    for top in ("leftImg8bit_sequence", "gtFine"):
        (cityscapes / top / "val").mkdir()
    assert Problem(cityscapes / "leftImg8bit_sequence" / "val", "split 'val' has no clips") in check_dataset(
        cityscapes
    )


def test_a_set_without_any_clip_stays_one_problem(tmp_path: Path) -> None:
    root = empty_train_split(tmp_path / "camvid")
    for folder in ("val", "valannot"):
        shutil.rmtree(root / folder)
        (root / folder).mkdir()
    assert check_dataset(root) == [Problem(root, "no clips found in the camvid layout")]


def test_a_file_is_not_a_data_set_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# not data\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        detect_format(readme)
    assert str(error.value) == f"{readme}: is a file, not a data set folder or a video"
    with pytest.raises(DataError) as error:
        get_format("camvid", readme)
    assert str(error.value) == f"{readme}: is a file, not a data set folder (format camvid)"
    code, lines = _check_cli(readme, capsys)
    assert code == 1
    assert lines == [
        f"{readme}: is a file, not a data set folder or a video",
        f"1 problem(s) and 0 warning(s) found in {readme}",
    ]
    code, lines = _check_cli(readme, capsys, "--format", "camvid")
    assert (code, lines[0]) == (1, f"{readme}: is a file, not a data set folder (format camvid)")
    clip = tmp_path / "holiday clip.mp4"
    write_video(clip, [numbered_frame(i) for i in range(2)])
    with pytest.raises(DataError) as error:  # `annotate` reads DAVIS unless told
        get_format("davis", clip)
    assert str(error.value) == (
        f"{clip}: is a file, not a data set folder (format davis); a video file is read with --format video"
    )
    code, lines = _check_cli(tmp_path / "absent", capsys)  # a missing folder keeps its message
    assert (code, lines[0]) == (1, f"{tmp_path / 'absent'}: data set folder does not exist")


def test_data_check_reads_a_videos_masks_from_their_own_folder(tmp_path: Path, capsys) -> None:
    """`data check` had no ``--masks``: masks kept apart from the video (as label propagate and data.masks
    take them) could not be checked."""
    from PIL import Image

    from frugalseg.data.io import image_size

    video = tmp_path / "holiday clip.mp4"
    write_video(video, [numbered_frame(i) for i in range(3)])
    masks = tmp_path / "masks"
    masks.mkdir()
    width, height = image_size(video / "00000")
    Image.new("L", (20, 10)).save(masks / "00001.png")
    code, lines = _check_cli(video, capsys, "--masks", str(masks))
    assert (code, lines) == (
        1,
        [f"{masks / '00001.png'}: mask size 20×10 differs from the clip's {width}×{height}",
         f"1 problem(s) and 0 warning(s) found in {video}"],
    )  # fmt: skip


def test_a_camvid_split_whose_frames_folder_is_missing_or_a_file_is_named_once(tmp_path: Path) -> None:
    """`fit` refused a ``valannot/`` without its ``val/`` (no split 'val'), which `data check` passed."""
    root = write_segnet(tmp_path / "camvid")
    shutil.rmtree(root / "val")
    needs = "split 'val' needs val/ and valannot/"
    assert check_dataset(root) == [Problem(root / "val", f"folder does not exist: {needs}")]
    (root / "val").write_bytes(b"")
    assert check_dataset(root) == [Problem(root / "val", f"is a file, not a folder: {needs}")]
    shutil.rmtree(root / "valannot")
    (root / "val").unlink()
    shutil.copytree(root / "train", root / "val")
    (root / "valannot").write_bytes(b"")
    assert check_dataset(root) == [Problem(root / "valannot", f"is a file, not a folder: {needs}")]


def test_a_file_where_a_cityscapes_folder_belongs_is_named(tmp_path: Path) -> None:
    """`data check` passed a ``gtFine`` (or a city of it) that is a file; `fit` then found no label."""
    root = write_snippets(tmp_path / "cs")
    (root / "gtFine/train/README").write_text("a note", encoding="utf-8")  # no city's name: left alone
    assert check_dataset(root) == []
    city = root / "gtFine/train/c"
    shutil.rmtree(city)
    city.write_bytes(b"")
    (problem,) = check_dataset(root)
    assert problem == Problem(city, "is a file, not a city folder: its frames or labels were not read")
    shutil.rmtree(root / "gtFine")
    (root / "gtFine").write_bytes(b"")
    (problem,) = check_dataset(root)
    assert problem == Problem(root / "gtFine", "is a file, not a folder: its frames or labels were not read")


def test_a_davis_sequence_whose_frame_folder_is_a_file_is_named(tmp_path: Path) -> None:
    """A file among the sequence folders had the tree taken for MOSE's when the file system listed it first
    ("sequence '480p' has no frames"); with --format davis it went unmentioned."""
    masks = {seq: [np.zeros((8, 8), np.uint8)] * 2 for seq in ("a", "b")}
    root = write_davis(tmp_path / "davis", masks)
    frames = root / "JPEGImages/480p/b"
    shutil.rmtree(frames)
    frames.write_bytes(b"")
    assert detect_format(root) == "davis"
    message = "is a file, not a folder of frames: sequence 'b' was not read"
    assert check_dataset(root) == [Problem(frames, message)]
