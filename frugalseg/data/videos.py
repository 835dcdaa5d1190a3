"""Video files as frames: a frame-accurate index, decoding only the frames asked for, and frame paths.

Frames of a video are named by a path *inside* the file, ``clip.mp4/00012`` (frame 12 in presentation
order), so every reader that takes a frame path — `frugalseg.data.io.read_frame`, `image_size`, the
resized-frame cache, label stores that name their files after the frame's folder and stem — works
on videos unchanged: ``read_frame`` sees a path whose parent is a video file and decodes that frame.

Decoding uses PyAV (FFmpeg's libraries in its wheels; torchcodec needs an FFmpeg install and a
torch build that match it). Frame ``i`` is always the same image:

- `VideoIndex` lists every frame's presentation timestamp (pts) by demuxing packets without decoding
  them, sorted (B-frames arrive out of order) — frame ``i`` is the ``i``-th smallest pts, whatever
  the frame rate does (variable frame rate needs no special case). The count is the demuxer's, never
  the container header's. The index is kept in ``$FRUGALSEG_CACHE/videos/`` keyed by the file's
  identity (path, inode, size, change time), like the resized-frame cache beside it.
- `VideoDecoder.frame` seeks to the last keyframe at or before the frame and decodes forward to
  it, or goes on decoding from where the last call stopped when that is nearer; when the demuxer
  lands after the frame, it seeks to the keyframe before, down to the start of the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from frugalseg.data.files import EMPTY_FILE, cache_dir, write_json_atomic
from frugalseg.errors import DataError

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm")
#: Digits of a frame's name inside its video (``clip.mp4/00012``); frame 100000 on has more.
FRAME_DIGITS = 5
_INDEX_VERSION = 2
_OPEN_DECODERS = 4
_RECENT_FRAMES = 8
#: Frames a seek costs beyond those it decodes (the decoder's reordering and threads refill).
_RESTART_COST = 4
_indexes: dict[str, VideoIndex] = {}  # by file identity: indexed once per process


def is_video(path: str | Path) -> bool:
    """Whether ``path`` is a video file (by its extension, and it is a file)."""
    path = Path(path)
    return path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def video_frame_path(video: str | Path, index: int) -> Path:
    """The path that names frame ``index`` of ``video``: ``video/00012``."""
    return Path(video) / f"{index:0{FRAME_DIGITS}d}"


class VideoFrame(NamedTuple):
    """Frame ``number`` (presentation order) of the file ``video``: what a frame path inside a video names.

    The readers of `frugalseg.data.io` hand such a frame to these methods.
    """

    video: Path
    number: int

    def read(self) -> np.ndarray:
        """The frame as H×W×3 uint8 RGB (`read_video_frame`)."""
        return read_video_frame(self.video, self.number)

    def size(self) -> tuple[int, int]:
        """(width, height) of the video; `DataError` when it has no such frame."""
        index = video_index(self.video)
        index.check_index(self.video, self.number)
        return index.width, index.height

    def whole(self) -> bool:
        """Whether the video's index has the frame (indexing refuses a cut-off video)."""
        try:
            return 0 <= self.number < len(video_index(self.video))
        except DataError:
            return False


def split_frame_path(path: str | Path) -> VideoFrame | None:
    """The `VideoFrame` a frame path inside a video file names, or None for any other path.

    The one place that decides whether a path names a frame inside a video.
    """
    path = Path(path)
    if not path.name.isdigit() or not is_video(path.parent):
        return None
    return VideoFrame(path.parent, int(path.name))


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders the digits in a name by value: ``frame2`` before ``frame10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name))


def file_identity(path: Path) -> str:
    """A key that changes when the file at ``path`` is replaced (path, inode, size, change time)."""
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_ino}|{stat.st_size}|{stat.st_ctime_ns}"


