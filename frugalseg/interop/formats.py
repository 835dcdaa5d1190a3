"""The tool formats frugalseg reads and writes, by name: one reader or writer per format, one registry each.

Each format's file registers its reader and writer where it defines them
(`frugalseg.interop.registry`); this module imports every module of `frugalseg.interop`, so
``READERS`` and ``WRITERS`` hold them all. ``READERS`` turn a tool's export into a `ToolExport`;
``WRITERS`` (`ToolWriter`) turn a label store's frames (`frugalseg.interop.stored_frames.stored_frames`) into
a file the tool opens. ``frugalseg label import`` and ``label export`` take their ``--tool`` choices
from these.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace
from pathlib import Path, PurePosixPath

from frugalseg.data.files import write_bytes_atomic
from frugalseg.data.io import read_frame, write_png_atomic
from frugalseg.data.videos import split_frame_path
from frugalseg.errors import ConfigError, DataError, FrugalsegError
from frugalseg.interop.registry import READERS, WRITERS, ToolWriter
from frugalseg.interop.shapes import ToolExport
from frugalseg.interop.stored_frames import StoredFrame


def _import_format_files() -> None:
    """Import every module of `frugalseg.interop`, so that each format's file registers itself."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{__package__}.{module.name}")


_import_format_files()


def read_export(tool: str, path: str | Path) -> ToolExport:
    """Read ``path`` as an export of the tool format ``tool`` (a name of ``READERS``)."""
    if tool not in READERS:
        raise ConfigError("--format", f"unknown tool format {tool!r}; known: {', '.join(READERS)}")
    try:
        export = _read(tool, Path(path))
    except DataError as err:
        others = [
            other for other in _readers_with_shapes(tool, Path(path)) if f"--tool {other}" not in str(err)
        ]
        if others and Path(err.path) == Path(path):
            hint = f"it reads as --tool {' or '.join(others)}: give that"
            raise DataError(path, f"{err.problem}; {hint}") from err
        raise
    if not export.frames:
        others = _readers_with_shapes(tool, Path(path))
        if others:
            raise DataError(
                path,
                f"holds no shapes read as --tool {tool}, but reads as --tool {' or '.join(others)}: "
                "give that",
            )
    return export


def _readers_with_shapes(tool: str, path: Path) -> list[str]:
    """The other tool formats whose readers find shapes in ``path`` (another tool's file given as one)."""
    return [other for other in READERS if other != tool and _has_shapes(other, path)]


def _read(tool: str, path: Path) -> ToolExport:
    """``READERS[tool]`` of ``path``, any value of the wrong type a `DataError` naming the file."""
    try:
        return READERS[tool].read(path)
    except FrugalsegError:
        raise
    except (AttributeError, IndexError, KeyError, OverflowError, TypeError, ValueError) as err:
        # the readers name the elements they check; any other value of the wrong type still names the file
        raise DataError(
            path,
            f"not a {tool} file frugalseg can read: a value of the wrong type ({type(err).__name__}: {err})",
        ) from err


def _has_shapes(tool: str, path: Path) -> bool:
    """Whether the reader of ``tool`` finds shapes in ``path`` (another tool's file given as one)."""
    try:
        return bool(_read(tool, path).frames)
    except Exception:  # noqa: BLE001  # only a hint: another reader's failure of any kind is no answer
        return False


def write_export(tool: str, path: str | Path, frames: list[StoredFrame], classes: list[str]) -> None:
    """Write ``frames`` as a file of the tool format ``tool`` (a name of ``WRITERS``)."""
    if tool not in WRITERS:
        raise ConfigError("--format", f"cannot write tool format {tool!r}; written: {', '.join(WRITERS)}")
    WRITERS[tool].write(Path(path), frames, classes)


def with_frame_files(frames: list[StoredFrame], folder: str | Path) -> list[StoredFrame]:
    """``frames`` named by image files written under ``folder``, for a tool that shows only image files.

    A frame inside a video file (``car-shadow.mp4/00005``), which Label Studio and CVAT cannot show, is
    decoded and written as a lossless PNG under its own name (``car-shadow.mp4/00005.png``); an image
    file is copied as it is, into its clip's folder when its name has none (a data set that is one folder
    of frames: ``dog/img 001.jpg``), since Label Studio serves files only from a storage folder below its
    root. The tool file then names them so (serve ``folder`` as Label Studio's local files root, or give
    CVAT its files), and `label import` of it finds the same frames: a name is matched without its
    extension. A file already holding the same bytes is left as it is.
    """
    folder = Path(folder)
    named = []
    for frame in frames:
        source = frame.clip.frame_path(frame.offset)
        if split_frame_path(source) is not None:
            name = f"{frame.name}.png"
            write_png_atomic(folder / name, read_frame(source))
        else:
            bare = PurePosixPath(frame.name).parent == PurePosixPath(".")
            name = f"{frame.clip.clip_id}/{frame.name}" if bare else frame.name
            target = folder / name
            if not (target.is_file() and target.samefile(source)):
                data = source.read_bytes()
                if not (target.is_file() and target.read_bytes() == data):
                    write_bytes_atomic(target, data)
        named.append(replace(frame, name=PurePosixPath(name).as_posix()))
    return named


def write_tool_files(frames: list[StoredFrame], classes: list[str], folder: str | Path) -> list[Path]:
    """Every writer's file of ``frames`` in ``folder``; the paths written (a writer's side files left out).

    ``<tool><suffix>`` per writer of the whole store (``coco.json``, ``label-studio.json``, which has its
    ``label-studio-config.xml`` beside it), then ``<tool>-<clip><suffix>`` per clip for those that hold one
    video (``cvat-video-<clip>.xml``).
    """
    folder = Path(folder)
    clips = dict.fromkeys(f.clip.clip_id for f in frames)
    written = []
    for tool, writer in sorted(WRITERS.items(), key=lambda item: item[1].per_clip):
        parts = (
            {f"-{c}": [f for f in frames if f.clip.clip_id == c] for c in clips}
            if writer.per_clip
            else {"": frames}
        )
        for name, part in parts.items():
            path = folder / f"{tool}{name}{writer.format.suffix}"
            write_export(tool, path, part, classes)
            written.append(path)
    return written


__all__ = [
    "READERS",
    "WRITERS",
    "ToolWriter",
    "read_export",
    "with_frame_files",
    "write_export",
    "write_tool_files",
]
