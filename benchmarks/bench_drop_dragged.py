"""The flow engine's labels with and without the dragged background dropped (`frugalseg.flow.dragged`).

Each DAVIS clip's ``--frames`` frames from ``--start`` on are propagated from frame ``--start``'s truth by
the annotation loop's engine (`get_loop_engine("flow", downscale=2)`, as `bench_interactive` corrects them;
``--downscale 1``: the label commands' default engine) with ``drop_dragged`` off and on, in turn in one
process; printed: each clip's mean J over the propagated frames (255 counts as not-object; every object of
a multi-object mask), the mean over the clips, and the seconds each way took. The constants were chosen on
frames 0-39 of the 8 development clips; ``--start 40`` runs the clips' next 40 frames, which they never saw
(clips with fewer than 10 frames there are left out).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_drop_dragged.py --davis ../shared/data/davis_dev \\
        --davis ../shared/data/davis_hard --start 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_interactive import davis_clips, iou, objects_of  # the script's own folder
from provenance import provenance_line

from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import read_frame

#: Clips with fewer frames than this from ``--start`` on are left out (a mean over a few frames).
FEWEST = 10
VARIANTS = {"kept": False, "dropped": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--davis", type=Path, action="append", required=True, help="DAVIS-layout roots")
    parser.add_argument("--start", type=int, default=0, help="the annotated frame")
    parser.add_argument("--frames", type=int, default=40, help="frames from --start on, it included")
    parser.add_argument("--downscale", type=int, default=2, help="the flows' downscale")
    args = parser.parse_args()
    means: dict[str, list[float]] = {name: [] for name in VARIANTS}
    seconds = dict.fromkeys(VARIANTS, 0.0)
    for root in args.davis:
        data, clips = davis_clips(root)
        for clip in clips:
            window = slice(args.start, args.start + args.frames)
            paths, masks = data.frame_paths(clip)[window], data.mask_paths(clip)[window]
            if len(paths) < min(FEWEST, args.frames) or any(mask is None for mask in masks):
                continue
            frames = [read_frame(path) for path in paths]
            truths = [DavisFormat.read_mask(mask) for mask in masks if mask is not None]
            first = np.where(truths[0] == IGNORE_INDEX, 0, truths[0])
            line = []
            for name, drop in VARIANTS.items():
                engine = get_loop_engine("flow", downscale=args.downscale, drop_dragged=drop)
                began = time.perf_counter()
                found = engine.propagate(frames, {0: first}).masks
                seconds[name] += time.perf_counter() - began
                scores = [
                    iou(found[t] == obj, truths[t] == obj, truths[t] == IGNORE_INDEX)
                    for t in range(1, len(frames))
                    for obj in objects_of(truths[0])
                ]
                means[name].append(float(np.mean(scores)))
                line.append(f"{name} {means[name][-1]:.3f}")
            last = args.start + len(frames) - 1
            print(f"{clip} (frames {args.start}-{last}): {', '.join(line)}", flush=True)
    for name in VARIANTS:
        clips_run = len(means[name])
        print(f"{name}: mean J {np.mean(means[name]):.4f} over {clips_run} clips, {seconds[name]:.1f} s")
    print(provenance_line())


if __name__ == "__main__":
    main()
