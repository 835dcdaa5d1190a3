"""Reading frames and label maps from disk, and writing files (PNG, JSON) atomically.

The atomic writer, the cache folder and the content hashes live one floor down in
`frugalseg.data.files` (the video decoder builds on them) and are re-exported here.

Every reader raises `DataError` naming the file and the problem, so a bad file in a large
dataset is found from the message alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.files import EMPTY_FILE
from frugalseg.data.files import array_sha1 as array_sha1
from frugalseg.data.files import cache_dir as cache_dir
from frugalseg.data.files import remove_temporaries as remove_temporaries
from frugalseg.data.files import sha256_file as sha256_file
from frugalseg.data.files import symlink_loop as symlink_loop
from frugalseg.data.files import write_bytes_atomic as write_bytes_atomic
from frugalseg.data.files import write_json_atomic as write_json_atomic
from frugalseg.data.videos import split_frame_path
from frugalseg.errors import DataError, FrugalsegError


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataError(path, "file does not exist")


_PNG_HEAD, _PNG_TAIL = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"
_JPEG_HEAD, _JPEG_END = b"\xff\xd8", b"\xff\xd9"


#: What `read_frame` says of an image whose file ends early (`whole_image`).
TRUNCATED_IMAGE = "the image file ends early (truncated): its decoded pixels would be wrong"


def whole_image(path: str | Path) -> bool:
    """Whether a PNG or JPEG file was written to its end (its closing chunk or marker is there).

    Decoders fill a truncated JPEG with grey and say nothing; this catches it from the file's last
    bytes, or, where those are not the end, by walking the file's chunks or segments to it (bytes after
    the end are allowed). An empty file is not whole; other formats are not checked further (True). A
    frame inside a video is whole when the video's index has it (indexing refuses a cut-off video).
    """
    video_frame = split_frame_path(path)
    if video_frame is not None:
        return video_frame.whole()
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 32))
            tail = handle.read()
    except OSError:
        return False
    if size == 0:
        return False
    if head.startswith(_PNG_HEAD):
        if size > 2 * len(_PNG_HEAD) and tail.endswith(_PNG_TAIL):
            return True
        return _png_ends(Path(path), size)  # bytes after the closing chunk (a tool's appendix) are allowed
    if head.startswith(_JPEG_HEAD):
        # The end-of-image marker, maybe followed by padding or by an appendix (a motion photo's video).
        return _JPEG_END in tail or _jpeg_ends(Path(path))
    return True


def _png_ends(path: Path, size: int) -> bool:
    """Whether the PNG file's chunks, walked from its signature, reach a whole closing (IEND) chunk."""
    offset = len(_PNG_HEAD)
    with open(path, "rb") as handle:
        while offset + 12 <= size:
            handle.seek(offset)
            header = handle.read(8)
            length, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if kind == b"IEND":
                return True
            if not kind.isalpha():  # not a chunk: the data ends early (zeros where it was cut)
                return False
            offset += 12 + length  # length, type, data, CRC
    return False


def _jpeg_ends(path: Path) -> bool:
    """Whether the JPEG file, walked from its start (`_jpeg_data_ends`), reaches an end-of-image marker.

    The file is mapped, not read: an appendix after the image (a motion photo's video) may be large.
    """
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _jpeg_data_ends(data)
    except (OSError, ValueError):  # no memory map here (a file system without it, a file emptied since)
        try:
            return _jpeg_data_ends(path.read_bytes())
        except OSError:
            return False


def _jpeg_data_ends(data: bytes | mmap.mmap) -> bool:
    """Whether JPEG data's segments and scans reach an end-of-image marker.

    Marker segments are skipped by their length; in a scan's entropy-coded data a 0xFF byte is a
    marker only when the next byte is neither 0x00 (stuffing) nor a restart marker.
    """
    offset, in_scan = 2, False
    while True:
        offset = data.find(b"\xff", offset)
        if offset < 0 or offset + 1 >= len(data):
            return False
        marker = data[offset + 1]
        if marker == 0xFF or (in_scan and (marker == 0x00 or 0xD0 <= marker <= 0xD7)):
            offset += 1 if marker == 0xFF else 2
            continue
        if marker == _JPEG_END[1]:
            return True
        if offset + 4 > len(data):
            return False
        in_scan = marker == 0xDA  # start of scan: its entropy-coded data follows the header
        offset += 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")


#: Bytes of a frame's start that `frame_fingerprint` hashes (headers and the first rows of pixels).
FINGERPRINT_BYTES = 64 * 1024


