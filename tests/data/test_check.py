"""`check_dataset` lists every problem in one pass; `frugalseg data check` exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.cli.data import register
from frugalseg.data.check import Problem, check_dataset
from frugalseg.data.formats import FORMATS, CityscapesFormat
from frugalseg.data.io import TRUNCATED_IMAGE, read_frame, write_png_atomic
from frugalseg.errors import DataError

from .fake_camvid import write_segnet
from .fake_cityscapes import SIZE, write_snippets, write_still
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
    assert problem.message == f"no known data set layout found; formats tried: {', '.join(FORMATS)}"
    # a download's parent folder (MOSE's train/ and valid/, the shared data): the data sets below are named
    (tmp_path / "data").mkdir()
    for name in ("davis_dev", "camvid_dev"):
        (tmp_path / "data" / name).symlink_to(shared_data / name)
    (problem,) = check_dataset(tmp_path / "data")
    assert problem.message.endswith(
        "; its sub-folders camvid_dev (camvid), davis_dev (davis) are data sets: give one of them as the root"
    )


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


def _zero_middle(path: Path) -> None:
    """Zero the middle third of a file, keeping its start and end (a JPEG keeps its end marker)."""
    data = bytearray(path.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = bytes(third)
    path.write_bytes(bytes(data))


def bomb_png(path: Path, side: int = 14000) -> Path:
    """A valid grey PNG of side×side zeros (196 Mpx at 14000) in a few hundred KiB: a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte + pixels
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def _check_cli(root: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    from frugalseg.cli import main

    code = main(["data", "check", str(root), "--no-progress"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def test_a_jpeg_whose_middle_is_zeroed_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Its end marker is kept, so only decoding it with libjpeg's warnings as errors finds it."""
    root = write_segnet(tmp_path / "camvid")
    damaged = sorted((root / "train").glob("*.jpg"))[1]
    _zero_middle(damaged)
    assert cv2.imread(str(damaged)) is not None  # OpenCV decodes it and says nothing
    code, message = _check_cli(root, capsys)
    assert code == 1
    assert f"{damaged}: corrupt JPEG data (Corrupt JPEG data: " in message
    assert "1 problem(s) and 0 warning(s)" in message


def test_a_camvid_frame_without_its_label_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_segnet(tmp_path / "camvid")
    label = sorted((root / "valannot").glob("*.png"))[0]
    label.unlink()
    code, message = _check_cli(root, capsys)
    assert code == 1
    assert f"{root / 'val' / label.name}: frame has no label valannot/{label.name} in split 'val'" in message


def test_a_cityscapes_image_without_the_label_its_split_promises_is_named(tmp_path: Path, capsys) -> None:
    """Images of two cities, the fine labels of one (a partial unzip): training refuses, import does not."""
    root = write_still(write_still(tmp_path / "cs", split="val", city="a", fine=True), split="val", city="b")
    code, message = _check_cli(root, capsys)
    missing = root / "gtFine/val/b/b_000000_000019_gtFine_labelTrainIds.png"
    assert code == 1 and message.splitlines()[0] == (
        f"{missing}: no label of annotated frame b_000000_000019 (neither gtFine's nor gtCoarse's "
        "labelTrainIds or labelIds), while 1 frame(s) of split 'val' have their gtFine label"
    )
    fmt = CityscapesFormat(root)
    with pytest.raises(DataError, match="no label of annotated frame b_000000_000019") as caught:
        fmt.clips("val")
    assert caught.value.path == missing
    frames_only = fmt.clips("val", labelled=False)
    assert [clip.clip_id for clip in frames_only] == ["a_000000_000019", "b_000000_000019"]
    assert check_dataset(write_still(tmp_path / "frames only", split="val", city="b")) == []


def test_a_cityscapes_instance_map_of_another_size_or_cut_short_is_named(tmp_path: Path) -> None:
    """`label clicks` and `label boxes` read the anchor's instance ids: `data check` reads them too."""
    root = write_snippets(tmp_path / "cs")
    instances = root / "gtFine/train/c/c_000001_000019_gtFine_instanceIds.png"
    write_png_atomic(instances, np.full((H, W + 2), 26001, np.uint16))
    (problem,) = check_dataset(root)
    assert (problem.path, problem.message) == (
        instances,
        f"instance-id map is {W + 2}×{H}, its label {W}×{H}",
    )
    instances.write_bytes(instances.read_bytes()[:-12])  # its closing chunk lost
    (problem,) = check_dataset(root)
    assert (problem.path, problem.message) == (instances, TRUNCATED_IMAGE)
    write_png_atomic(instances, np.full((H, W), 26001, np.uint16))
    assert check_dataset(root) == []


def test_cityscapes_label_ids_of_no_class_are_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_snippets(tmp_path / "cs")
    fine = root / "gtFine/train/c/c_000001_000019_gtFine_labelTrainIds.png"
    fine.unlink()
    ids = np.full(SIZE, 7, np.uint8)  # road
    ids[0, :3] = (60, 99, 26)  # two ids no class has, one car
    write_png_atomic(fine.with_name("c_000001_000019_gtFine_labelIds.png"), ids)
    code, message = _check_cli(root, capsys)
    assert code == 1
    name = "c_000001_000019_gtFine_labelIds.png"
    assert f"{name}: label ids [60, 99] belong to no class (the data set's ids are 0…33 and 255)" in message


def test_a_davis_mask_saved_as_rgb_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Not the first frame's mask (the clip's label) but a later one, which the loop scores against."""
    root = write_davis(tmp_path / "davis", {"seq": [np.zeros((48, 64), np.uint8)] * 4})
    mask = root / "Annotations/480p/seq/00002.png"
    coloured = np.zeros((48, 64, 3), np.uint8)
    coloured[3, 4] = (200, 0, 0)
    write_png_atomic(mask, coloured)
    code, message = _check_cli(root, capsys)
    assert code == 1
    assert f"{mask}: mask must be a palette or grey-level PNG of object ids, got PIL mode 'RGB' with" in (
        message
    )


def test_a_black_and_white_mask_saved_as_rgb_is_read_as_grey(tmp_path: Path) -> None:
    """A paint program saves a black-and-white mask as RGB(A): the same object as its grey-level PNG."""
    from PIL import Image

    from frugalseg.data.formats.davis import DavisFormat

    drawn = np.zeros((6, 8), np.uint8)
    drawn[2:4, 3:6] = 255
    for mode in ("RGB", "RGBA"):
        Image.fromarray(drawn).convert(mode).save(tmp_path / f"{mode}.png")
        np.testing.assert_array_equal(DavisFormat.read_mask(tmp_path / f"{mode}.png"), drawn // 255)


def test_an_unreadable_file_is_a_permission_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading as root ignores file modes, so the refusal the system gives others is simulated."""
    import builtins

    from frugalseg.data import io

    root = write_segnet(tmp_path / "camvid")
    locked = sorted((root / "val").glob("*.png"))[0]

    def guarded_open(file, *args, **kwargs):
        if Path(file) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", guarded_open, raising=False)
    code, message = _check_cli(root, capsys)
    assert code == 1
    assert f"{locked}: permission denied: cannot read the file (check its owner and mode)" in message
    assert "corrupt" not in message


def test_an_unreadable_folder_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    root = write_segnet(tmp_path / "camvid")
    locked = root / "val"
    scandir = os.scandir

    def guarded_scandir(path=".", *args):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path, *args)

    monkeypatch.setattr(os, "scandir", guarded_scandir)
    code, message = _check_cli(root, capsys)
    assert code == 1
    assert f"{locked}: permission denied: cannot list the folder; its files are not checked" in message


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bomb_png(tmp_path_factory.mktemp("bomb") / "bomb.png")


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path: Path, bomb: Path, capsys) -> None:
    with pytest.raises(
        DataError, match=r"bomb.png: image of 14000×14000 \(196 Mpx\) is larger than frugalseg"
    ):
        read_frame(bomb)
    root = write_segnet(tmp_path / "camvid")
    frame = sorted((root / "val").glob("*.png"))[0]
    frame.write_bytes(bomb.read_bytes())
    code, message = _check_cli(root, capsys)
    assert code == 1
    assert (
        f"{frame}: image of 14000×14000 (196 Mpx) is larger than frugalseg decodes (67 Mpx, 8192×8192)"
        in message
    )


