"""`check_dataset` lists every problem in one pass; `frugalseg data check` exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.cli.data import register
from frugalseg.data.check import Problem, check_dataset
from frugalseg.data.formats import FORMATS
from frugalseg.data.io import read_frame, write_png_atomic
from frugalseg.errors import DataError

from .fake_cityscapes import SIZE, write_snippets
from .fake_davis import write_davis

H, W = SIZE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frugalseg")
    register(parser.add_subparsers(dest="group", required=True))
    return parser


@pytest.fixture
def broken(tmp_path: Path) -> tuple[Path, set[tuple[str, str]]]:
    root = write_snippets(tmp_path / "ds", anchors=(19, 49, 79, 109))
    seq, gt = root / "leftImg8bit_sequence/train/c", root / "gtFine/train/c"
    (seq / "c_000001_000005_leftImg8bit.png").unlink()
    (seq / "c_000001_000025_leftImg8bit.png").unlink()
    (seq / "c_000001_000010_leftImg8bit.png").write_bytes(b"not a png")
    write_png_atomic(gt / "c_000001_000049_gtFine_labelTrainIds.png", np.zeros((H, W + 2), np.uint8))
    write_png_atomic(gt / "c_000001_000079_gtFine_labelTrainIds.png", np.full((H, W), 30, np.uint8))
    (gt / "c_000001_000109_gtFine_labelTrainIds.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    expected = {
        ("c_000001_000005_leftImg8bit.png", "missing frame (offset -14) of the snippet of c_000001_000019"),
        ("c_000001_000025_leftImg8bit.png", "missing frame (offset +6) of the snippet of c_000001_000019"),
        ("c_000001_000010_leftImg8bit.png", "cannot decode image (corrupt or not an image)"),
        (
            "c_000001_000049_gtFine_labelTrainIds.png",
            "label size 8×4 differs from its frame's 6×4 (c_000001_000049_leftImg8bit.png)",
        ),
        ("c_000001_000079_gtFine_labelTrainIds.png", "label values [30] outside 0..18 and 255"),
        ("c_000001_000109_gtFine_labelTrainIds.png", "cannot decode image (corrupt or not an image)"),
    }
    return root, expected


MISSING = {"c_000001_000005_leftImg8bit.png", "c_000001_000025_leftImg8bit.png"}


def test_all_problems_in_one_pass(broken: tuple[Path, set[tuple[str, str]]]) -> None:
    root, expected = broken
    problems = check_dataset(root, "cityscapes")
    assert all(isinstance(p, Problem) and p.path.is_relative_to(root) for p in problems)
    assert sorted((p.path.name, p.message) for p in problems) == sorted(expected)
    assert {p.path.name for p in problems if p.warning} == MISSING  # a partial snippet only warns
    assert sorted((p.path.name, p.message) for p in check_dataset(root)) == sorted(expected)  # detected


def test_cli_exit_codes(
    broken: tuple[Path, set[tuple[str, str]]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, expected = broken
    args = _parser().parse_args(["data", "check", str(root), "--format", "cityscapes", "--no-progress"])
    assert args.func(args) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"{len(expected) - 2} problem(s) and 2 warning(s) found in {root}"
    assert (
        f"{root}/leftImg8bit_sequence/train/c/c_000001_000010_leftImg8bit.png: cannot decode image"
        in "\n".join(lines)
    )
    assert len(lines) == len(expected) + 1

    clean = write_snippets(tmp_path / "clean")
    args = _parser().parse_args(["data", "check", str(clean), "--no-progress"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines() == [f"no problems found in {clean}"]


def test_a_partial_snippet_checks_clean_with_warnings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_snippets(tmp_path / "ds")
    for number in range(0, 15):  # 15 of the 30 frames are missing
        (root / f"leftImg8bit_sequence/train/c/c_000001_{number:06d}_leftImg8bit.png").unlink()
    args = _parser().parse_args(["data", "check", str(root), "--no-progress"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"no problems found in {root} (15 warning(s))"
    assert (
        lines[0].startswith("warning: ")
        and "c_000001_000000_leftImg8bit.png: missing frame (offset -19)" in lines[0]
    )


def test_a_folder_of_another_layout_names_the_formats(tmp_path: Path, shared_data: Path) -> None:
    (problem,) = check_dataset(shared_data / "davis_dev", "cityscapes")
    assert "no clips found in the cityscapes layout; it looks like: davis (--format)" in problem.message
    (tmp_path / "empty").mkdir()
    (problem,) = check_dataset(tmp_path / "empty")
    assert f"no known data set layout found; formats tried: {', '.join(FORMATS)}" in problem.message


def test_missing_root_is_one_problem(tmp_path: Path) -> None:
    assert check_dataset(tmp_path / "absent") == [
        Problem(tmp_path / "absent", "data set folder does not exist")
    ]


def test_real_tiny_sample_is_clean(shared_data: Path) -> None:
    assert check_dataset(shared_data / "cityscapes_tiny") == []


def test_a_truncated_jpeg_frame_is_named(tmp_path: Path) -> None:
    """A JPEG cut short decodes (its missing part grey) without an error from OpenCV: it must be named."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    root = write_davis(
        tmp_path / "davis", {"seq": [np.zeros((48, 64), np.uint8)] * 3}, frames={"seq": frames}
    )
    cut = root / "JPEGImages/480p/seq/00001.jpg"
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(cut)) is not None  # the decoder alone does not notice
    with pytest.raises(DataError, match="00001.jpg: the image file ends early"):
        read_frame(cut)
    (problem,) = check_dataset(root)
    assert problem.path == cut and "truncated" in problem.message
