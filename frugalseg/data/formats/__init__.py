"""Data set formats: readers that turn an on-disk layout into `Clip` records, behind one `Format` protocol."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from frugalseg.data.formats.base import Format, Problem, looks_like
from frugalseg.data.formats.camvid import CamvidFormat
from frugalseg.data.formats.cityscapes import CityscapesFormat
from frugalseg.data.formats.davis import DavisFormat, MoseFormat
from frugalseg.data.formats.idd import IddFormat
from frugalseg.data.formats.synthetic import (
    ANCHOR_FRAME,
    PARAMS_FILE,
    SyntheticFormat,
    default_synthetic_root,
    generate_synthetic_streets,
)
from frugalseg.data.formats.veis import VeisFormat
from frugalseg.data.formats.video import VideoFormat, clip_folders_hint
from frugalseg.errors import ConfigError, DataError

#: Every format by name, in the order `detect_format` tries them (most specific first). Cityscapes and
#: IDD share their folders and differ in file names (``city_seq_frame`` or not), which each tests.
FORMATS: dict[str, type[Format]] = {
    "synthetic": SyntheticFormat,
    "cityscapes": CityscapesFormat,
    "idd": IddFormat,
    "camvid": CamvidFormat,
    "mose": MoseFormat,
    "davis": DavisFormat,
    "veis": VeisFormat,
    "video": VideoFormat,  # last: any folder holding videos or images directly
}


def get_format(name: str, root: str | Path, **options: Any) -> Format:
    """The reader of format ``name`` over the data set folder ``root``.

    ``options`` are the reader's own arguments (e.g. ``resolution`` for ``davis``, ``masks`` for
    ``video``). Raises `ConfigError` for an unknown name (listing the known ones) or an option the
    reader does not take, and `DataError` for a missing folder or a file.
    """
    if name not in FORMATS:
        raise ConfigError("format", f"unknown data format {name!r}; known formats: {', '.join(FORMATS)}")
    accepted = set(inspect.signature(FORMATS[name]).parameters) - {"root"}
    for option in options:
        if option not in accepted:
            raise ConfigError(
                option,
                f"format {name} takes no such option; it takes: {', '.join(sorted(accepted)) or 'none'}",
            )
    if name != VideoFormat.name and Path(root).is_file():  # a video file is the one data set that is a file
        hint = "; a video file is read with --format video" if VideoFormat.looks_like(Path(root)) else ""
        raise DataError(root, f"is a file, not a data set folder (format {name}){hint}")
    return FORMATS[name](root, **options)


def formats_like(root: str | Path, besides: str) -> list[str]:
    """The names of the formats other than ``besides`` whose layout the folder ``root`` has."""
    return [name for name, cls in FORMATS.items() if name != besides and cls.looks_like(Path(root))]


def check_layout(fmt: Format) -> None:
    """Refuse a data set folder in which ``fmt`` finds no split: it is not of that format.

    Raises:
        DataError: naming the folder, what it holds, the formats there are and which of them it looks like.
    """
    if fmt.splits():
        return
    like = formats_like(fmt.root, fmt.name)
    hint = looks_like(like) if like else "it matches none of them"
    entries = sorted(p for p in fmt.root.iterdir() if not p.name.startswith("."))
    held = ", ".join(p.name + "/" * p.is_dir() for p in entries[:6]) or "nothing"
    more = f" and {len(entries) - 6} more" if len(entries) > 6 else ""
    raise DataError(
        fmt.root,
        f"no {fmt.name} data set here (no split found): the folder holds {held}{more}; "
        f"formats: {', '.join(FORMATS)}; {hint}",
    )


def detect_format(root: str | Path) -> str:
    """The name of the first format whose layout ``root`` has; `DataError` listing those tried otherwise.

    ``root`` is a data set folder, or a video file (format ``video``).
    """
    root = Path(root)
    if root.is_file() and VideoFormat.looks_like(root):
        return VideoFormat.name
    if root.is_file():
        raise DataError(root, "is a file, not a data set folder or a video")
    if not root.is_dir():
        raise DataError(root, "data set folder does not exist")
    for name, cls in FORMATS.items():
        if cls.looks_like(root):
            return name
    frames_only = (root / "JPEGImages").is_dir() and not (root / "Annotations").exists()
    hint = (
        "; JPEGImages/ without Annotations/ is frames only: give --format davis or mose"
        if frames_only
        else _data_sets_below(root) or clip_folders_hint(root)
    )
    raise DataError(root, f"no known data set layout found; formats tried: {', '.join(FORMATS)}{hint}")


def _data_sets_below(root: Path) -> str:
    """``; its sub-folders train, valid are mose data sets: …`` (a download's parent folder), else ""."""
    found = {
        child.name: name
        for child in sorted(root.iterdir())
        if child.is_dir()
        for name, cls in FORMATS.items()
        if name != VideoFormat.name and cls.looks_like(child)  # any folder of frames is a video
    }
    if not found:
        return ""
    listed = ", ".join(f"{child} ({name})" for child, name in found.items())
    return f"; its sub-folders {listed} are data sets: give one of them as the root"


__all__ = [
    "ANCHOR_FRAME",
    "FORMATS",
    "PARAMS_FILE",
    "CamvidFormat",
    "CityscapesFormat",
    "DavisFormat",
    "Format",
    "IddFormat",
    "MoseFormat",
    "Problem",
    "SyntheticFormat",
    "VeisFormat",
    "VideoFormat",
    "check_layout",
    "default_synthetic_root",
    "detect_format",
    "formats_like",
    "generate_synthetic_streets",
    "get_format",
]
