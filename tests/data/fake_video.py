"""Tiny video files whose frames say which frame they are, written with PyAV.

``numbered_frame(i)`` draws frame ``i``: its index in binary as ``BITS`` black or white blocks along
the top, so a decoded frame tells its own index (`read_number`) through lossy compression.
``write_video(path, frames)`` encodes RGB frames into ``path`` (the container from its suffix) with
``libx264`` B-frames and a short GOP by default, at the presentation timestamps ``pts`` (milliseconds;
irregular ones make a variable-frame-rate file). ``claim_avi_frames`` rewrites an AVI's header to
claim another frame count, as a broken muxer does; ``cut_video`` keeps the first part of an MP4 whose
index comes first (``faststart``), as an interrupted copy does.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import numpy as np

BITS = 8
BLOCK = 16
SIZE = (64, BITS * BLOCK)  # height, width


def numbered_frame(index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Frame ``index``: its binary digits as blocks along the top, a gradient below (RGB uint8)."""
    height, width = size
    frame = np.zeros((height, width, 3), np.uint8)
    frame[BLOCK:] = np.linspace(40, 200, width, dtype=np.uint8)[None, :, None]
    for bit in range(BITS):
        if index >> bit & 1:
            frame[:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 255
    return frame


def read_number(frame: np.ndarray) -> int:
    """The index `numbered_frame` drew into ``frame``."""
    blocks = frame[:BLOCK, : BITS * BLOCK].reshape(BLOCK, BITS, BLOCK, 3).mean(axis=(0, 2, 3))
    return int(sum(1 << bit for bit in range(BITS) if blocks[bit] > 128))


def write_video(
    path: Path,
    frames: list[np.ndarray],
    *,
    codec: str = "libx264",
    pts: list[int] | None = None,
    bframes: int = 3,
    gop: int = 12,
) -> Path:
    """Encode ``frames`` into ``path`` at presentation times ``pts`` (ms; default 40 ms apart)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    times = pts if pts is not None else [40 * i for i in range(len(frames))]
    with av.open(str(path), "w") as container:
        options = {"crf": "18", "x264-params": f"bframes={bframes}:keyint={gop}:min-keyint={gop}:scenecut=0"}
        stream = container.add_stream(codec, rate=25, options=options if codec == "libx264" else {})
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if codec != "libx264":
            stream.codec_context.gop_size = gop
            stream.codec_context.max_b_frames = bframes
        for image, time in zip(frames, times, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = time, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def claim_avi_frames(path: Path, count: int) -> None:
    """Rewrite the frame counts in an AVI's headers (``avih`` total frames, ``strh`` length) to ``count``."""
    data = bytearray(path.read_bytes())
    main = data.index(b"avih") + 8 + 16  # dwTotalFrames: the fifth field of the main header
    stream = data.index(b"strh") + 8 + 32  # dwLength: the ninth field of the stream header
    for offset in (main, stream):
        data[offset : offset + 4] = struct.pack("<I", count)
    path.write_bytes(bytes(data))


def cut_video(video: Path, out: Path, keep: float = 2 / 3) -> Path:
    """``video`` remuxed with its index first, then cut after ``keep`` of its bytes, into ``out``."""
    import av

    whole = out.with_name(f"whole-{out.name}")
    with av.open(str(video)) as source, av.open(str(whole), "w", options={"movflags": "faststart"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    data = whole.read_bytes()
    whole.unlink()
    out.write_bytes(data[: int(len(data) * keep)])
    return out
