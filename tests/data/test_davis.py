"""The DAVIS-style reader: real DAVIS samples and hand-made palette / binary / MOSE folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.errors import DataError

from .fake_davis import grey_png, palette_png, write_davis

H, W = 6, 8


def _ids(t: int) -> np.ndarray:
    """Object 1 in column t, object 2 in the bottom row."""
    ids = np.zeros((H, W), np.uint8)
    ids[:, t] = 1
    ids[-1, :] = 2
    return ids


def _davis(root: Path, seqs: dict[str, int], resolution: str | None = "480p", binary: bool = False) -> Path:
    """A tiny DAVIS folder: ``seqs`` name → frame count, the mask ``_ids(t)`` on every frame t."""
    masks = {seq: [_ids(t) for t in range(count)] for seq, count in seqs.items()}
    return write_davis(root, masks, resolution=resolution, binary=binary)


def test_real_davis_samples(shared_data):
    fmt = get_format("davis", shared_data / "davis_dev")
    assert isinstance(fmt, DavisFormat) and fmt.name == "davis" and fmt.num_classes == 2
    assert fmt.class_names == ("background", "object")
    assert fmt.splits() == ["all"]
    assert fmt.sequences("all") == ["blackswan", "car-shadow"]
    clips = fmt.clips("all")
    assert [(c.clip_id, len(c.frames), c.anchor_index) for c in clips] == [
        ("blackswan", 50, 0),
        ("car-shadow", 40, 0),
    ]
    blackswan = clips[0]
    assert blackswan.frames[0].name == "00000.jpg" and blackswan.frames[-1].name == "00049.jpg"
    raw = fmt.read_mask(fmt.mask_paths("blackswan")[0])
    assert set(np.unique(raw)) == {0, 1}  # the 0/255 binary file became object 1
    label = fmt.read_label(blackswan.label(0, LabelKind.FINE))
    np.testing.assert_array_equal(label, raw)
    truth = fmt.ground_truth(clips[1])
    assert sorted(truth) == list(range(40))
    np.testing.assert_array_equal(fmt.read_label(truth[39]), fmt.read_mask(fmt.mask_paths("car-shadow")[39]))


def test_palette_masks_keep_object_ids(tmp_path):
    fmt = DavisFormat(_davis(tmp_path / "d", {"seq": 3}))
    masks = fmt.mask_paths("seq")
    np.testing.assert_array_equal(fmt.read_mask(masks[2]), _ids(2))
    (clip,) = fmt.clips("all")
    expected = (_ids(0) > 0).astype(np.uint8)  # semantic use: every object is class 1
    np.testing.assert_array_equal(fmt.read_label(clip.label(0, LabelKind.FINE)), expected)
    truth = fmt.ground_truth(clip)
    np.testing.assert_array_equal(fmt.read_label(truth[1]), (_ids(1) > 0).astype(np.uint8))
    np.testing.assert_array_equal(fmt.instance_ids(clip), _ids(0))  # each object on its own


def test_binary_masks_and_missing_masks(tmp_path):
    root = _davis(tmp_path / "d", {"seq": 4}, binary=True)
    (root / "Annotations/480p/seq/00002.png").unlink()
    fmt = DavisFormat(root)
    masks = fmt.mask_paths("seq")
    assert masks[2] is None and masks[3] is not None
    np.testing.assert_array_equal(fmt.read_mask(masks[1]), (_ids(1) == 1).astype(np.uint8))
    (clip,) = fmt.clips("all")
    assert sorted(fmt.ground_truth(clip)) == [0, 1, 3]


def test_grey_masks_other_than_binary_hold_ids(tmp_path):
    path = tmp_path / "m.png"
    grey_png(path, _ids(0))
    np.testing.assert_array_equal(DavisFormat.read_mask(path), _ids(0))


def test_a_smoothed_black_and_white_grey_mask_is_refused_and_ids_with_void_are_read(tmp_path):
    """A blurred 0/255 mask had been read as up to 254 objects along its edge (its core, 255, void)."""
    import cv2

    binary = np.zeros((40, 60), np.uint8)
    binary[10:30, 15:45] = 255
    smoothed = cv2.GaussianBlur(binary, (9, 9), 3)
    between = len(set(np.unique(smoothed).tolist()) - {0, 255})
    assert between > 32
    path = tmp_path / "smoothed.png"
    grey_png(path, smoothed)
    with pytest.raises(DataError) as caught:
        DavisFormat.read_mask(path)
    assert caught.value.problem == (
        f"{between} grey levels, some just under white: a compressed (a JPEG saved as PNG) or soft-edged "
        "mask, not object ids; save it with hard edges (0 background, one grey level per object; for one "
        "object, every pixel over 127 white)"
    )
    ids = _ids(0)
    ids[0, :] = 255  # void beside a few object ids: read as they are
    grey_png(path, ids)
    np.testing.assert_array_equal(DavisFormat.read_mask(path), ids)


def test_a_jpeg_mask_saved_again_as_png_is_refused(tmp_path):
    """A 0/255 mask through JPEG (quality 90) then PNG: 29 levels, 1-14 and 240-254; read as 27 objects."""
    import cv2

    binary = np.zeros((48, 64), np.uint8)
    binary[10:38, 12:50] = 255
    ok, jpeg = cv2.imencode(".jpg", binary, [cv2.IMWRITE_JPEG_QUALITY, 90])
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)
    levels = len(set(np.unique(decoded).tolist()) - {0, 255})
    assert ok and 0 < levels <= 32 and (decoded > 127).any() and (decoded == 255).any()
    path = tmp_path / "through-jpeg.png"
    grey_png(path, decoded)
    with pytest.raises(DataError) as caught:
        DavisFormat.read_mask(path)
    assert caught.value.problem.startswith(
        f"{levels} grey levels, some just under white: a compressed (a JPEG saved as PNG) or soft-edged mask"
    )


def test_palette_void_becomes_ignore():
    ids = _ids(0)
    ids[0, 0] = 255
    label = DavisFormat.to_label(ids)
    assert label[0, 0] == 255 and label[0, 1] == 0 and label[1, 0] == 1 and label[-1, 3] == 1


def test_mose_layout_without_resolution_folder(tmp_path):
    fmt = get_format("mose", _davis(tmp_path / "m", {"a": 2, "b": 3}, resolution=None))
    assert fmt.name == "mose"
    assert [(c.clip_id, len(c.frames)) for c in fmt.clips("all")] == [("a", 2), ("b", 3)]
    with pytest.raises(
        DataError, match="JPEGImages: no 'Full-Resolution' folder; resolution folders found: 480p"
    ):
        DavisFormat(_davis(tmp_path / "d", {"a": 1}), resolution="Full-Resolution")


def test_image_sets_define_splits(tmp_path):
    root = _davis(tmp_path / "d", {"a": 2, "b": 2, "c": 2})
    (root / "ImageSets/2016").mkdir(parents=True)
    (root / "ImageSets/2016/val.txt").write_text(
        "/JPEGImages/480p/b/00000.jpg /Annotations/480p/b/00000.png\n"
        "/JPEGImages/480p/b/00001.jpg /Annotations/480p/b/00001.png\n",
        encoding="utf-8",
    )
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/train.txt").write_text("a\nc\n", encoding="utf-8")
    (root / "ImageSets/2017/val.txt").write_text("b\n\n", encoding="utf-8")
    fmt = DavisFormat(root)  # the latest year
    assert fmt.splits() == ["train", "val"]
    assert [c.clip_id for c in fmt.clips("train")] == ["a", "c"]
    assert fmt.sequences("val") == ["b"]
    old = DavisFormat(root, year="2016")
    assert old.splits() == ["val"] and old.sequences("val") == ["b"]
    with pytest.raises(DataError, match="split 'test' does not exist"):
        fmt.sequences("test")
    (root / "ImageSets/2017/val.txt").write_text("b\nzebra\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"val\.txt: line 2: sequence 'zebra' has no frame folder"):
        fmt.sequences("val")
    (root / "ImageSets/2017/val.txt").write_bytes("\ufeffb\r\n".encode())  # Notepad's: a BOM, CRLF
    assert fmt.sequences("val") == ["b"]
    (root / "ImageSets/2017/val.txt").write_bytes(b"b\n\xff\n")  # not UTF-8: one line naming it
    with pytest.raises(DataError, match=r"val\.txt: not a UTF-8 text file \(invalid start byte at byte 2\)"):
        fmt.sequences("val")


def test_bad_files_are_named(tmp_path):
    root = _davis(tmp_path / "d", {"ok": 2, "gap": 4, "small": 2, "broken": 2, "orphan": 2, "nofirst": 2})
    (root / "JPEGImages/480p/gap/00002.jpg").unlink()
    palette_png(root / "Annotations/480p/small/00001.png", np.zeros((H - 1, W), np.uint8))
    (root / "Annotations/480p/broken/00000.png").write_bytes(b"not a png")
    palette_png(root / "Annotations/480p/orphan/00007.png", np.zeros((H, W), np.uint8))
    (root / "Annotations/480p/nofirst/00000.png").unlink()
    (root / "JPEGImages/480p/empty").mkdir()
    fmt = DavisFormat(root)
    clips, problems = fmt.scan("all")
    found = {(p.path.relative_to(root).as_posix(), p.message.split(" ")[0]) for p in problems}
    assert found == {
        ("JPEGImages/480p/empty", "sequence"),
        ("JPEGImages/480p/gap/00002.jpg", "missing"),
        ("Annotations/480p/small/00001.png", "mask"),
        ("Annotations/480p/broken/00000.png", "cannot"),
        ("Annotations/480p/orphan/00007.png", "mask"),
        ("Annotations/480p/nofirst/00000.png", "mask"),
    }
    assert "mask size 8×5 differs from the sequence's 8×6" in str(
        next(p for p in problems if "small" in str(p.path))
    )
    assert {c.clip_id for c in clips} == {"ok", "gap", "small", "broken", "orphan", "nofirst"}
    assert {c.clip_id for c in clips if c.label(0, LabelKind.FINE) is None} == {"nofirst"}
    assert next(c for c in clips if c.clip_id == "gap").missing == {2}  # a gap is a warning
    assert [p.warning for p in problems if "gap" in str(p.path)] == [True]
    with pytest.raises(DataError):
        fmt.clips("all")


def test_unsupported_mask_mode_and_missing_root(tmp_path):
    rgb = tmp_path / "rgb.png"
    Image.new("RGB", (W, H), (200, 0, 0)).save(rgb)
    with pytest.raises(DataError, match="rgb.png: mask must be a palette or grey-level PNG"):
        DavisFormat.read_mask(rgb)
    deep = tmp_path / "deep.png"  # grey-level, 16 bits: its depth is what is wrong, said so
    Image.fromarray(np.full((H, W), 300, np.uint16)).save(deep)
    with pytest.raises(DataError) as caught:
        DavisFormat.read_mask(deep)
    assert caught.value.problem.startswith("a 16-bit mask (PIL mode 'I;16'): object ids are 8-bit (1–254")
    with pytest.raises(DataError, match="data set folder does not exist"):
        DavisFormat(tmp_path / "nowhere")
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="JPEGImages: folder does not exist"):
        DavisFormat(tmp_path / "x")


def test_a_replaced_mask_is_read_anew_whatever_its_time_stamp(tmp_path):
    root = _davis(tmp_path / "d", {"seq": 2})
    fmt = DavisFormat(root)
    ref = fmt.clips("all")[0].label(0, LabelKind.FINE)
    assert fmt.read_label(ref)[0, 0] == 1
    mask = root / "Annotations/480p/seq/00000.png"
    stamp = mask.stat().st_mtime - 100
    palette_png(mask, np.zeros((H, W), np.uint8))
    os.utime(mask, (stamp, stamp))  # older than before: no cache may keep the old label
    assert not fmt.read_label(fmt.clips("all")[0].label(0, LabelKind.FINE)).any()


@pytest.mark.parametrize("stroke", [(0, 0, 0), (255, 255, 255)])
def test_a_stroke_on_a_clear_layer_is_its_opaque_pixels(tmp_path, stroke):
    """A black object on a transparent layer had been read as everything but the object (alpha dropped)."""
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., :3] = 255 - np.array(stroke, np.uint8)  # the clear pixels' colour, which is not shown
    rgba[2:4, 3:6] = (*stroke, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "mask.png")
    mask, binary = DavisFormat.decode_mask(tmp_path / "mask.png")
    expected = np.zeros((6, 8), np.uint8)
    expected[2:4, 3:6] = 1
    assert binary and np.array_equal(mask, expected)


def test_a_clear_layer_with_strokes_of_two_colours_is_refused(tmp_path):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[2, 3] = (255, 255, 255, 255)
    rgba[4, 5] = (255, 0, 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "mask.png")
    with pytest.raises(DataError, match="transparent pixels and opaque ones of 2 colours"):
        DavisFormat.decode_mask(tmp_path / "mask.png")


def test_an_image_set_names_a_sequence_with_spaces_whole(tmp_path):
    """``my clip`` had been read as ``my`` ("has no frame folder"); folders with spaces work elsewhere."""
    root = _davis(tmp_path / "d", {"my clip 2": 2, "b": 2})
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("my clip 2 \nb\n", encoding="utf-8")
    assert DavisFormat(root).sequences("val") == ["b", "my clip 2"]


def test_a_stray_copy_beside_numbered_frames_is_refused_naming_it(tmp_path):
    """``00001 copy.jpg`` beside ``00000.jpg …`` had switched the sequence to natural order and become a frame
    between 00001 and 00002: `data check` passed it, a VOS validation refused its missing mask."""
    import shutil

    root = _davis(tmp_path / "d", {"a": 3})
    frames = root / "JPEGImages" / "480p" / "a"
    shutil.copy(frames / "00001.jpg", frames / "00001 copy.jpg")
    with pytest.raises(DataError) as caught:
        DavisFormat(root).frame_paths("a")
    assert str(caught.value) == (
        f"{frames / '00001 copy.jpg'}: not a numbered frame, beside the 3 numbered frames of sequence 'a': "
        "move it out of the folder (it would be taken for a frame)"
    )


def test_a_person_s_own_video_with_its_first_mask_alone_is_not_called_a_vos_validation_split() -> None:
    from frugalseg.data.formats.davis import first_mask_only

    masks = [Path("00000.png"), None, None]
    assert first_mask_only("mose", masks).startswith(": only its first frame has one, as a VOS validation")
    assert first_mask_only("video", masks) == "" and first_mask_only("mose", [*masks[:2], masks[0]]) == ""