@dataclass(frozen=True)
class VideoIndex:
    """Where each frame of a video lies, from its packets (no frame decoded).

    Attributes:
        pts: presentation timestamp of frame ``i`` (stream time base), increasing.
        keyframes: the frame indices whose packet is a keyframe, increasing.
        seek_to: the timestamp to seek to for each keyframe: its pts, or later where the container
            seeks by decoding time (MP4 with B-frames: the keyframe's dts shifted as the demuxer
            shifts the first frame's, which can lie after its pts).
        time_base: the stream's time base as (numerator, denominator).
        width: frame width in pixels.
        height: frame height in pixels.
        header_frames: the frame count the container's header claims (0: none); not trusted.
        codec: the stream's codec name.
        seekable: False when the packets' timestamps cannot order the frames (missing or repeated):
            frame ``i`` is then the ``i``-th frame decoded from the start, and reading goes from there.
    """

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]
    seek_to: tuple[int, ...]
    time_base: tuple[int, int]
    width: int
    height: int
    header_frames: int
    codec: str
    seekable: bool = True

    def __len__(self) -> int:
        return len(self.pts)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VideoIndex:
        """The index that `dataclasses.asdict` of one wrote as JSON (lists back to tuples)."""
        numerator, denominator = data["time_base"]
        return cls(
            pts=tuple(data["pts"]),
            keyframes=tuple(data["keyframes"]),
            seek_to=tuple(data["seek_to"]),
            time_base=(int(numerator), int(denominator)),
            width=int(data["width"]),
            height=int(data["height"]),
            header_frames=int(data["header_frames"]),
            codec=str(data["codec"]),
            seekable=bool(data.get("seekable", True)),
        )

    def seconds(self, index: int) -> float:
        """Presentation time of frame ``index`` in seconds."""
        return self.pts[index] * self.time_base[0] / self.time_base[1]

    def keyframe_before(self, index: int) -> int:
        """Position in `keyframes` of the last keyframe at or before frame ``index`` (0 if none)."""
        position = int(np.searchsorted(self.keyframes, index, side="right")) - 1
        return max(position, 0)

    def check_index(self, video: Path, index: int) -> None:
        """Raise `DataError` naming ``video`` and frame ``index`` when the video has no such frame."""
        if not 0 <= index < len(self):
            claims = f"; its header claims {self.header_frames}" if self.header_frames != len(self) else ""
            raise DataError(
                video,
                f"frame {index} is past the video's end: it has {len(self)} frames (0…{len(self) - 1}, "
                f"counted by demuxing{claims})",
            )


def _open(video: Path) -> Any:
    """The PyAV container of ``video`` and its first video stream; `DataError` when it cannot be read."""
    import av

    if not video.is_file():
        raise DataError(video, "video file does not exist")
    if video.stat().st_size == 0:
        raise DataError(video, EMPTY_FILE)
    try:
        container = av.open(str(video))
    except av.error.FFmpegError as err:
        raise DataError(video, f"cannot open video (corrupt, truncated or not a video: {err})") from err
    if not container.streams.video:
        container.close()
        raise DataError(video, "the file holds no video stream")
    return container


def _demux(video: Path) -> tuple[list[tuple[int | None, int | None, bool]], dict[str, Any]]:
    """Every packet of ``video``'s video stream in decoding order, and the stream's description.

    Returns (pts, dts, keyframe) per packet, and the stream's size, time base, header frame count
    and codec; no frame is decoded.
    """
    import av

    container = _open(video)
    packets: list[tuple[int | None, int | None, bool]] = []
    try:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the flush packet at the end
            if packet.is_corrupt:
                raise DataError(
                    video,
                    f"the file ends early or is damaged (truncated): frame {len(packets)} in decoding order "
                    f"is cut off (the header claims {stream.frames} frames); re-export the video",
                )
            packets.append((packet.pts, packet.dts, packet.is_keyframe))
        time_base = stream.time_base or av.time_base
        duration = (  # the video stream's own, else the container's (its longest stream's)
            round(stream.duration * stream.time_base * 1_000_000)
            if stream.duration and stream.time_base
            else container.duration
        )
        _warn_if_short(video, packets, stream.time_base, stream.average_rate, duration)
        meta = {
            "width": int(stream.codec_context.width),
            "height": int(stream.codec_context.height),
            "time_base": (time_base.numerator, time_base.denominator),
            "header_frames": int(stream.frames or 0),
            "codec": str(stream.codec_context.name),
        }
    except av.error.FFmpegError as err:
        raise DataError(video, f"cannot demux video after {len(packets)} frames ({err})") from err
    finally:
        container.close()
    if not packets:
        raise DataError(video, "the video holds no frames")
    return packets, meta


#: A video whose frames end more than this share of its header's duration early (and 2 frames) is reported.
SHORT_SHARE = 0.1


