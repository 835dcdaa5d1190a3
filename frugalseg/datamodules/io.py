"""Reading frames and label maps from disk, and writing files (PNG, JSON) atomically.

Every reader raises `DataError` naming the file and the problem, so a bad file in a large
dataset is found from the message alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from frugalseg.datamodules.clips import IGNORE_INDEX


def cache_dir() -> Path:
    """Where frugalseg keeps what it generates (synthetic data, pseudo-labels): ``$FRUGALSEG_CACHE``."""
    return Path(os.environ.get("FRUGALSEG_CACHE", Path.home() / ".cache" / "frugalseg")).expanduser()


class DataError(ValueError):
    """Bad input data; the message always names the file and the problem.

    Built from the path and the problem separately so the file can never be left out, and so a
    checker can list ``path`` and ``problem`` apart.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem

    def __reduce__(self) -> tuple[type[DataError], tuple[Path, str]]:
        return DataError, (self.path, self.problem)


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataError(path, "file does not exist")


def read_frame(path: str | Path) -> np.ndarray:
    """Read a video frame as an H×W×3 uint8 RGB array (OpenCV decodes faster than PIL)."""
    path = Path(path)
    _check_exists(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _label_id_to_train_id_table() -> np.ndarray:
    """256-entry table from Cityscapes label ids to train ids; ignored and unknown ids give 255."""
    from cityscapesscripts.helpers.labels import labels

    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label in labels:
        if 0 <= label.id < 256 and not label.ignoreInEval and label.trainId not in (255, -1):
            table[label.id] = label.trainId
    return table


_ID_TO_TRAIN_ID: np.ndarray | None = None


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a uint8 map of Cityscapes label ids to train ids (255 = ignore)."""
    global _ID_TO_TRAIN_ID
    if _ID_TO_TRAIN_ID is None:
        _ID_TO_TRAIN_ID = _label_id_to_train_id_table()
    return _ID_TO_TRAIN_ID[label_ids]


def read_label(path: str | Path, num_classes: int | None = None) -> np.ndarray:
    """Read a label map as H×W uint8 train ids (255 = ignore).

    ``*_labelIds.png`` files hold Cityscapes label ids and are mapped to train ids; any other file
    is taken to hold train ids already. With ``num_classes``, values outside 0…num_classes−1 and
    255 are rejected so that a wrong file cannot silently train the wrong classes.
    """
    path = Path(path)
    _check_exists(path)
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    if label.ndim != 2:
        raise DataError(path, f"label must be a single-channel image, got {label.shape[2]} channels")
    if label.dtype != np.uint8:
        raise DataError(path, f"label must be 8-bit, got {label.dtype}")
    if path.name.endswith("_labelIds.png"):
        label = label_ids_to_train_ids(label)
    if num_classes is not None:
        present = np.unique(label)
        bad = present[(present >= num_classes) & (present != IGNORE_INDEX)]
        if bad.size:
            raise DataError(
                path, f"label values {bad.tolist()} outside 0..{num_classes - 1} and {IGNORE_INDEX}"
            )
    return label


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that no half-written file ever appears under ``path``.

    The bytes go to a temporary file in the same folder (same file system), are flushed to disk
    and renamed into place with `os.replace`; on failure the temporary file is removed. The file
    gets the usual 0644 permissions (a temporary file is created 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any, *, indent: int = 1, sort_keys: bool = True) -> None:
    """Write ``data`` as JSON (a final newline) with `write_bytes_atomic`."""
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def write_png_atomic(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as a PNG with `write_bytes_atomic`; 3-channel arrays are RGB."""
    image = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 and array.shape[2] == 3 else array
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise DataError(path, f"cannot encode array of shape {array.shape} and dtype {array.dtype} as PNG")
    write_bytes_atomic(path, encoded.tobytes())
