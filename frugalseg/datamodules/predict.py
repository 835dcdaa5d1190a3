"""What `frugalseg predict` reads: the anchor frames of a split, or every frame of a folder; no labels needed.

Each item is the ``num_frames`` frames ending at the frame to segment (earlier frames repeat the
first frame of the clip or folder, as for training) with its name, path and original size, so the
prediction writer can name its files and restore the size after a ``load_scale``. For streaming
(`folder_items` with ``stream=True``) an item is one frame, marked when it starts a video, and the
student keeps its memory between items. Frames of different sizes never share a batch
(`SameSizeBatchSampler`): each is segmented at its own size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, Sampler

from frugalseg.data.clips import Clip
from frugalseg.data.io import TRUNCATED_IMAGE, image_size, read_frame, whole_image
from frugalseg.data.videos import VIDEO_EXTENSIONS, is_video, natural_key, video_frames
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
    """The anchor frame (offset 0) of every clip, named by its clip id (``city_seq_frame``).

    A frame missing before the anchor (a partial snippet) reads the nearest one towards it, as training does.
    """
    items = []
    for clip in clips:
        first = clip.offsets[0]
        paths = tuple(
            clip.frame_path(clip.nearest_frame(max(first, -back), 0)) for back in reversed(range(num_frames))
        )
        items.append(PredictItem(clip.clip_id, paths))
    return items


def _videos_under(folder: Path) -> dict[Path, list[Path]]:
    """Each video under ``folder`` (a folder of frames in natural order, or a video file) → its frames.

    ``folder`` may be one video file or one image (a video of one frame).
    """
    if is_video(folder):
        return {folder: video_frames(folder)}
    if folder.suffix.lower() in FRAME_SUFFIXES and folder.is_file():
        return {folder: [folder]}
    if folder.is_file():
        kinds = f"{', '.join(FRAME_SUFFIXES)} or {', '.join(VIDEO_EXTENSIONS)}"
        raise DataError(folder, f"not an image, a video or a folder of frames to predict (a file of {kinds})")
    if not folder.is_dir():
        raise DataError(folder, "video or folder of frames to predict does not exist")
    videos: dict[Path, list[Path]] = {}
    for path in sorted(folder.rglob("*"), key=lambda p: natural_key(p.relative_to(folder).as_posix())):
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
    """Every image under ``folder``; each sub-folder is one video, its frames in natural order (2 before 10).

    ``folder`` may also be, or hold, video files: frame ``i`` of ``clip.mp4`` is named ``clip/00012``;
    or be one image. Items are named by their path without the suffix, relative to ``folder``, or to
    its parent where ``folder`` itself is the video (frames directly in it, a video file, an image),
    so that the video's name is kept. With ``stream`` each
    item is one frame, in video order, marked ``first`` where a video starts.
    """
    folder = Path(folder)
    items = []
    named: dict[str, Path] = {}
    for video, frames in _videos_under(folder).items():
        base = folder.parent if video == folder else folder
        for i, path in enumerate(frames):
            source = (
                video.with_suffix("") / path.name
                if video != path and video.is_file()
                else path.with_suffix("")
            )
            name = source.relative_to(base).as_posix()
            if name in named:  # a.jpg and a.png, or clip.mp4 and clip/00000.png: one output file
                raise DataError(
                    path,
                    f"its prediction would have the same name {name!r} as {named[name]}'s and overwrite it; "
                    "rename one of them or move it to another folder",
                )
            named[name] = path
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
        self._sizes: dict[Path, tuple[int, int]] = {}  # (width, height) of each frame `check_frames` read

    def __len__(self) -> int:
        return len(self.items)

    def check_frames(self) -> None:
        """Refuse, before any map is written, a frame that is missing, unreadable, cut short or mis-sized.

        A frame must have the size of the frames of its video read with it (or streamed before it).

        Raises:
            DataError: naming the frame (its header and last bytes are read, not its pixels; `sizes`
                reuses the headers).
        """
        for path in dict.fromkeys(path for item in self.items for path in item.frames):
            self._sizes[path] = image_size(path)
            if not whole_image(path):
                raise DataError(path, TRUNCATED_IMAGE)
        previous: Path | None = None
        for item in self.items:  # the frames a video student reads together, or streams in turn
            together = (
                [previous, *item.frames] if item.first is False and previous is not None else item.frames
            )
            for path in together[:-1]:
                self._check_same_size(path, together[-1])
            previous = item.frames[-1]

    def _check_same_size(self, earlier: Path, path: Path) -> None:
        """Refuse frame ``path`` of another size than ``earlier``, a frame of its video before it."""
        if self._sizes[earlier] != self._sizes[path]:
            (width, height), (first_width, first_height) = self._sizes[path], self._sizes[earlier]
            raise DataError(
                path,
                f"frame size {width}×{height}, but {earlier.name} before it in its video is "
                f"{first_width}×{first_height}: a video student reads a video's frames together, so they "
                "must have one size; put frames of another size in a folder of their own",
            )

    def sizes(self) -> list[tuple[int, int]]:
        """(width, height) of the frame each item segments, from the file headers."""
        return [self._sizes.get(item.frames[-1]) or image_size(item.frames[-1]) for item in self.items]

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


class SameSizeBatchSampler(BatchSampler):
    """Batches of consecutive items whose frames have one size: a frame of another size starts a batch.

    The default collation stacks a batch's frames, and the prediction of a batch is resized to one
    size, so a folder of frames of several sizes is batched this way (in order; at most ``batch_size``).

    Args:
        sampler: the items' indices, in the order they are segmented.
        batch_size: the most items in a batch.
        drop_last: drop the last batch when it holds fewer than ``batch_size`` items.
        sizes: the size of each item's frames, by item index (`PredictDataset.sizes`).
    """

    def __init__(
        self,
        sampler: Sampler[int] | Iterable[int],
        batch_size: int,
        drop_last: bool,
        sizes: Sequence[tuple[int, int]],
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.sizes = list(sizes)

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            if batch and (len(batch) == self.batch_size or self.sizes[index] != self.sizes[batch[0]]):
                yield batch
                batch = []
            batch.append(index)
        if batch and not (self.drop_last and len(batch) < self.batch_size):
            yield batch

    def __len__(self) -> int:
        return sum(1 for _ in self)