def _warn_if_short(
    video: Path,
    packets: list[tuple[int | None, int | None, bool]],
    time_base: Fraction | None,
    rate: Fraction | None,
    duration: int | None,
) -> None:
    """Warn when ``video``'s frames end well before the ``duration`` (µs) its header gives.

    A Matroska file cut off ends on a whole cluster, so no packet is corrupt and its header holds no frame
    count: only its duration tells that frames are missing.
    """
    times = [pts if pts is not None else dts for pts, dts, _ in packets]
    known = [time for time in times if time is not None]
    if not duration or not rate or not time_base or len(known) < 2:
        return
    frame = 1 / float(rate)
    seconds = float((max(known) - min(known)) * time_base) + frame
    header = duration / 1_000_000  # libav's AV_TIME_BASE
    if seconds < header - max(SHORT_SHARE * header, 2 * frame):
        logger.warning(
            "%s: the file may end early (truncated): its %d frames run %.2f s of the %.2f s its header "
            "gives; re-export the video if frames are missing",
            video,
            len(packets),
            seconds,
            header,
        )


def _count_decoded(video: Path) -> int:
    """How many frames decoding ``video`` from its start gives."""
    import av

    container = _open(video)
    count = 0
    try:
        for _ in container.decode(container.streams.video[0]):
            count += 1
    except av.error.FFmpegError as err:
        raise DataError(video, f"frame {count} in decoding order cannot be decoded ({err})") from err
    finally:
        container.close()
    return count


def _build_index(video: Path) -> VideoIndex:
    """The `VideoIndex` of ``video`` from its packets.

    When their timestamps are missing or repeated (AVI with B-frames), the frames are counted by
    decoding the file once, and are then read from its start.
    """
    packets, meta = _demux(video)
    times = [pts if pts is not None else dts for pts, dts, _ in packets]
    known = [time for time in times if time is not None]
    if len(known) != len(times) or len(set(known)) != len(known):
        logger.warning("%s: frame timestamps missing or repeated; frames are read from its start", video)
        count = _count_decoded(video)
        return VideoIndex(tuple(range(count)), (0,), (0,), **meta, seekable=False)
    order = sorted(range(len(known)), key=known.__getitem__)
    pts = tuple(known[i] for i in order)
    keyframes = tuple(rank for rank, i in enumerate(order) if packets[i][2]) or (0,)
    dts = [d if d is not None else t for (_, d, _), t in zip(packets, known, strict=True)]
    shift = known[0] - dts[0]  # how far the demuxer's decoding times run behind
    seek_to = tuple(max(pts[k], dts[order[k]] + shift) for k in keyframes)
    if meta["header_frames"] and meta["header_frames"] != len(pts):
        logger.warning(
            "%s: the header claims %d frames, demuxing finds %d", video, meta["header_frames"], len(pts)
        )
    return VideoIndex(pts, keyframes, seek_to, **meta)