def frame_fingerprint(path: str | Path) -> str:
    """``"<file size>:<sha256 of its first 64 KiB, 16 hex>"``: tells a frame from another of the same name.

    Cheap (one read of at most 64 KiB, no decoding) and free of modification times, so a copied or
    re-extracted data set keeps its fingerprints while frames of another recording or seed do not.
    """
    video_frame = split_frame_path(path)
    if video_frame is not None:  # a frame inside a video: the video's fingerprint and the frame's index
        return f"{frame_fingerprint(video_frame.video)}/{video_frame.number}"
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(FINGERPRINT_BYTES)
            size = os.fstat(handle.fileno()).st_size
    except OSError as err:
        raise DataError(path, f"cannot read the file ({err.strerror})") from err
    return f"{size}:{hashlib.sha256(head).hexdigest()[:16]}"


#: The most pixels frugalseg decodes from one image (8192×8192): a larger file is refused before it is
#: decoded (a decompression bomb, or a frame far larger than any video's, would exhaust memory).
MAX_IMAGE_PIXELS = 8192 * 8192
_LIMIT = f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx, 8192×8192"


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image, read from its header only (a frame inside a video: the video's).

    Raises:
        DataError: naming the file when it does not exist, cannot be read (permissions), its header
            cannot be decoded, or it holds more than `MAX_IMAGE_PIXELS` pixels.
    """
    video_frame = split_frame_path(path)
    if video_frame is not None:
        return video_frame.size()
    path = Path(path)
    _check_exists(path)
    if path.stat().st_size == 0:
        raise DataError(path, EMPTY_FILE)
    try:
        with open(path, "rb") as handle:
            width, height = _png_size(handle.read(24)) or _pil_size(handle, path)
    except PermissionError as err:
        raise DataError(path, "permission denied: cannot read the file (check its owner and mode)") from err
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(
            path,
            f"image of {width}×{height} ({width * height / 1e6:.0f} Mpx) is larger than frugalseg decodes "
            f"({_LIMIT}): a decompression bomb or a wrong file; shrink it",
        )
    return width, height


def _png_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when ``head`` is not a PNG's start."""
    if not head.startswith(_PNG_HEAD) or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _pil_size(handle: BinaryIO, path: Path) -> tuple[int, int]:
    """(width, height) of any image PIL reads, from its header (``handle`` is rewound)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    handle.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is frugalseg's
            with Image.open(handle) as image:
                width, height = image.size
                return width, height
    except Image.DecompressionBombError as err:  # over twice PIL's own limit
        raise DataError(path, f"image is larger than frugalseg decodes ({_LIMIT}): {err}") from err
    except UnidentifiedImageError as err:
        raise DataError(path, "cannot decode image (corrupt or not an image)") from err
    except OSError as err:
        raise DataError(path, f"cannot decode image (corrupt or not an image: {err})") from err


def imread(path: str | Path, flags: int) -> np.ndarray | None:
    """An image file decoded by OpenCV (``flags``: ``cv2.IMREAD_…``); None when it cannot be read or decoded.

    Python reads the bytes: OpenCV's own ``imread`` crashes the process on a file name the locale
    cannot encode (a non-ASCII name under the C locale), which Python opens as any other. It reads
    no more than the file: `decode_image` and `read_frame` check the file first.
    """
    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, flags) if data.size else None


def decode_image(path: Path, flags: int) -> np.ndarray:
    """An image file decoded by OpenCV (``flags``), its header read first (`image_size`).

    Raises:
        DataError: naming the file when it does not exist, cannot be read, is too large, cut short
            (`whole_image`) or cannot be decoded.
    """
    image_size(path)
    if not whole_image(path):
        raise DataError(path, TRUNCATED_IMAGE)
    image = imread(path, flags)
    if image is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    return image


def decode_ids(path: Path) -> np.ndarray:
    """A label or id map as its file stores it: `decode_image` unchanged, a palette PNG as its indices.

    OpenCV expands a palette PNG to its colours; a tool that saves class ids as a palette PNG (VOC's
    convention) means the indices.
    """
    image = decode_image(path, cv2.IMREAD_UNCHANGED)
    if image.ndim == 3:
        from PIL import Image

        with Image.open(path) as indexed:
            if indexed.mode == "P":
                return np.array(indexed, dtype=np.uint8)
    return image


def read_frame(path: str | Path, *, strict: bool = False) -> np.ndarray:
    """Read a video frame as an H×W×3 uint8 RGB array (OpenCV decodes faster than PIL).

    ``path`` is an image file, or a frame inside a video file (``clip.mp4/00012``: frame 12 in
    presentation order, decoded by `frugalseg.data.videos.read_video_frame`).

    The header is read first (`image_size`: permissions, size limit). ``strict`` also decodes a
    JPEG with libjpeg-turbo's warnings as errors, which finds damaged data (a zeroed or overwritten
    stretch) that decoders otherwise fill with made-up pixels; `frugalseg data check` uses it.

    Raises:
        DataError: naming the file when it does not exist, cannot be read or decoded, is truncated,
            too large, or (``strict``) holds corrupt JPEG data (for a video: naming the video and
            the frame).
    """
    video_frame = split_frame_path(path)
    if video_frame is not None:
        return video_frame.read()
    path = Path(path)
    image_size(path)
    if not whole_image(path):
        raise DataError(path, TRUNCATED_IMAGE)
    data = path.read_bytes() if strict else b""
    if data.startswith(_JPEG_HEAD):
        return _decode_jpeg_strictly(data, path)
    image = imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _decode_jpeg_strictly(data: bytes, path: Path) -> np.ndarray:
    """A JPEG file's RGB pixels, decoded with every libjpeg warning an error (`DataError` naming it)."""
    import simplejpeg

    try:
        rgb: np.ndarray = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError as err:
        raise DataError(path, f"corrupt JPEG data ({err}): decoders fill it with made-up pixels") from err
    return rgb


