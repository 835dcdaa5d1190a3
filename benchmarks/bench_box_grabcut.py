"""A box's first answer: GrabCut's iterations, working pixels and tightness prior against its seconds and IoU.

The ``starcut`` and ``grabcut`` click models start a box from `grabcut.grabcut_box`, GrabCut run
`BOX_ITERATIONS` times on the box's window shrunk to at most `BOX_PIXELS` pixels, then again where its answer
leaves the box's rows or columns empty (at most `TIGHT_ROUNDS` times); it is most of a box's first answer.
Each setting of ``--settings`` (pixels:iterations:tightness rounds) runs on the same boxes (each object's
box + 5 px, as the interactive benchmark draws it) in one process, one after the other, so the seconds
compare on the same core; printed: the mean and median IoU of the box's mask and its seconds (mean, 90th
percentile, largest).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_box_grabcut.py --davis ../shared/data/davis_dev \\
        ../shared/data/davis_hard --frame-indices 0,10,20,30
    PYTHONPATH=. .venv/bin/python benchmarks/bench_box_grabcut.py \\
        --images ../shared/data/interactive_dev/images --masks ../shared/data/interactive_dev/masks
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_interactive import BOX_PAD, davis_frames, iou, paired  # benchmarks/ is the script's own folder
from provenance import provenance_line

from frugalseg.active.objects.simulation.annotation_types import padded_box
from frugalseg.active.objects.tools import grabcut


def main() -> None:
    """Time and score `grabcut_box` at each setting on the boxes the arguments name."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, nargs="+", help="DAVIS-layout roots")
    parser.add_argument("--frame-indices", default="0", help="with --davis: these frames of each clip")
    parser.add_argument("--images", type=Path, help="folder of images")
    parser.add_argument("--masks", type=Path, help="folder of 0/255 masks named as the images")
    parser.add_argument(
        "--settings", default="40000:3:0,40000:3:2,80000:3:2", help="pixels:iterations:tightness rounds, …"
    )
    args = parser.parse_args()
    if args.davis:
        indices = [int(index) for index in args.frame_indices.split(",")]
        samples = list(davis_frames(args.davis, indices, still=True))
    elif args.images and args.masks:
        samples = list(paired(args.images, args.masks))
    else:
        parser.error("give --davis, or --images and --masks")
    for setting in args.settings.split(","):
        pixels, iterations, rounds = (int(part) for part in setting.split(":"))
        grabcut.BOX_PIXELS, grabcut.BOX_ITERATIONS, grabcut.TIGHT_ROUNDS = pixels, iterations, rounds
        scores, seconds = [], []
        for _, image, truth, ignored, _ in samples:
            began = time.perf_counter()
            found = grabcut.grabcut_box(image, padded_box(truth, BOX_PAD))
            seconds.append(time.perf_counter() - began)
            scores.append(iou(found, truth, ignored))
        print(
            f"{pixels} px, {iterations} iterations, {rounds} tightness rounds: {len(samples)} boxes; "
            f"IoU mean {np.mean(scores):.3f}, median {np.median(scores):.3f}; "
            f"{np.mean(seconds):.3f} s (90th percentile "
            f"{np.quantile(seconds, 0.9):.3f}, largest {np.max(seconds):.3f})",
            flush=True,
        )
    print(provenance_line())


if __name__ == "__main__":
    main()
