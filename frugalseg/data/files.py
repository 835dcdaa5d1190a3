"""The file floor of the package: cache folder, the one atomic writer, hashes, keyed generators, link loops.

Nothing here reads images, so every other module of ``frugalseg.data`` (the video decoder too) can
build on it; `frugalseg.data.io` re-exports it beside the image readers.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

#: What a file of 0 bytes is called: a copy or a download that never wrote its data.
EMPTY_FILE = "empty file (0 bytes): a copy or download that did not finish"


def cache_dir() -> Path:
    """Where frugalseg keeps what it generates (synthetic data, pseudo-labels): ``$FRUGALSEG_CACHE``."""
    return Path(os.environ.get("FRUGALSEG_CACHE", Path.home() / ".cache" / "frugalseg")).expanduser()


def nearest_existing(path: Path) -> Path:
    """``path``, or the nearest of its parents that exists: where a folder to be made would be made.

    A file there (not a folder) is what refuses an output folder below it.
    """
    return next(found for found in (path, *path.parents) if found.exists())


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that no half-written file ever appears under ``path``.

    The bytes go to a temporary file in the same folder (same file system), are flushed to disk
    and renamed into place with `os.replace`; on failure the temporary file is removed, and an error of
    the file system that names no file (a full disk) names ``path``. The file gets the usual 0644
    permissions (a temporary file is created 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError as err:  # its folder's, named rather than the temporary file's
        raise PermissionError(err.errno, f"{err.strerror} to write in its folder", str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException as err:
        Path(tmp_name).unlink(missing_ok=True)
        # a full disk's ENOSPC, from write or fsync, names no file: the one written, named
        if isinstance(err, OSError) and err.filename is None and err.errno is not None:
            raise type(err)(err.errno, err.strerror, str(path)) from err
        raise


def file_problem(err: OSError) -> str:
    """A file-system error in one line, naming the file; a full disk says to free space and retry."""
    where = f"{err.filename}: " if err.filename else ""
    said = f"{where}{err.strerror or err}"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        said += " (the disk is full: free some space and try again)"
    return said


def remove_temporaries(folder: str | Path, older_than: float = 0.0) -> int:
    """Remove the temporary files `write_bytes_atomic` left under ``folder`` when it was killed; how many.

    Only for a folder no live writer shares, or with ``older_than`` seconds: a temporary file is written
    and renamed in well under a second, so one that old was left by a writer that was killed.
    """
    now = time.time()
    stale = [path for path in Path(folder).rglob(".*.tmp") if older_than <= 0 or _age(path, now) > older_than]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _age(path: Path, now: float) -> float:
    """Seconds since ``path`` was last written (0 for one gone meanwhile)."""
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def symlink_loop(path: str | Path) -> bool:
    """Whether ``path`` is a symbolic link without end: it leads back to itself, or to a folder holding it."""
    path = Path(path)
    if not path.is_symlink():
        return False
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    target = Path(os.path.realpath(path))
    return target.is_dir() and path.parent.resolve().is_relative_to(target)


def write_json_atomic(path: str | Path, data: Any, *, indent: int = 1, sort_keys: bool = True) -> None:
    """Write ``data`` as JSON (a final newline) with `write_bytes_atomic`.

    Text is written as UTF-8; a lone surrogate (a file name the C locale could not decode, as Python
    hands it over) is written as its JSON escape, so that reading the file back gives the same name.
    """
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8", "backslashreplace"))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks: the one file hash of the package (weights, videos)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def array_sha1(array: np.ndarray) -> str:
    """Hex SHA-1 of an array's bytes in C order: names a mask by its content (loop states, caches)."""
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


def keyed_rng(seed: int, key: str, *numbers: int) -> np.random.Generator:
    """The generator of (``seed``, ``key``, ``numbers``): the same draws whatever else was drawn before.

    One per video and iteration, image or clip, so a resumed or reordered run draws what it would have.
    ``key`` enters by its CRC-32; ``numbers`` must be ≥ 0.
    """
    return np.random.default_rng([seed, zlib.crc32(key.encode()), *numbers])
