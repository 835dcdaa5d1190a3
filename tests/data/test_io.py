"""Reading and writing images and JSON: RGB frames, atomic writes, clear errors on missing or bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from frugalseg.autolabel.store import read_json_list
from frugalseg.data.io import (
    read_frame,
    read_json,
    read_json_object,
    read_label,
    read_text,
    removed_on_failure,
    write_json_atomic,
    write_png_atomic,
)
from frugalseg.errors import DataError
from frugalseg.lightning_modules.publish import read_metrics


def test_read_frame_is_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    Image.fromarray(rgb).save(tmp_path / "f.png")
    np.testing.assert_array_equal(read_frame(tmp_path / "f.png"), rgb)


def test_frames_and_labels_whose_names_the_locale_cannot_encode_are_read(tmp_path: Path) -> None:
    """Under the C locale a non-ASCII name reaches Python surrogate-escaped; OpenCV's imread crashed on it."""
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    label = np.array([[0, 1, 255], [2, 0, 1]], np.uint8)
    Image.fromarray(rgb).save(tmp_path / "frame.png")
    Image.fromarray(label).save(tmp_path / "label.png")
    # names made as bytes: this process may run under the C locale too (CI does)
    folder = os.path.join(os.fsencode(tmp_path), b"vid\xc3\xa9o")
    os.mkdir(folder)
    names = [os.path.join(folder, b"frame \xc3\xa9.png"), os.path.join(folder, b"label \xc3\xa9.png")]
    os.rename(os.fsencode(tmp_path / "frame.png"), names[0])
    os.rename(os.fsencode(tmp_path / "label.png"), names[1])
    script = (
        "import sys; from frugalseg.data.io import read_frame, read_label; "
        "print(read_frame(sys.argv[1]).tolist(), read_label(sys.argv[2]).tolist())"
    )
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run([sys.executable, "-c", script, *names], env=env, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.decode() == f"{rgb.tolist()} {label.tolist()}\n"


def test_json_records_a_name_the_locale_could_not_decode_and_reads_it_back(tmp_path: Path) -> None:
    """``vidé`` as Python hands it over under the C locale: each byte it cannot decode a lone surrogate."""
    name = "vid\udcc3\udca9"
    write_json_atomic(tmp_path / "run.json", {"root": name, "object": "é"})
    written = b'{\n "object": "\xc3\xa9",\n "root": "vid\\udcc3\\udca9"\n}\n'  # UTF-8, and the escapes
    assert (tmp_path / "run.json").read_bytes() == written
    assert read_json(tmp_path / "run.json") == {"root": name, "object": "é"}


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


def test_json_files_are_written_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "a_clicks.json"
    write_json_atomic(path, {"clicks": []})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"clicks": [object()]})
    assert json.loads(path.read_text(encoding="utf-8")) == {"clicks": []}  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["a_clicks.json"]  # no temporary file left


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


def test_array_sha1_hashes_the_bytes_in_c_order() -> None:
    from frugalseg.data.files import array_sha1

    transposed = np.arange(6, dtype=np.uint8).reshape(2, 3).T  # not contiguous: bytes 0 3 1 4 2 5
    assert array_sha1(transposed) == "8222e2b79d569b08b67f5395a331b9c50347fe8c"  # sha1 of those six bytes


def test_keyed_rng_draws_depend_only_on_seed_key_and_numbers() -> None:
    """Pinned draws: the loops' selectors, type policies, clicks and synthetic clips rest on them."""
    from frugalseg.autolabel.runs import image_rng
    from frugalseg.data.files import keyed_rng

    assert keyed_rng(7, "clip", 3).integers(1000, size=4).tolist() == [572, 245, 286, 199]
    assert keyed_rng(7, "clip", 3, 2).integers(1000, size=4).tolist() == [318, 509, 225, 213]
    assert keyed_rng(7, "other", 3).integers(1000, size=4).tolist() == [225, 65, 943, 64]
    assert image_rng(7, "clip", 3).integers(1000, size=4).tolist() == [639, 725, 643, 347]  # offset + 2**16


