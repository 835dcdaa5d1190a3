"""Frames as the loaders read them: decoded and resized to the scale used, decoded in full once.

A 2048×1024 Cityscapes PNG takes about 65 ms to decode whatever ``load_scale`` is, so at a quarter
of the size most of a sample's cost is decoding pixels that are thrown away. `FrameReader` keeps
each resized frame (a lossless PNG, a sixteenth of the pixels at scale 0.25) in a cache folder and
reads that from the second time on. The key is the frame's path and its file's identity (inode,
size and status-change time, which no tool can set back), so a replaced frame is decoded anew.
Frames inside a video file (``clip.mp4/00012``) are kept at every scale, 1 included: reading one
at random means decoding from the keyframe before it, which the cached PNG saves; their key is the
video file's identity and the frame's index.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.io import image_size, imread, read_frame, whole_image, write_png_atomic
from frugalseg.data.videos import VideoFrame, file_identity, split_frame_path
from frugalseg.errors import ConfigError


def check_one_size(frames: list[Path], batch_size: int) -> None:
    """Refuse frames of two sizes (their headers) for batches of more than one: a batch stacks one size.

    MOSE, a folder of your own videos: the first training batch had failed in torch's collate, after the
    labels were made.

    Args:
        frames: a frame of each training clip (its header is read).
        batch_size: ``data.loader.batch_size``.
    """
    sizes: dict[tuple[int, int], Path] = {}
    for path in frames if batch_size > 1 else ():
        sizes.setdefault(image_size(path), path)
        if len(sizes) > 1:
            (first, a), (second, b) = sizes.items()
            raise ConfigError(
                "data.loader.batch_size",
                f"{batch_size}, and the training frames are of two sizes ({a} is {first[0]}×{first[1]}, {b} "
                f"{second[0]}×{second[1]}): a batch stacks frames of one size; train with batch_size 1, or "
                "on frames resized to one size",
            )


def resize_by(image: np.ndarray, scale: float, nearest: bool = False) -> np.ndarray:
    """``image`` scaled by ``scale``: nearest for label maps, else area to shrink and bilinear to enlarge."""
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=interpolation)


def resize_sparse(label: np.ndarray, scale: float, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """A sparse label map (clicks) scaled by ``scale``, every labelled pixel kept.

    Each labelled pixel is carried to its scaled position, where nearest resizing would drop the
    ones between its samples when shrinking.
    """
    resized = resize_by(label, scale, nearest=True)
    if scale >= 1.0:
        return resized
    out = np.full_like(resized, ignore_index)
    rows, cols = np.nonzero(label != ignore_index)
    height, width = resized.shape
    out[
        np.minimum((rows * scale).astype(np.int64), height - 1),
        np.minimum((cols * scale).astype(np.int64), width - 1),
    ] = label[rows, cols]
    return out


class FrameReader:
    """``reader(path)``: the frame at ``path`` as H×W×3 uint8 RGB, resized by ``scale``.

    Args:
        scale: resize factor applied on load.
        cache: folder of resized frames (used when ``scale`` < 1, and for frames of video files);
            None decodes every time.
    """

    def __init__(self, scale: float = 1.0, cache: str | Path | None = None) -> None:
        self.scale = scale
        self.cache = Path(cache) if cache is not None else None

    def __call__(self, path: str | Path) -> np.ndarray:
        """The resized frame, from the cache when it holds it."""
        path = Path(path)
        video_frame = split_frame_path(path)
        if self.cache is None or (self.scale >= 1 and video_frame is None):
            return resize_by(read_frame(path), self.scale)
        cached = self._cached_path(path, video_frame)
        if cached is not None and whole_image(cached):
            image = imread(cached, cv2.IMREAD_COLOR)
            if image is not None:
                return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        frame = resize_by(read_frame(path), self.scale)
        if cached is not None:
            write_png_atomic(cached, frame)
        return frame

    def _cached_path(self, path: Path, video_frame: VideoFrame | None) -> Path | None:
        """Where the resized ``path`` is kept, keyed by its file's identity; None if it cannot be stat'ed."""
        assert self.cache is not None
        try:
            if video_frame is None:
                identity = file_identity(path)
            else:
                identity = f"{file_identity(video_frame.video)}#{video_frame.number}"
        except OSError:
            return None  # read_frame names the missing file
        identity = f"{identity}|{self.scale!r}"
        key = hashlib.blake2b(identity.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
        return self.cache / key[:2] / f"{key}.png"
