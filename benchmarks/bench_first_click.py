"""A first click from an empty mask cut in crops around it (`zoom.first_click`) against the whole frame alone.

On each image the field's first click (`corrective_click` on an empty mask) is answered by the default click
model three times in turn in one process: with `zoom.FIRST_CLICK_CROPS` as built, their cuts
`zoom.FIRST_CLICK_THREADS` at once as built and one at a time, and with no crop (the whole frame's cut
alone), so the seconds compare on the same cores; each answer is timed on a fresh model, the frame's
features computed within it (as `bench_interactive` times a first click). Printed: the answers that differ
between the crops' two ways (none should), and per way the IoU after the click (median, mean, and images the
crops change by more than 0.1 either way) and seconds per answer (mean, 90th percentile, share over the
tools' 0.3 s).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_first_click.py --images /tmp/cityscapes_objects/images \\
        --masks /tmp/cityscapes_objects/masks
    PYTHONPATH=. .venv/bin/python benchmarks/bench_first_click.py --davis ../shared/data/davis_dev \\
        --davis ../shared/data/davis_hard
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_interactive import ANSWER_BUDGET, Sample, davis_frames, iou, paired  # the script's own folder
from provenance import provenance_line

from frugalseg.active.objects.simulation.simulated_annotator import corrective_click
from frugalseg.active.objects.tools import max_flow, zoom
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.flow.ahead import usable_cores

#: The DAVIS frames used with ``--davis``: each clip's frames 0, 10, 20 and 30, with the neighbouring frame.
DAVIS_FRAMES = [0, 10, 20, 30]


def answer(sample: Sample, crops: tuple[float, ...], threads: int) -> tuple[np.ndarray, float, float]:
    """(mask, IoU, seconds) of the default model's answer to the first click (``crops``, ``threads``)."""
    _, image, truth, ignored, known = sample
    click = corrective_click(np.zeros_like(truth), truth, ignore=ignored)
    assert click is not None and click.positive
    built = zoom.FIRST_CLICK_CROPS, zoom.FIRST_CLICK_THREADS
    zoom.FIRST_CLICK_CROPS, zoom.FIRST_CLICK_THREADS = crops, threads
    try:
        began = time.perf_counter()
        found = StarCutClicks().correct(image, np.zeros_like(truth), [click], known=known)
        return found, iou(found, truth, ignored), time.perf_counter() - began
    finally:
        zoom.FIRST_CLICK_CROPS, zoom.FIRST_CLICK_THREADS = built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, help="folder of images")
    parser.add_argument("--masks", type=Path, help="folder of 0/255 masks named as the images")
    parser.add_argument("--davis", type=Path, action="append", help="DAVIS-layout roots")
    parser.add_argument("--every", type=int, default=1, help="use every n-th image")
    args = parser.parse_args()
    max_flow.prepare()  # numba's compiler before the first answer is timed
    if args.davis:
        samples = list(davis_frames(args.davis, DAVIS_FRAMES, still=False))
    elif args.images and args.masks:
        samples = list(paired(args.images, args.masks))
    else:
        parser.error("give --images and --masks, or --davis")
    threads = max(1, min(zoom.FIRST_CLICK_THREADS, usable_cores()))  # as `first_click` runs them
    ways = {
        f"crops, {threads} cuts at once": (zoom.FIRST_CLICK_CROPS, threads),
        "crops, one cut at a time": (zoom.FIRST_CLICK_CROPS, 1),
        "whole frame alone": ((), 1),
    }
    crops_ways = list(ways)[:2]
    scores: dict[str, list[float]] = {way: [] for way in ways}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    differ = 0
    for sample in samples[:: args.every]:
        masks = []
        for way, (crops, at_once) in ways.items():
            found, score, spent = answer(sample, crops, at_once)
            masks.append(found)
            scores[way].append(score)
            seconds[way].append(spent)
        differ += not np.array_equal(masks[0], masks[1])
    change = np.array(scores[crops_ways[0]]) - np.array(scores["whole frame alone"])
    print(
        f"{len(change)} images; IoU better by > 0.1 with the crops: {int((change > 0.1).sum())}, worse: "
        f"{int((change < -0.1).sum())}; answers that differ between the crops' two ways: {differ}"
    )
    for way in ways:
        spent = np.array(seconds[way])
        print(
            f"{way}: IoU after the first click median {np.median(scores[way]):.3f}, "
            f"mean {np.mean(scores[way]):.3f}; "
            f"{spent.mean():.3f} s per answer (90th percentile {np.percentile(spent, 90):.3f}; "
            f"{100 * np.mean(spent > ANSWER_BUDGET):.1f}% over {ANSWER_BUDGET} s)"
        )
    print(provenance_line())


if __name__ == "__main__":
    main()
