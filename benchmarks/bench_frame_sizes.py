"""The click model's answer times and IoU as frames grow: the DAVIS first frames from 854×480 to 4K.

Each clip's first frame (and its neighbour, as a session gives it) is brought to each size (bicubic; the truth
nearest), and the field's simulated person (`bench_interactive.run_clicks`) makes ``--clicks`` clicks from
an empty mask, a box (the truth's box + 5 px) and ``--clicks`` clicks, and one correction of the truth
shifted by a 48th of the frame's width. Printed per size: seconds per answer (mean and 90th percentile) and
mean IoU after the last click, as built (frames over `large_frames.FULL_PIXELS` cut shrunk) and, with
``--whole``, also cut at their own size (`FULL_PIXELS` raised), side by side in the same run.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_frame_sizes.py --davis ../shared/data/davis_dev \\
        --davis ../shared/data/davis_hard --whole
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from bench_interactive import (  # benchmarks/ is the script's own folder
    BOX_PAD,
    Sample,
    davis_frames,
    run_clicks,
)
from provenance import provenance_line

from frugalseg.active.objects.tools import large_frames
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.active.objects.tools.graph_cut import ObjectPrior

SIZES = ((854, 480), (1920, 1080), (2560, 1440), (3840, 2160))


def resized(
    frame: np.ndarray, truth: np.ndarray, known: ObjectPrior | None, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, ObjectPrior]:
    """The frame, its truth and what is known of it (the neighbouring frame) at ``size`` (width, height)."""
    neighbour = None if known is None else known.neighbour
    neighbour = None if neighbour is None else cv2.resize(neighbour, size, interpolation=cv2.INTER_CUBIC)
    big = cv2.resize(truth.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC), big, ObjectPrior(neighbour=neighbour)


def measure(
    samples: list[Sample], size: tuple[int, int], clicks: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Per tool: every answer's seconds and each frame's IoU after its last click."""
    found: dict[str, tuple[list[float], list[float]]] = {
        tool: ([], []) for tool in ("clicks", "box", "correction")
    }
    for _, frame, truth, _, known in samples:
        image, big, seen = resized(frame, truth, known, size)
        none = np.zeros_like(big)
        rows, cols = np.nonzero(big)
        box = (cols.min() - BOX_PAD, rows.min() - BOX_PAD, cols.max() + BOX_PAD, rows.max() + BOX_PAD)
        shifted = np.roll(big, size[0] // 48, axis=1)
        for tool, start, count in (
            ("clicks", none, clicks),
            ("box", box, clicks),
            ("correction", shifted, 1),
        ):
            model = StarCutClicks()
            scores, seconds = run_clicks(model, image, big, none, start=start, max_clicks=count, known=seen)
            found[tool][0].extend(seconds)
            found[tool][1].append(scores[-1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, action="append", required=True, help="a DAVIS-layout root")
    parser.add_argument("--clicks", type=int, default=3, help="clicks from an empty mask, and after a box")
    parser.add_argument("--whole", action="store_true", help="also cut large frames at their own size")
    args = parser.parse_args()
    samples = list(davis_frames(args.davis, [0], still=False))
    ways = [("as built", large_frames.FULL_PIXELS)] + ([("whole", 1 << 40)] if args.whole else [])
    for width, height in SIZES:
        for way, limit in ways:
            if way == "whole" and width * height <= large_frames.FULL_PIXELS:
                continue
            large_frames.FULL_PIXELS = limit
            found = measure(samples, (width, height), args.clicks)
            row = ", ".join(
                f"{tool} {np.mean(seconds):.2f} s (90th percentile {np.quantile(seconds, 0.9):.2f}), "
                f"IoU {np.mean(ious):.3f}"
                for tool, (seconds, ious) in found.items()
            )
            print(f"{width}×{height} {way}: {row}", flush=True)
    print(provenance_line())


if __name__ == "__main__":
    main()