def test_read_text_is_utf_8_without_a_byte_order_mark_and_names_a_file_that_is_not(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes("\ufeffbéar\r\nb\n".encode())  # Notepad's UTF-8: a BOM and CRLF
    assert read_text(path).splitlines() == ["béar", "b"]
    path.write_bytes(b"bear\n\xe9\n")  # Latin-1's é
    with pytest.raises(
        DataError, match=r"list\.txt: not a UTF-8 text file \(invalid continuation byte at byte 5\)"
    ):
        read_text(path)
    with pytest.raises(DataError, match=r"gone\.txt: file does not exist"):
        read_text(tmp_path / "gone.txt")


def test_json_files_a_person_saves_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    path = tmp_path / "clicks.json"
    path.write_bytes(b"\xef\xbb\xbf" + '{"clicks": [{"x": 3, "y": 4, "label": "é"}]}'.encode())  # Notepad
    assert read_json(path) == {"clicks": [{"x": 3, "y": 4, "label": "é"}]}
    assert read_json_object(path) == {"clicks": [{"x": 3, "y": 4, "label": "é"}]}
    assert read_json_list(path, "clicks", lambda item: (item["x"], item["y"]), "clicks") == [(3, 4)]
    metrics = tmp_path / "metrics.json"
    metrics.write_bytes(b'\xef\xbb\xbf{"val/miou": 0.5}')
    assert read_metrics(metrics) == {"val/miou": 0.5}
    logged = tmp_path / "metrics.csv"
    logged.write_bytes(b"\xef\xbb\xbfval/miou,step\r\n0.25,1\r\n")
    assert read_metrics(logged) == {"val/miou": 0.25}
    path.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf{}")  # only one mark is dropped: a second is no JSON
    with pytest.raises(DataError, match=r"clicks\.json: not valid JSON \(Expecting value: line 1 column 1"):
        read_json(path)


def test_an_empty_image_or_video_file_is_called_empty(tmp_path: Path) -> None:
    """A 0-byte frame or video (a copy that never finished) was 'cannot decode image' or FFmpeg's
    ``[Errno 1094995529] Invalid data found when processing input``."""
    from frugalseg.data.io import image_size, read_frame
    from frugalseg.data.videos import video_index

    frame, video = tmp_path / "00000.jpg", tmp_path / "holiday.mp4"
    frame.write_bytes(b"")
    video.write_bytes(b"")
    expected = "empty file (0 bytes): a copy or download that did not finish"
    for read, path in ((image_size, frame), (read_frame, frame), (video_index, video)):
        with pytest.raises(DataError) as error:
            read(path)
        assert str(error.value) == f"{path}: {expected}"


@pytest.mark.parametrize("kind", ["baseline.jpg", "progressive.jpg", "restarts.jpg", "png"])
def test_bytes_after_an_image_s_end_are_allowed_and_a_cut_image_is_refused(tmp_path: Path, kind: str) -> None:
    """A phone's motion photo carries a video after its JPEG's end marker, and tools append data after a
    PNG's IEND chunk: such a file is whole. The same file cut in its pixel data ends early."""
    from frugalseg.data.io import TRUNCATED_IMAGE

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), np.uint8)
    path = tmp_path / f"frame.{kind.rsplit('.', 1)[-1]}"
    if kind == "png":
        write_png_atomic(path, image)
    elif kind == "restarts.jpg":  # restart markers in the scan
        path.write_bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])[1].tobytes())
    else:  # an EXIF segment holding end markers of its own (as a thumbnail does)
        exif = b"Exif\x00\x00" + b"\xff\xd9" * 8
        Image.fromarray(image).save(path, exif=exif, progressive=kind == "progressive.jpg", quality=100)
    data = path.read_bytes()
    expected = read_frame(path)
    path.write_bytes(data + b"ftypmp42" + bytes(range(256)) * 40)  # an appendix 10 kB long
    assert np.array_equal(read_frame(path), expected)
    for cut in (b"", bytes(10_000)):  # cut in the pixel data; then zeros where a copy stopped
        path.write_bytes(data[: len(data) * 2 // 3] + cut)
        with pytest.raises(DataError, match=TRUNCATED_IMAGE.replace("(", r"\(").replace(")", r"\)")):
            read_frame(path)


def test_a_folder_made_by_a_refused_run_is_removed_and_one_stopped_by_ctrl_c_is_kept(tmp_path):
    """A Ctrl-C in `annotate simulate` had removed the folder with the loops it had finished."""
    refused, stopped = tmp_path / "refused", tmp_path / "stopped"
    with pytest.raises(DataError), removed_on_failure(refused) as folder:
        (folder / "labels").mkdir(parents=True)
        raise DataError(folder, "a bad clip")
    with pytest.raises(KeyboardInterrupt), removed_on_failure(stopped) as folder:
        (folder / "labels").mkdir(parents=True)
        raise KeyboardInterrupt
    assert not refused.exists() and (stopped / "labels").is_dir()


def test_a_label_saved_as_a_palette_png_is_read_as_its_indices(tmp_path: Path) -> None:
    """OpenCV gives a palette PNG's colours; a tool that saves class ids so (VOC's way) means the indices."""
    from frugalseg.data.formats.camvid import read_segnet_label
    from frugalseg.data.io import read_label

    ids = np.array([[0, 1, 2], [11, 255, 3]], np.uint8)
    indexed = Image.fromarray(ids, mode="P")
    indexed.putpalette([v for k in range(256) for v in (k, 255 - k, 7)])  # no colour equals its index
    indexed.save(tmp_path / "label.png")
    np.testing.assert_array_equal(read_label(tmp_path / "label.png", 12), ids)
    np.testing.assert_array_equal(read_segnet_label(tmp_path / "label.png"), np.where(ids == 11, 255, ids))
    Image.fromarray(np.stack([ids] * 3, axis=-1)).save(tmp_path / "rgb.png")  # a colour image stays refused
    with pytest.raises(DataError, match="label must be a single-channel image, got 3 channels"):
        read_label(tmp_path / "rgb.png", 12)


def test_a_file_in_a_folder_it_may_not_write_in_is_named_not_its_temporary_file(
    tmp_path: Path, monkeypatch
) -> None:
    """The refusal named ``.x.json.jg91c7ke.tmp``, a file the person never asked for."""
    import tempfile

    from frugalseg.cli import _said
    from frugalseg.data.files import write_bytes_atomic

    def refused(prefix: str, suffix: str, dir: Path) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied", str(dir / f"{prefix}abc{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError) as error:
        write_bytes_atomic(tmp_path / "x.json", b"{}")
    assert _said(error.value) == f"{tmp_path / 'x.json'}: Permission denied to write in its folder"
