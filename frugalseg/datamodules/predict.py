"""What `frugalseg predict` reads: the anchor frames of a split, or every frame of a folder; no labels needed.

Each item is the ``num_frames`` frames ending at the frame to segment (earlier frames repeat the
first frame of the clip or folder, as for training) with its name, path and original size, so the
prediction writer can name its files and restore the size after a ``load_scale``. For streaming
(`folder_items` with ``stream=True``) an item is one frame, marked when it starts a video, and the
student keeps its memory between items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from frugalseg.data.clips import Clip
from frugalseg.data.io import read_frame
from frugalseg.data.videos import VIDEO_EXTENSIONS, is_video, video_frames
from frugalseg.datamodules.frames import resize_by
from frugalseg.errors import DataError

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class PredictItem:
    """One frame to segment: its output name, and the frames the student reads (oldest first)."""

    name: str
    frames: tuple[Path, ...]
    #: streaming only: whether this frame starts a video (None: not streamed)
    first: bool | None = None


def split_items(clips: Sequence[Clip], num_frames: int) -> list[PredictItem]:
    """The anchor frame (offset 0) of every clip, named by its clip id (``city_seq_frame``)."""
    items = []
    for clip in clips:
        first = clip.offsets[0]
        paths = tuple(clip.frame_path(max(first, -back)) for back in reversed(range(num_frames)))
        items.append(PredictItem(clip.clip_id, paths))
    return items


def _videos_under(folder: Path) -> dict[Path, list[Path]]:
    """Each video under ``folder`` (a folder of frames sorted by file name, or a video file) → its frames."""
    if is_video(folder):
        return {folder: video_frames(folder)}
    if not folder.is_dir():
        raise DataError(folder, "folder of frames to predict does not exist")
    videos: dict[Path, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in FRAME_SUFFIXES and path.is_file():
            videos.setdefault(path.parent, []).append(path)
        elif is_video(path):
            videos[path] = video_frames(path)
    if not videos:
        raise DataError(
            folder,
            f"no frames ({', '.join(FRAME_SUFFIXES)}) or videos ({', '.join(VIDEO_EXTENSIONS)}) to predict",
        )
    return videos


def folder_items(folder: str | Path, num_frames: int, *, stream: bool = False) -> list[PredictItem]:
    """Every image under ``folder``; each sub-folder is one video whose frames sort by file name.

    ``folder`` may also be, or hold, video files: frame ``i`` of ``clip.mp4`` is named ``clip/00012``.
    Items are named by their path relative to ``folder`` without the suffix. With ``stream`` each
    item is one frame, in video order, marked ``first`` where a video starts.
    """
    folder = Path(folder)
    items = []
    for video, frames in _videos_under(folder).items():
        base = folder.parent if video == folder else folder
        for i, path in enumerate(frames):
            source = video.with_suffix("") / path.name if video.is_file() else path.with_suffix("")
            name = source.relative_to(base).as_posix()
            if stream:
                items.append(PredictItem(name, (path,), first=i == 0))
            else:
                paths = tuple(frames[max(0, i - back)] for back in reversed(range(num_frames)))
                items.append(PredictItem(name, paths))
    return items


class PredictDataset(Dataset):
    """Decodes the frames of each item; ``scale`` resizes them as the training data was resized."""

    def __init__(self, items: Sequence[PredictItem], scale: float = 1.0) -> None:
        self.items = list(items)
        self.scale = scale

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        frames = [read_frame(path) for path in item.frames]
        height, width = frames[-1].shape[:2]
        for path, frame in zip(item.frames, frames, strict=True):
            if frame.shape[:2] != (height, width):
                raise DataError(
                    path, f"frame size {frame.shape[1]}×{frame.shape[0]} differs from {item.frames[-1]}"
                )
        frames = [resize_by(frame, self.scale) for frame in frames]
        meta = {"name": item.name, "frame": str(item.frames[-1]), "height": height, "width": width}
        if item.first is not None:
            meta["first"] = item.first
        return {"frames": torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(), "meta": meta}