def test_a_davis_set_of_frames_only_checks_clean_with_a_note_and_one_missing_mask_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import shutil

    both = {"2017": {"train": ["a", "b"], "val": ["a", "b"]}}  # each clip in two splits, counted once
    masks = {name: [np.zeros((8, 8), np.uint8)] * 2 for name in ("a", "b")}
    root = write_davis(tmp_path / "ds", masks, image_sets=both)
    shutil.rmtree(root / "Annotations")  # a person's frames, no masks
    args = _parser().parse_args(["data", "check", str(root), "--format", "davis", "--no-progress"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"note: {root}: frames only, none of its 2 clip(s) has its manual label (the first frame's mask): "
        "`annotate` and `label` take it; `vos fit` and J&F scores need the masks",
        f"no problems found in {root}",
    ]
    labelled = write_davis(tmp_path / "ds2", {name: [np.zeros((8, 8), np.uint8)] * 2 for name in ("a", "b")})
    shutil.rmtree(labelled / "Annotations" / "480p" / "b")  # one clip's masks lost
    args = _parser().parse_args(["data", "check", str(labelled), "--format", "davis", "--no-progress"])
    assert args.func(args) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"1 problem(s) and 0 warning(s) found in {labelled}"
    assert "mask of the first frame of sequence 'b' does not exist" in lines[0]


def test_a_frames_only_folder_not_detected_says_to_name_the_format(tmp_path: Path, capsys) -> None:
    import shutil

    root = write_davis(tmp_path / "ds", {"a": [np.zeros((8, 8), np.uint8)] * 2})
    shutil.rmtree(root / "Annotations")
    args = _parser().parse_args(["data", "check", str(root), "--no-progress"])
    assert args.func(args) == 1
    assert (
        "JPEGImages/ without Annotations/ is frames only: give --format davis or mose"
        in capsys.readouterr().out
    )


def test_a_person_s_frame_folder_checks_clean_with_the_frames_only_note(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Format video takes a frame folder without masks; the check says it is frames only, as for DAVIS."""
    clip = tmp_path / "my clip"
    clip.mkdir()
    for t in range(2):
        cv2.imwrite(str(clip / f"frame {t}.jpg"), np.full((8, 8, 3), 40 * t, np.uint8))
    code, message = _check_cli(clip, capsys)
    assert code == 0
    assert message.splitlines() == [
        f"note: {clip}: frames only, none of its 1 clip(s) has its manual label (the first frame's mask): "
        "`annotate` and `label` take it; `vos fit` and J&F scores need the masks",
        f"no problems found in {clip}",
    ]
    (clip.parent / "Annotations" / "my clip").mkdir(parents=True)
    cv2.imwrite(str(clip.parent / "Annotations" / "my clip" / "frame 0.png"), np.zeros((8, 8), np.uint8))
    code, message = _check_cli(clip, capsys)
    assert (code, message) == (0, f"no problems found in {clip}\n")


def test_a_folder_of_clip_folders_is_told_how_to_read_them(tmp_path: Path) -> None:
    """A folder whose sub-folders hold frames matches no layout; the problem says what to give instead."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "00000.jpg"), np.zeros((8, 8, 3), np.uint8))
    (problem,) = check_dataset(tmp_path)
    assert problem.message.startswith(
        f"no known data set layout found; formats tried: {', '.join(FORMATS)}; "
    )
    assert (
        "its sub-folders a, b hold frames, which looks like one clip per folder: give --root one clip "
        in (problem.message)
    )


def test_a_camvid_frame_of_another_size_is_named_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """CamVid's clips share their sequence's frames, each anchored at another still: the one whose anchor
    was the odd frame measured every other frame against it, naming good files."""
    root = write_segnet(tmp_path / "camvid")
    odd = root / "train" / "0001TP_006720.jpg"  # the middle one of its sequence's three
    cv2.imwrite(str(odd), np.zeros((12, 16, 3), np.uint8))
    code, message = _check_cli(root, capsys)
    assert code == 1
    assert message.splitlines() == [
        f"{odd}: frame size 16×12 differs from the clip's 48×32",
        f"{root}/trainannot/0001TP_006720.png: label size 48×32 differs from its frame's 16×12 "
        "(0001TP_006720.jpg)",
        f"2 problem(s) and 0 warning(s) found in {root}",
    ]


def test_the_mose_api_s_nested_layout_is_told_how_to_read_it(tmp_path: Path, shared_data: Path) -> None:
    """MOSE-api's loaders read JPEGImages/<split>/<video>: `--format mose` had said "no '' folder"."""
    for top, name in (("JPEGImages", "00000.jpg"), ("Annotations", "00000.png")):
        (tmp_path / "mose" / top / "train" / "v1").mkdir(parents=True)
        source = shared_data / "davis_dev" / top / "480p" / "car-shadow" / name
        (tmp_path / "mose" / top / "train" / "v1" / name).symlink_to(source)
    (problem,) = check_dataset(tmp_path / "mose", "mose")
    assert problem.message == (
        "holds folders of video folders (train), not video folders: MOSE's layout is JPEGImages/<video>/ "
        "(each archive's train/, valid/ a root); `vos fit` reads this one with --data.format davis "
        "--data.resolution train"
    )


def test_a_semantic_set_without_its_class_maps_is_told_so_not_of_first_frame_masks(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture
) -> None:
    """An IDD tree before createLabels.py had been told of "the first frame's mask" and `vos fit`."""
    image = "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
    (tmp_path / "cs" / image).parent.mkdir(parents=True)
    (tmp_path / "cs" / image).symlink_to(shared_data / "cityscapes_tiny" / image)
    args = _parser().parse_args(["data", "check", str(tmp_path / "cs"), "--no-progress"])
    args.func(args)
    assert capsys.readouterr().out.splitlines()[0] == (
        f"note: {tmp_path / 'cs'}: frames only, none of its 1 clip(s) has its manual label (the class map "
        "of its annotated frame): `fit`, `validate` and `label` need them"
    )


def test_a_cityscapes_frame_whose_gtfine_files_lack_its_label_map_is_named(tmp_path: Path, capsys) -> None:
    """The only labelled frame of a split lost its label maps, its colour PNG kept: the split
    was called frames only, "no problems found", and training then drew no sample."""
    root = write_still(tmp_path / "cs", split="val", city="a", fine=True)
    folder = root / "gtFine/val/a"
    for label in folder.glob("*_gtFine_label*.png"):
        label.unlink()
    write_png_atomic(folder / "a_000000_000019_gtFine_color.png", np.zeros((8, 16, 3), np.uint8))
    code, message = _check_cli(root, capsys)
    assert code == 1 and message.splitlines()[1] == (
        f"{folder / 'a_000000_000019_gtFine_labelTrainIds.png'}: no label of annotated frame a_000000_000019 "
        "(neither gtFine's nor gtCoarse's labelTrainIds or labelIds), while its gtFine folder holds "
        "a_000000_000019_gtFine_color.png"
    )
    frames_only = CityscapesFormat(root).clips("val", labelled=False)  # export, import: the frames alone
    assert [clip.clip_id for clip in frames_only] == ["a_000000_000019"]


def test_masks_given_for_a_data_set_of_its_own_labels_are_refused_naming_it(
    shared_data: Path, capsys
) -> None:
    """CamVid with --masks had been read as a folder of videos: "holds no video files … give --root one clip
    folder", though without --masks it is a CamVid set with no problem."""
    from frugalseg.cli import main

    root = shared_data / "camvid_dev"
    masks = shared_data / "davis_dev" / "Annotations" / "480p" / "blackswan"
    assert main(["data", "check", str(root), "--masks", str(masks), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"error: --masks: gives the masks of a folder of frames or a video; {root} is a camvid data set, "
        "whose labels it holds: check it without --masks\n"
    )