def video_index(video: str | Path) -> VideoIndex:
    """The `VideoIndex` of ``video``, from ``$FRUGALSEG_CACHE/videos`` when this very file was indexed.

    Raises:
        DataError: naming the file when it is missing, truncated or not a video.
    """
    video = Path(video)
    if not video.is_file():
        raise DataError(video, "video file does not exist")
    identity = file_identity(video)
    if identity in _indexes:
        return _indexes[identity]
    key = hashlib.blake2b(identity.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
    cached = cache_dir() / "videos" / key / "index.json"
    index: VideoIndex | None = None
    try:
        data = json.loads(cached.read_text(encoding="utf-8"))
        if data.pop("identity") == identity and data.pop("version") == _INDEX_VERSION:
            index = VideoIndex.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not cached yet, or by another version: index anew
    if index is None:
        index = _build_index(video)
        write_json_atomic(cached, {**asdict(index), "identity": identity, "version": _INDEX_VERSION})
    _indexes[identity] = index
    return index


class VideoDecoder:
    """Decodes frames of one video by index, only those asked for and the ones on the way to them.

    Args:
        video: the video file.
        index: its `VideoIndex` (default: `video_index` of the file).
    """

    def __init__(self, video: str | Path, index: VideoIndex | None = None) -> None:
        self.video = Path(video)
        self.index = index if index is not None else video_index(self.video)
        #: frames decoded so far (to show that a seek decodes a GOP, not the file)
        self.decoded = 0
        self._position = {pts: i for i, pts in enumerate(self.index.pts)}
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._last = -1  # index of the last frame the decoder produced
        self._recent: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # one thread decodes at a time; closing waits for it

    def __len__(self) -> int:
        return len(self.index)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (presentation order) as H×W×3 uint8 RGB, an array of the caller's own.

        Safe to call from several threads: they decode one after the other.

        Raises:
            DataError: naming the video and the frame when it lies past the end or does not decode.
        """
        self.index.check_index(self.video, index)
        with self._lock:
            return self._frame(index)

    def _frame(self, index: int) -> np.ndarray:
        """`frame`, under the lock."""
        if index in self._recent:
            self._recent.move_to_end(index)
            return np.array(self._recent[index])
        key = self.index.keyframe_before(index) if self.index.seekable else -1
        start = self.index.keyframes[key] if key >= 0 else 0
        onward, from_key = index - self._last, index - start + 1 + _RESTART_COST
        if self._frames is None or not 0 < onward <= from_key:  # going on would cost more than a seek
            self._seek(key)
        image = self._decode_to(index)
        for earlier in range(key - 1, -2, -1):  # the demuxer landed after the frame: seek further back
            if image is not None:
                break
            self._seek(earlier)
            image = self._decode_to(index)
        if image is None:
            raise DataError(self.video, f"frame {index} cannot be decoded (the file may be damaged)")
        self._recent[index] = image.copy()  # kept apart from what the caller may write into
        if len(self._recent) > _RECENT_FRAMES:
            self._recent.popitem(last=False)
        return image

    def _seek(self, key: int) -> None:
        """Restart decoding at keyframe ``key`` of the index (-1: reopen the file at its start)."""
        if key < 0:
            self._close_file()
        if self._container is None:
            self._container = _open(self.video)
            self._container.streams.video[0].thread_type = "AUTO"
        stream = self._container.streams.video[0]
        if key >= 0:
            self._container.seek(self.index.seek_to[key], stream=stream, backward=True, any_frame=False)
        self._frames = iter(self._container.decode(stream))
        self._last = -1

    def _decode_to(self, index: int) -> np.ndarray | None:
        """Decode forward to frame ``index``; None when the decoder starts or passes beyond it."""
        import av

        assert self._frames is not None
        started = self._last >= 0
        try:
            for frame in self._frames:
                self.decoded += 1
                if self.index.seekable:
                    position = self._position.get(frame.pts if frame.pts is not None else frame.dts)
                else:
                    position = self._last + 1
                if position is None:
                    continue
                if not started and position > index:
                    return None
                started = True
                self._last = position
                if position == index:
                    return np.asarray(frame.to_ndarray(format="rgb24"))
                if position > index:
                    return None
        except av.error.FFmpegError as err:
            self._last = -1
            raise DataError(self.video, f"frame {index} cannot be decoded ({err})") from err
        return None

    def close(self) -> None:
        """Close the file once no thread decodes from it (a later `frame` call opens it again)."""
        with self._lock:
            self._close_file()

    def _close_file(self) -> None:
        """Close the container, under the lock."""
        if self._container is not None:
            self._container.close()
        self._container, self._frames, self._last = None, None, -1


_decoders: OrderedDict[tuple[str, int], VideoDecoder] = OrderedDict()
_decoders_lock = threading.Lock()


def decoder(video: str | Path) -> VideoDecoder:
    """This process's open decoder of ``video`` (the last few stay open, so reading on continues).

    Keyed by the process id too: a data-loader worker forked with an open file opens its own.
    """
    video = Path(video)
    key = (file_identity(video) if video.is_file() else str(video), os.getpid())
    evicted = None
    with _decoders_lock:
        found = _decoders.get(key)
        if found is None:
            found = _decoders[key] = VideoDecoder(video)
            if len(_decoders) > _OPEN_DECODERS:
                evicted = _decoders.popitem(last=False)[1]
        _decoders.move_to_end(key)
    if evicted is not None:
        evicted.close()  # waits for a thread still decoding with it, without holding up the others
    return found


def read_video_frame(video: str | Path, index: int) -> np.ndarray:
    """Frame ``index`` of ``video`` as H×W×3 uint8 RGB, decoding as little as it can.

    Raises:
        DataError: naming the video and the frame (past the end, truncated, undecodable).
    """
    return decoder(video).frame(index)


def video_frames(video: str | Path) -> list[Path]:
    """The frame paths of every frame of ``video``, in presentation order (see `video_frame_path`)."""
    return [video_frame_path(video, i) for i in range(len(video_index(video)))]