def read_label(
    path: str | Path, num_classes: int | None = None, table: np.ndarray | None = None
) -> np.ndarray:
    """Read a single-channel 8-bit label map (grey-level, or a palette PNG's indices) as H×W uint8 train ids.

    ``table`` (256 entries) maps the file's values to train ids, for data sets whose files hold their
    own label ids; without it the file holds train ids. With ``num_classes``, values outside
    0…num_classes−1 and 255 are rejected so that a wrong file cannot silently train the wrong classes.
    """
    path = Path(path)
    label = decode_ids(path)
    if label.ndim != 2:
        raise DataError(path, f"label must be a single-channel image, got {label.shape[2]} channels")
    if label.dtype != np.uint8:
        raise DataError(path, f"label must be 8-bit, got {label.dtype}")
    if table is not None:
        label = table[label]
    if num_classes is not None:
        check_label_values(label, num_classes, path)
    return label


def check_label_values(label: np.ndarray, num_classes: int, path: str | Path) -> None:
    """Raise `DataError` naming ``path`` if ``label`` holds values other than 0…num_classes−1 and 255."""
    counts = np.bincount(label.ravel(), minlength=IGNORE_INDEX + 1)
    bad = np.flatnonzero(counts[num_classes:IGNORE_INDEX]) + num_classes
    if bad.size:
        raise DataError(path, f"label values {bad.tolist()} outside 0..{num_classes - 1} and {IGNORE_INDEX}")


def read_text(path: str | Path) -> str:
    """A text file read as UTF-8 whatever the locale; `DataError` naming it when missing or not UTF-8.

    A byte-order mark (Windows Notepad's UTF-8) is dropped: it is no part of the first line.
    """
    path = Path(path)
    _check_exists(path)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(path, f"not a UTF-8 text file ({err.reason} at byte {err.start})") from err


def read_json(path: str | Path, expected: str = "") -> Any:
    """The value of a JSON file; `DataError` naming the file when missing, not JSON or nested too deeply.

    JSON nested deeper than Python's recursion limit (1000 levels) is refused, not a `RecursionError`.
    A UTF-8 byte-order mark (Windows Notepad's UTF-8) is dropped, as `read_text` does: `json.loads`
    does so for bytes (it refuses one in a `str`), so a reader of a person's JSON file calls this one.
    ``expected`` (what the file should hold) ends the message of a malformed file.
    """
    path = Path(path)
    _check_exists(path)
    wanted = f"; expected {expected}" if expected else ""
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, f"not valid JSON ({err}){wanted}") from err
    except RecursionError as err:
        raise DataError(path, f"JSON nested more than {sys.getrecursionlimit()} levels deep{wanted}") from err


def read_json_object(path: str | Path, form: str = "a JSON object") -> dict[str, Any]:
    """A JSON file holding an object; `DataError` naming the file when it is missing, not JSON or not one.

    ``form`` says what the object should hold, for the message.
    """
    data = read_json(path, form)
    if not isinstance(data, dict):
        raise DataError(path, f"holds a JSON {type(data).__name__}; expected {form}")
    return data


def encode_png(array: np.ndarray, path: str | Path) -> bytes:
    """``array`` encoded as PNG bytes (3-channel arrays are RGB); ``path`` names it in an error."""
    image = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 and array.shape[2] == 3 else array
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise DataError(path, f"cannot encode array of shape {array.shape} and dtype {array.dtype} as PNG")
    return encoded.tobytes()


def write_png_atomic(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as a PNG with `write_bytes_atomic`; 3-channel arrays are RGB."""
    write_bytes_atomic(path, encode_png(array, path))


@contextlib.contextmanager
def removed_on_failure(folder: str | Path) -> Iterator[Path]:
    """Remove ``folder`` when the block refuses its input, if the block made it (absent or empty before).

    A command refused for bad input (a `FrugalsegError`) leaves nothing behind. A run stopped otherwise
    (Ctrl-C, a crash) keeps what it finished, to resume; a folder that held a run before is never removed.
    """
    folder = Path(folder)
    made_here = not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))
    try:
        yield folder
    except FrugalsegError:
        if made_here and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        raise
