"""The registry of tool formats: each format's file registers its reader and writer where it defines them.

A format carries its name, the suffix of the file the tool exports and the version of the tool's
format (as CVAT's ``dataset_manager/formats`` do with ``@importer``/``@exporter``)::

    COCO = ToolFormat("coco", ".json", "1.0")

    @register_reader(COCO)
    def read_coco(path: str | Path) -> ToolExport: ...

so adding a format is one file in `frugalseg.interop`; `frugalseg.interop.formats` imports every
module of the package, then reads ``READERS`` and ``WRITERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from frugalseg.interop.shapes import ToolExport

if TYPE_CHECKING:
    from frugalseg.interop.stored_frames import StoredFrame

Read = TypeVar("Read", bound=Callable[[Path], ToolExport])
Write = TypeVar("Write", bound="Callable[[Path, list[StoredFrame], list[str]], None]")


@dataclass(frozen=True)
class ToolFormat:
    """A tool's file format.

    Attributes:
        name: the name commands take (``--tool coco``).
        suffix: the suffix of the file the tool exports (``.json``); empty for a folder.
        version: the version of the tool's format that is read and written (CVAT's ``1.1``).
    """

    name: str
    suffix: str
    version: str


@dataclass(frozen=True)
class ToolReader:
    """A tool format's reader of its exports.

    Attributes:
        format: the format read.
        read: reads the export at a path.
    """

    format: ToolFormat
    read: Callable[[Path], ToolExport]


@dataclass(frozen=True)
class ToolWriter:
    """A tool format's writer of a label store's frames, and how `write_tool_files` names its files.

    Attributes:
        format: the format written (its suffix names the file).
        write: writes ``(path, frames, classes)``.
        per_clip: the format holds one video: one file per clip.
    """

    format: ToolFormat
    write: Callable[[Path, list[StoredFrame], list[str]], None]
    per_clip: bool = False


#: Every reader by its format's name, in the order the format files registered them.
READERS: dict[str, ToolReader] = {}
#: Every writer by its format's name.
WRITERS: dict[str, ToolWriter] = {}


def register_reader(tool: ToolFormat) -> Callable[[Read], Read]:
    """Register the decorated function as the reader of ``tool``'s exports."""

    def register(read: Read) -> Read:
        if tool.name in READERS:
            raise ValueError(_twice(tool, READERS[tool.name].read, read))
        READERS[tool.name] = ToolReader(tool, read)
        return read

    return register


def register_writer(tool: ToolFormat, *, per_clip: bool = False) -> Callable[[Write], Write]:
    """Register the decorated function as the writer of ``tool``'s files (``per_clip``: one file a clip)."""

    def register(write: Write) -> Write:
        if tool.name in WRITERS:
            raise ValueError(_twice(tool, WRITERS[tool.name].write, write))
        WRITERS[tool.name] = ToolWriter(tool, write, per_clip)
        return write

    return register


def _twice(tool: ToolFormat, first: Callable[..., object], second: Callable[..., object]) -> str:
    """Two files that claim one format's name would silently shadow each other: name both."""
    return (
        f"tool format {tool.name!r} is registered twice: by {first.__module__}.{first.__qualname__} "
        f"and {second.__module__}.{second.__qualname__}"
    )
