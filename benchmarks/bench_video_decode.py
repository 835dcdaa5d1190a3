"""Video decoding speed: frugalseg's PyAV reader against `cv2.VideoCapture` on one 1080p H.264 file.

Makes (once, into ``$FRUGALSEG_CACHE/bench/``) a 1920×1080 H.264 file of ``--frames`` frames: the real
Cityscapes snippet of ``../shared/data/cityscapes_dev`` played back and forth with a slow pan, encoded by
libx264 with its defaults (B-frames, a keyframe every 250 frames at most) as ffmpeg would. Then, side by
side in one run, the readers alternating round by round:

- every frame in order: `VideoDecoder.frame(i)` for i = 0, 1, … against ``VideoCapture.read()``;
- every 10th frame: `VideoDecoder.frame(i)` for i = 0, 10, … against ``grab()`` ×9 + ``read()`` and
  against ``set(CAP_PROP_POS_FRAMES, i)`` + ``read()`` (the seek users write);
- one frame near the end from a freshly opened file, with the frames each decoded to get there.

Both give RGB arrays (OpenCV's BGR converted, as `read_frame` returns RGB). The script first checks that
frame i is the same picture from both (PSNR) and that OpenCV's seek lands on the frame its sequential
read gives.

    .venv/bin/python benchmarks/bench_video_decode.py [--frames 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from frugalseg.data.formats import CityscapesFormat
from frugalseg.data.io import cache_dir, read_frame
from frugalseg.data.videos import VideoDecoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cityscapes_dev"
WIDTH, HEIGHT = 1920, 1080


def make_video(path: Path, count: int) -> Path:
    """The benchmark's 1080p file: the real snippet back and forth, panning 2 px a frame."""
    if path.is_file():
        return path
    (clip,) = CityscapesFormat(DATA).clips("train")
    sources = [
        cv2.resize(read_frame(p), (2 * HEIGHT + 400, HEIGHT + 200))
        for p in map(clip.frame_path, clip.present_offsets)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "20"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for t in range(count):
            cycle = t % (2 * len(sources) - 2)
            image = sources[cycle if cycle < len(sources) else 2 * len(sources) - 2 - cycle]
            x, y = (2 * t) % (image.shape[1] - WIDTH), t % (image.shape[0] - HEIGHT)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[y : y + HEIGHT, x : x + WIDTH]))
            frame.pts, frame.time_base = t, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    partial.rename(path)
    return path


def cv2_frames(path: Path, indices: list[int], how: str) -> list[np.ndarray]:
    """Frames ``indices`` (increasing) read with OpenCV: ``read`` every frame, ``grab`` skips, or ``seek``."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    out, position = [], 0
    for index in indices:
        if how == "seek":
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        else:
            while position < index:
                capture.grab()
                position += 1
        ok, image = capture.read()
        position = index + 1
        assert ok, f"OpenCV could not read frame {index}"
        out.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    capture.release()
    return out


def frugalseg_frames(path: Path, indices: list[int]) -> list[np.ndarray]:
    """Frames ``indices`` read with a fresh `VideoDecoder`."""
    decoder = VideoDecoder(path)
    frames = [decoder.frame(i) for i in indices]
    decoder.close()
    return frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (inf when equal)."""
    error = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def check(path: Path, count: int) -> None:
    """Frame i is the same picture from both readers; OpenCV's seek lands where its reading does."""
    probe = [0, count // 3, count - 7]
    ours = frugalseg_frames(path, probe)
    sequential = cv2_frames(path, probe, "grab")
    seeked = cv2_frames(path, probe, "seek")
    for index, a, b, c in zip(probe, ours, sequential, seeked, strict=True):
        print(
            f"frame {index}: frugalseg vs OpenCV sequential PSNR {psnr(a, b):.1f} dB; "
            f"OpenCV seek vs OpenCV sequential PSNR {psnr(c, b):.1f} dB"
        )


def timed(jobs: dict[str, Callable[[], int]], rounds: int) -> dict[str, list[float]]:
    """Frames per second of each job (it returns its frame count), jobs alternating round by round."""
    rates: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(rounds):
        for name, job in jobs.items():
            start = time.perf_counter()
            frames = job()
            rates[name].append(frames / (time.perf_counter() - start))
    return rates


def seek_one(path: Path, index: int) -> None:
    """Time and decoded frames of reading one frame near the end from a freshly opened file."""
    start = time.perf_counter()
    decoder = VideoDecoder(path)
    decoder.frame(index)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    cv2_frames(path, [index], "seek")
    theirs = time.perf_counter() - start
    keyframe = decoder.index.keyframes[decoder.index.keyframe_before(index)]
    print(
        f"one frame ({index} of {len(decoder)}), fresh file: frugalseg {ours * 1000:.0f} ms, "
        f"{decoder.decoded} frames decoded (keyframe before it: {keyframe}; "
        f"keyframes {list(decoder.index.keyframes)}); "
        f"OpenCV set(POS_FRAMES) {theirs * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = make_video(cache_dir() / "bench" / f"cityscapes_pan_1080p_{args.frames}.mp4", args.frames)
    every, tenth = list(range(args.frames)), list(range(0, args.frames, 10))
    print(
        f"{path.name}: {WIDTH}×{HEIGHT} H.264, {args.frames} frames, {os.cpu_count()} CPUs, "
        f"PyAV {av.__version__}"
    )
    print(f"(FFmpeg {av.ffmpeg_version_info}), OpenCV {cv2.__version__}; {args.rounds} rounds, median")
    check(path, args.frames)
    jobs = {
        "every frame: frugalseg": lambda: len(frugalseg_frames(path, every)),
        "every frame: OpenCV read()": lambda: len(cv2_frames(path, every, "grab")),
        "every 10th: frugalseg": lambda: len(frugalseg_frames(path, tenth)),
        "every 10th: OpenCV grab() + read()": lambda: len(cv2_frames(path, tenth, "grab")),
        "every 10th: OpenCV set(POS_FRAMES) + read()": lambda: len(cv2_frames(path, tenth, "seek")),
    }
    rates = timed(jobs, args.rounds)
    print(f"{'reader':46s} {'frames/s':>9s} {'min':>7s} {'max':>7s}")
    for name, values in rates.items():
        print(f"{name:46s} {statistics.median(values):9.1f} {min(values):7.1f} {max(values):7.1f}")
    for what in ("every frame", "every 10th"):
        ours = statistics.median(rates[f"{what}: frugalseg"])
        best = max(statistics.median(v) for k, v in rates.items() if k.startswith(what) and "OpenCV" in k)
        print(f"{what}: frugalseg / best OpenCV way {ours / best:.2f}x")
    seek_one(path, args.frames - 7)


if __name__ == "__main__":
    main()
