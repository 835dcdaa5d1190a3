"""Clip loading speed: OpenCV (`read_frame`) against PIL, side by side in one run.

Loads a clip of T=3 consecutive real Cityscapes frames (2048×1024 PNG) from
``../shared/data/cityscapes_dev`` as a T×H×W×3 uint8 array. The two loaders alternate round by
round so that both see the same machine state; the median of the rounds is reported.

    .venv/bin/python benchmarks/bench_clip_loading.py [--rounds 7] [--clips-per-round 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.data.formats import CityscapesFormat
from frugalseg.data.io import read_frame

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cityscapes_dev"
T = 3


def read_frame_pil(path: Path) -> np.ndarray:
    """The PIL way: decode, convert to RGB, view as an array."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def load_clip(paths: list[Path], reader: Callable[[Path], np.ndarray]) -> np.ndarray:
    return np.stack([reader(path) for path in paths])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--clips-per-round", type=int, default=3)
    args = parser.parse_args()

    (clip,) = CityscapesFormat(DATA).clips("train")
    windows = [clip.frames[start : start + T] for start in range(0, len(clip.frames) - T + 1, T)]
    loaders = {"opencv (read_frame)": read_frame, "PIL convert('RGB')": read_frame_pil}
    np.testing.assert_array_equal(load_clip(windows[0], read_frame), load_clip(windows[0], read_frame_pil))

    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for round_index in range(args.rounds):
        for name, reader in loaders.items():
            chosen = [
                windows[(round_index * args.clips_per_round + i) % len(windows)]
                for i in range(args.clips_per_round)
            ]
            start = time.perf_counter()
            for paths in chosen:
                load_clip(paths, reader)
            rates[name].append(args.clips_per_round / (time.perf_counter() - start))

    rounds = f"{args.rounds} rounds × {args.clips_per_round} clips"
    print(f"clip = {T} frames of 2048×1024 PNG, {rounds}, median of rounds")
    print(f"{'loader':<22} {'clips/s':>8} {'frames/s':>9} {'min':>7} {'max':>7}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<22} {median:8.2f} {median * T:9.2f} {min(values):7.2f} {max(values):7.2f}")
    names = list(loaders)
    ratio = statistics.median(rates[names[0]]) / statistics.median(rates[names[1]])
    print(f"opencv / PIL speed ratio: {ratio:.2f}x")


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
