"""The tool formats frugalseg reads and writes, by name: one reader or writer per format, one registry each.

``READERS`` turn a tool's export into a `ToolExport`; ``WRITERS`` (`ToolWriter`) turn a label store's frames
(`frugalseg.interop.stores.stored_frames`) into a file the tool opens. ``frugalseg label import`` and
``label export`` take their ``--tool`` choices from these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from frugalseg.errors import ConfigError, DataError, FrugalsegError
from frugalseg.interop.coco import read_coco, read_coco_panoptic, write_coco_frames
from frugalseg.interop.cvat import read_cvat_images, read_cvat_video, write_cvat_video_frames
from frugalseg.interop.cvat_mask import read_cvat_mask
from frugalseg.interop.label_studio import read_label_studio, write_label_studio_frames
from frugalseg.interop.labelme import read_labelme
from frugalseg.interop.mots import read_mots
from frugalseg.interop.shapes import ToolExport
from frugalseg.interop.stores import StoredFrame

READERS: dict[str, Callable[[Path], ToolExport]] = {
    "cvat-video": read_cvat_video,
    "cvat-images": read_cvat_images,
    "cvat-mask": read_cvat_mask,
    "coco": read_coco,
    "coco-panoptic": read_coco_panoptic,
    "label-studio": read_label_studio,
    "labelme": read_labelme,
    "mots": read_mots,
}


@dataclass(frozen=True)
class ToolWriter:
    """A tool format's writer of a label store's frames, and how `write_tool_files` names its files.

    Attributes:
        write: writes ``(path, frames, classes)``.
        suffix: the file's suffix (``.json``).
        per_clip: the format holds one video: one file per clip.
    """

    write: Callable[[Path, list[StoredFrame], list[str]], None]
    suffix: str
    per_clip: bool = False


WRITERS: dict[str, ToolWriter] = {
    "coco": ToolWriter(write_coco_frames, ".json"),
    "cvat-video": ToolWriter(write_cvat_video_frames, ".xml", per_clip=True),
    "label-studio": ToolWriter(write_label_studio_frames, ".json"),
}


def read_export(tool: str, path: str | Path) -> ToolExport:
    """Read ``path`` as an export of the tool format ``tool`` (a name of ``READERS``)."""
    if tool not in READERS:
        raise ConfigError("--format", f"unknown tool format {tool!r}; known: {', '.join(READERS)}")
    try:
        return READERS[tool](Path(path))
    except FrugalsegError:
        raise
    except (AttributeError, IndexError, KeyError, OverflowError, TypeError, ValueError) as err:
        # the readers name the elements they check; any other value of the wrong type still names the file
        raise DataError(
            path,
            f"not a {tool} file frugalseg can read: a value of the wrong type ({type(err).__name__}: {err})",
        ) from err


def write_export(tool: str, path: str | Path, frames: list[StoredFrame], classes: list[str]) -> None:
    """Write ``frames`` as a file of the tool format ``tool`` (a name of ``WRITERS``)."""
    if tool not in WRITERS:
        raise ConfigError("--format", f"cannot write tool format {tool!r}; written: {', '.join(WRITERS)}")
    WRITERS[tool].write(Path(path), frames, classes)


def write_tool_files(frames: list[StoredFrame], classes: list[str], folder: str | Path) -> list[Path]:
    """Every writer's file of ``frames`` in ``folder``; the paths written.

    ``<tool><suffix>`` per writer of the whole store (``coco.json``, ``label-studio.json``), then
    ``<tool>-<clip><suffix>`` per clip for those that hold one video (``cvat-video-<clip>.xml``).
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
            path = folder / f"{tool}{name}{writer.suffix}"
            write_export(tool, path, part, classes)
            written.append(path)
    return written
