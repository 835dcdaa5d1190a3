"""`check_dataset` lists every problem in one pass; `frugalseg data check` exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from frugalseg.datamodules.check import Problem, check_dataset
from frugalseg.datamodules.commands import register
from frugalseg.datamodules.io import write_png_atomic

H, W = 4, 6


def _dataset(root: Path, anchors: tuple[int, ...]) -> Path:
    """A hand-made Cityscapes sequence layout, city ``c``, one clip per anchor frame number."""
    for anchor in anchors:
        for number in range(anchor - 19, anchor + 11):
            frame = np.full((H, W, 3), number, np.uint8)
            write_png_atomic(
                root / f"leftImg8bit_sequence/train/c/c_000001_{number:06d}_leftImg8bit.png", frame
            )
        label = np.arange(H * W, dtype=np.uint8).reshape(H, W) % 19
        write_png_atomic(root / f"gtFine/train/c/c_000001_{anchor:06d}_gtFine_labelTrainIds.png", label)
    return root


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frugalseg")
    register(parser.add_subparsers(dest="group", required=True))
    return parser


@pytest.fixture
def broken(tmp_path: Path) -> tuple[Path, set[tuple[str, str]]]:
    root = _dataset(tmp_path / "ds", anchors=(19, 49, 79, 109))
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


def test_all_problems_in_one_pass(broken: tuple[Path, set[tuple[str, str]]]) -> None:
    root, expected = broken
    problems = check_dataset(root, "cityscapes", num_classes=19)
    assert all(isinstance(p, Problem) and p.path.is_relative_to(root) for p in problems)
    assert sorted((p.path.name, p.message) for p in problems) == sorted(expected)


def test_num_classes_bounds_label_values(broken: tuple[Path, set[tuple[str, str]]]) -> None:
    root, expected = broken
    names = {p.path.name for p in check_dataset(root, num_classes=31)}
    assert "c_000001_000079_gtFine_labelTrainIds.png" not in names and len(names) == len(expected) - 1


def test_cli_exit_codes(
    broken: tuple[Path, set[tuple[str, str]]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, expected = broken
    args = _parser().parse_args(["data", "check", str(root), "--format", "cityscapes", "--num-classes", "19"])
    assert args.func(args) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"{len(expected)} problem(s) found in {root}"
    assert (
        f"{root}/leftImg8bit_sequence/train/c/c_000001_000010_leftImg8bit.png: cannot decode image"
        in "\n".join(lines)
    )
    assert len(lines) == len(expected) + 1

    clean = _dataset(tmp_path / "clean", anchors=(19,))
    args = _parser().parse_args(["data", "check", str(clean)])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines() == [f"no problems found in {clean}"]


def test_missing_root_is_one_problem(tmp_path: Path) -> None:
    assert check_dataset(tmp_path / "absent") == [
        Problem(tmp_path / "absent", "data set folder does not exist")
    ]


def test_real_tiny_sample_is_clean(shared_data: Path) -> None:
    assert check_dataset(shared_data / "cityscapes_tiny") == []
