"""Tool files read within a memory budget: the size limit, and the JSON, XML and PNG parsers readers share.

A tool file is parsed whole into Python objects, which take several times the file's bytes, so a file
larger than ``FRUGALSEG_MAX_TOOL_FILE_MB`` (default `MAX_TOOL_FILE_MB`) is refused before it is read;
``benchmarks/bench_tool_file_memory.py`` records the peak memory of a read. JSON nested deeper than
Python's recursion limit is refused (`frugalseg.data.io.read_json`), and XML is parsed by defusedxml
(no entities, no DTDs). Mask exports' PNGs are read from a folder or a zip alike (`AnyPath`).
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import cv2
import defusedxml.ElementTree as SafeET
import numpy as np

from frugalseg.data.io import read_json
from frugalseg.errors import ConfigError, DataError

#: The largest tool file read, in MB (10^6 bytes), unless ``FRUGALSEG_MAX_TOOL_FILE_MB`` says otherwise.
MAX_TOOL_FILE_MB = 64
LIMIT_VARIABLE = "FRUGALSEG_MAX_TOOL_FILE_MB"


def tool_file_limit() -> float:
    """The largest tool file read, in MB: ``$FRUGALSEG_MAX_TOOL_FILE_MB``, else `MAX_TOOL_FILE_MB`."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return MAX_TOOL_FILE_MB
    try:
        limit = float(text)
    except ValueError:
        limit = math.nan
    if not math.isfinite(limit) or limit <= 0:
        raise ConfigError(LIMIT_VARIABLE, f"expected a positive number of MB, got {text!r}")
    return limit


def check_tool_file(path: Path) -> None:
    """Raise `DataError` naming ``path`` when it is no file or is larger than `tool_file_limit`."""
    if not path.is_file():
        raise DataError(path, "file does not exist")
    size, limit = path.stat().st_size, tool_file_limit()
    if size > limit * 1e6:
        raise DataError(
            path,
            f"{size / 1e6:.3g} MB is over the {limit:g} MB limit on tool files (read whole, their objects "
            f"take several times that in memory); raise it with {LIMIT_VARIABLE}={math.ceil(size / 1e6)} "
            "or split the file",
        )


def read_tool_json(path: Path) -> Any:
    """The value of a JSON tool file within the size limit; `DataError` naming it otherwise.

    A PNG image or a zip (a tool's other export formats) is named as such, not as bad JSON.
    """
    check_tool_file(path)
    if is_png_file(path):
        raise DataError(path, "a PNG image, not a JSON file: give the tool's JSON export")
    if zipfile.is_zipfile(path):
        raise DataError(path, "a zip archive, not a JSON file: unzip it and give the JSON file it holds")
    return read_json(path)


def is_png_file(path: Path) -> bool:
    """Whether ``path`` is a file that starts as a PNG image does."""
    if not path.is_file():
        return False
    with path.open("rb") as file:
        return file.read(len(_PNG_HEAD)) == _PNG_HEAD


def parse_xml(path: Path) -> Any:
    """The root element of an XML tool file, parsed safely; `DataError` naming the file when refused."""
    check_tool_file(path)
    try:
        return SafeET.parse(path).getroot()
    except SafeET.ParseError as err:
        raise DataError(path, f"not valid XML ({err})") from err
    except Exception as err:  # defusedxml's refusals (entities, DTDs) are not ParseErrors
        raise DataError(path, f"refused XML ({type(err).__name__}: {err})") from err


_PNG_HEAD, _PNG_TAIL = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"

#: A file in a folder or inside a zip.
AnyPath = Path | zipfile.Path


def read_png(path: AnyPath, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """The image of a PNG in a folder or a zip, decoded with ``flags``; `DataError` naming it otherwise.

    A PNG cut short (no closing ``IEND`` chunk) is refused before it is decoded, and OpenCV's warnings
    on damaged data are kept off the terminal: the error says it, in one line.
    """
    try:
        data = path.read_bytes()
    except (OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(str(path), f"cannot read ({err})") from err
    if data.startswith(_PNG_HEAD) and not data.endswith(_PNG_TAIL):
        raise DataError(str(path), "the PNG ends early (truncated): its decoded pixels would be wrong")
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if image is None:
        raise DataError(str(path), "cannot decode image (corrupt or not an image)")
    return image


def png_files(folder: AnyPath, prefix: str = "") -> list[tuple[str, AnyPath]]:
    """The PNGs under ``folder`` with their paths in it (``car-shadow/00000.png``), sorted by path.

    A tool names a frame by its path in the task, so frames of several clips lie in sub-folders.
    """
    found: list[tuple[str, AnyPath]] = []
    for entry in folder.iterdir():
        if entry.is_dir():
            found += png_files(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".png"):
            found.append((prefix + entry.name, entry))
    return sorted(found, key=lambda item: item[0])
