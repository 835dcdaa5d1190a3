"""The tool formats frugalseg reads and writes, by name: one reader or writer per format, one registry each.

``READERS`` turn a tool's export into a `ToolExport`; ``WRITERS`` turn a label store's frames
(`frugalseg.interop.stores.stored_frames`) into a file the tool opens. ``frugalseg label import`` and
``label export`` take their ``--format`` choices from these.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from frugalseg.errors import ConfigError, DataError, FrugalsegError
from frugalseg.interop.coco import read_coco, read_coco_panoptic, write_coco
from frugalseg.interop.cvat import read_cvat_images, read_cvat_video, write_cvat_video
from frugalseg.interop.cvat_mask import read_cvat_mask
from frugalseg.interop.label_studio import read_label_studio, write_label_studio
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


def _coco(path: Path, frames: list[StoredFrame], classes: list[str]) -> None:
    write_coco(path, [(f.name, f.size, f.objects) for f in frames], classes)


def _cvat_video(path: Path, frames: list[StoredFrame], classes: list[str]) -> None:
    clips = {f.clip.clip_id for f in frames}
    if len(clips) != 1:
        raise ConfigError(
            "--clip",
            f"CVAT for video holds one video; the store has clips {', '.join(sorted(clips))}: name one",
        )
    clip = frames[0].clip
    numbers = [(f.clip.anchor_index + f.offset, f.objects) for f in frames]
    write_cvat_video(path, numbers, size=frames[0].size, labels=classes, name=clip.clip_id,
                     frame_count=len(clip.frames))  # fmt: skip


def _label_studio(path: Path, frames: list[StoredFrame], classes: list[str]) -> None:
    write_label_studio(path, [(f.name, f.size, f.objects) for f in frames])


WRITERS: dict[str, Callable[[Path, list[StoredFrame], list[str]], None]] = {
    "coco": _coco,
    "cvat-video": _cvat_video,
    "label-studio": _label_studio,
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
    WRITERS[tool](Path(path), frames, classes)


def write_tool_files(frames: list[StoredFrame], classes: list[str], folder: str | Path) -> list[Path]:
    """Every writer's file of ``frames`` in ``folder``; the paths written.

    ``coco.json``, ``label-studio.json`` and one CVAT for video file per clip (``cvat-video-<clip>.xml``).
    """
    folder = Path(folder)
    written = [folder / "coco.json", folder / "label-studio.json"]
    write_export("coco", written[0], frames, classes)
    write_export("label-studio", written[1], frames, classes)
    for clip in dict.fromkeys(f.clip.clip_id for f in frames):
        path = folder / f"cvat-video-{clip}.xml"
        write_export("cvat-video", path, [f for f in frames if f.clip.clip_id == clip], classes)
        written.append(path)
    return written
