"""Your own videos as clips: a video file, a folder of video files, or a plain folder of frame images.

``root`` may be:

- a video file (``.mp4``, ``.mov``, ``.mkv``, ``.avi``, ``.webm``): one clip named after its stem;
- a folder of video files: one clip per video;
- a folder of frame images (``.jpg``, ``.jpeg``, ``.png``; any names, in natural order, so
  ``frame2`` comes before ``frame10``): one clip named after the folder.

A video's frames are paths inside the file (``clip.mp4/00012``, see `frugalseg.data.videos`), read
by the same `read_frame` as image files, so every command works on them. Object masks pair with
frames DAVIS-style: a folder of mask PNGs (palette or 0/255 grey, `DavisFormat.read_mask`) named by
frame index for a video (the last number in the name: ``00012.png``, ``frame_12.png``) and by the
frame's stem for a folder of images. ``masks`` names that folder (for several clips: a folder with one
sub-folder per clip, named after it); without it, masks are looked for in ``Annotations/<clip>/``
beside the clips. Like DAVIS, a clip is anchored at its first frame (offset 0 = frame 0) and every
mask counts as ground truth; a clip without masks has no label, which predicting and annotating
need not. The classes are DAVIS's two (background, object), the object ids kept as instances.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from frugalseg.data.clips import Clip, LabelKind, LabelRef
from frugalseg.data.formats.base import Format, Problem, size_problems
from frugalseg.data.formats.davis import (
    ALL_SPLIT,
    FRAME_EXTENSIONS,
    MASK_EXTENSION,
    OBJECT_MASK,
    DavisFormat,
    check_one_frame_per_name,
)
from frugalseg.data.io import image_size, symlink_loop
from frugalseg.data.videos import VIDEO_EXTENSIONS, is_video, natural_key, video_frames, video_index
from frugalseg.errors import DataError

#: The folder beside the clips where their masks are looked for when ``masks`` is not given.
MASKS_FOLDER = "Annotations"


def _images(folder: Path) -> list[Path]:
    """The frame images directly in ``folder``, in natural order."""
    found = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS and p.is_file()]
    frames = sorted(found, key=lambda p: natural_key(p.name))
    check_one_frame_per_name(frames)
    return frames


def mixed_frame_kinds(frames: list[Path]) -> list[Problem]:
    """The frames of a frame folder whose file kind (``.jpg``, ``.png``) is not the folder's most common one.

    A mask or another image saved among the frames would be a frame, and shift every frame after it.
    """
    kinds: dict[str, list[Path]] = {}
    for frame in frames:
        kinds.setdefault(".jpg" if frame.suffix.lower() == ".jpeg" else frame.suffix.lower(), []).append(
            frame
        )
    if len(kinds) < 2:
        return []
    common = max(kinds, key=lambda kind: len(kinds[kind]))
    counts = " and ".join(f"{len(paths)} {kind}" for kind, paths in kinds.items())
    return [
        Problem(
            path,
            f"a {kind} among the folder's frames ({counts}): is it a frame? a mask or other image kept "
            "there is read as one and shifts every frame after it; move it out of the folder",
        )
        for kind, paths in kinds.items()
        if kind != common
        for path in paths
    ]


def _videos(folder: Path) -> list[Path]:
    """The video files directly in ``folder``, in natural order."""
    return sorted((p for p in folder.iterdir() if is_video(p)), key=lambda p: natural_key(p.name))


def _frame_number(mask: Path) -> int | None:
    """The frame index a mask file names: the last number in its stem (None without one)."""
    numbers = re.findall(r"\d+", mask.stem)
    return int(numbers[-1]) if numbers else None


def clip_folders_hint(root: Path) -> str:
    """What to do with a folder whose sub-folders hold the frames (one clip per folder), else "".

    Format video reads one folder of frames as one clip; DAVIS's layout reads every sub-folder of
    ``JPEGImages/`` as a clip, with or without a resolution folder and masks.
    """
    if (root / "JPEGImages").is_dir():
        return "; it holds JPEGImages/, a DAVIS-style data set: use --format davis (or mose)"
    folders = (d for d in root.iterdir() if d.is_dir() and _images(d))
    clips = sorted(folders, key=lambda d: natural_key(d.name))
    if not clips:
        return ""
    names = ", ".join(d.name for d in clips[:3]) + (f" and {len(clips) - 3} more" if len(clips) > 3 else "")
    link = f"mkdir R && ln -s {shlex.quote(str(root.resolve()))} R/JPEGImages"
    return (
        f"; its sub-folders {names} hold frames, which looks like one clip per folder: give --root one "
        f"clip folder ({clips[0]}) to take that clip, or read them all DAVIS-style with --format davis and "
        f"--root a new folder whose JPEGImages is this one ({link})"
    )


class VideoFormat(DavisFormat):
    """Reads video files or a folder of frame images as clips (one per video), with optional masks.

    Args:
        root: a video file, a folder of video files, or a folder of frame images.
        masks: the folder of mask PNGs of a single clip, or a folder with one sub-folder of masks per
            clip (named after the clip); None looks in ``Annotations/`` beside the clips.
    """

    name = "video"

    def __init__(self, root: str | Path, masks: str | Path | None = None) -> None:
        self.root = Path(root)
        self.resolution, self.split_dir = "", None
        if not self.root.exists():
            raise DataError(
                self.root, "video file or folder of videos or frames does not exist (format video)"
            )
        self.sources = self._find_sources()
        holder = self.root if self.root.is_dir() and not self._is_frame_folder else self.root.parent
        self.image_dir = holder
        self.masks = Path(masks) if masks is not None else None
        if self.masks is not None and not self.masks.is_dir():
            raise DataError(self.masks, "masks folder does not exist")
        self.mask_dir = self.masks if self.masks is not None else holder / MASKS_FOLDER
        self._mask_cache: dict[str, tuple[dict[int, Path], list[Problem]]] = {}

    @property
    def _is_frame_folder(self) -> bool:
        return self.root.is_dir() and not _videos(self.root)

    def _find_sources(self) -> dict[str, Path]:
        """Clip name → its video file or frame folder."""
        if self.root.is_file():
            if not is_video(self.root):
                raise DataError(self.root, f"not a video file ({', '.join(VIDEO_EXTENSIONS)})")
            return {self.root.stem: self.root}
        videos = _videos(self.root)
        if not videos:
            if not _images(self.root):
                raise DataError(
                    self.root,
                    f"holds no video files ({', '.join(VIDEO_EXTENSIONS)}) and no frame images "
                    f"({', '.join(FRAME_EXTENSIONS)})" + clip_folders_hint(self.root),
                )
            return {self.root.name: self.root}
        sources: dict[str, Path] = {}
        for video in videos:
            if video.stem in sources:
                raise DataError(
                    video, f"two videos share the clip name {video.stem!r} ({sources[video.stem].name})"
                )
            sources[video.stem] = video
        return sources

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """A video file, or a folder holding video files or frame images directly."""
        if root.is_file():
            return is_video(root)
        return root.is_dir() and bool(_videos(root) or _images(root))

    def splits(self) -> list[str]:
        """One split, ``all``."""
        return [ALL_SPLIT]

    def sequences(self, split: str) -> list[str]:
        """The clip names (video stems, or the frame folder's name), in natural order."""
        if split != ALL_SPLIT:
            raise DataError(self.root, f"split {split!r} does not exist; splits found: {ALL_SPLIT}")
        return list(self.sources)

    def frame_paths(self, seq: str) -> list[Path]:
        """The frames of clip ``seq`` in time order: paths inside its video, or its images."""
        if seq not in self.sources:
            raise DataError(self.root, f"no clip {seq!r}; clips: {', '.join(self.sources)}")
        source = self.sources[seq]
        return video_frames(source) if source.is_file() else _images(source)

    def numbered_frame_paths(self, seq: str) -> list[Path]:
        """`frame_paths`: a clip's frame N is its N-th frame from 0, whatever number its file's name holds.

        A folder of your own frames may be numbered from 1 (ffmpeg's ``%d``) or have gaps, which are
        the video's own; DAVIS's rule that file N is frame N does not hold for it.
        """
        return self.frame_paths(seq)

    def _clip_mask_dir(self, seq: str) -> Path:
        """The folder of clip ``seq``'s masks (it may not exist)."""
        if self.masks is not None and len(self.sources) == 1 and any(self.masks.glob(f"*{MASK_EXTENSION}")):
            return self.masks
        return self.mask_dir / seq

    def _masks(self, seq: str) -> tuple[dict[int, Path], list[Problem]]:
        """Frame index → mask file of clip ``seq``, and the masks that name no frame of it."""
        if seq in self._mask_cache:
            return self._mask_cache[seq]
        folder, frames = self._clip_mask_dir(seq), self.frame_paths(seq)
        found: dict[int, Path] = {}
        problems: list[Problem] = []
        masks = (
            sorted(folder.glob(f"*{MASK_EXTENSION}"), key=lambda p: natural_key(p.name))
            if folder.is_dir()
            else []
        )
        source = self.sources[seq]
        by_stem = {frame.stem: i for i, frame in enumerate(frames)}
        for mask in masks:
            index = _frame_number(mask) if source.is_file() else by_stem.get(mask.stem)
            if index is None:
                problems.append(Problem(mask, f"mask names no frame of {source.name}"))
            elif index >= len(frames):
                problems.append(Problem(mask, self._past_end(source, index)))
            elif index in found:
                problems.append(Problem(mask, f"a second mask of frame {index} ({found[index].name})"))
            else:
                found[index] = mask
        self._mask_cache[seq] = found, problems
        return found, problems

    @staticmethod
    def _past_end(video: Path, index: int) -> str:
        """What is wrong with a mask of frame ``index`` past the end of ``video``."""
        meta = video_index(video)
        claims = f"; its header claims {meta.header_frames}" if meta.header_frames != len(meta) else ""
        return (
            f"mask of frame {index}, past the end of {video.name}: the video has {len(meta)} frames "
            f"(0…{len(meta) - 1}, counted by demuxing{claims})"
        )

    def mask_paths(self, seq: str) -> list[Path | None]:
        """The mask of each frame of ``seq`` (same order as `frame_paths`), None where it has none."""
        found, _ = self._masks(seq)
        return [found.get(i) for i in range(len(self.frame_paths(seq)))]

    def scan(self, split: str) -> tuple[list[Clip], list[Problem]]:
        """One clip per video (or frame folder), anchored at frame 0, and every problem on the way.

        Problems: a symbolic link in the folder that loops, a video that cannot be indexed (truncated,
        not a video), a mask past the video's end or naming no frame, frames or masks whose size
        differs from the clip's first frame, frames of a kind (``.png`` among ``.jpg``) other than
        most of the folder's.
        """
        clips: list[Clip] = []
        problems = [
            Problem(entry, "a symbolic link that loops (to itself or to a folder holding it): it is not read")
            for entry in (sorted(self.root.iterdir()) if self.root.is_dir() else [])
            if symlink_loop(entry)
        ]
        for seq in self.sequences(split):
            try:
                frames = self.frame_paths(seq)
                found, mask_problems = self._masks(seq)
                problems += mask_problems + self._check_sizes(frames, found) + mixed_frame_kinds(frames)
            except DataError as error:
                problems.append(Problem.from_error(error))
                continue
            clip = Clip(clip_id=seq, split=split, frames=frames, anchor_index=0)
            if 0 in found:
                clip.add_label(0, LabelRef(found[0], LabelKind.FINE, OBJECT_MASK))
            clips.append(clip)
        return clips, problems

    def _check_sizes(self, frames: list[Path], masks: dict[int, Path]) -> list[Problem]:
        """Frames (of a frame folder) and masks whose header size differs from the first frame's."""
        size = image_size(frames[0])
        files = [(path, "frame") for path in frames[1:] if path.is_file()]
        files += [(path, "mask") for path in masks.values()]
        return size_problems(files, size, f"the clip's {size[0]}×{size[1]}")

    def ground_truth(self, clip: Clip) -> dict[int, LabelRef]:
        """The mask of every frame of ``clip`` that has one, by offset."""
        found, _ = self._masks(clip.clip_id)
        return {
            index - clip.anchor_index: LabelRef(mask, LabelKind.FINE, OBJECT_MASK)
            for index, mask in found.items()
        }

    def describe(self) -> dict[str, object]:
        """``run.json`` entry: name, root and the masks folder, both absolute (read from any folder)."""
        return {**Format.describe(self), "masks": None if self.masks is None else os.path.abspath(self.masks)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"
