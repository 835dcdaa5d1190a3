"""A box on a later frame with and without the object's mask on an earlier frame, side by side.

In a session a person who boxes an object has often annotated it on another frame; the box's first
guess then starts from the pixels of its colours there (`appearance.object_like`), and its clicks
learn those colours too. Each DAVIS clip's frames ``--frames`` get the interactive benchmark's box
(the truth's box + 5 px) and the field's corrective clicks (`run_clicks`, up to ``--max-clicks``),
given the previous frame's motion, once with the truth of the frame ``--gap`` frames before (frame 0
when fewer frames precede it) as the object's example and once without; both in the same process,
each first on every other box, so the seconds compare on one core.
Printed per side: NoC@85 / NoC@90, mean and median IoU after 0, 1, 3 and 5 clicks, and the box's
first answer's seconds; ``--json`` holds every box's IoU after each click.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_box_examples.py --davis ../shared/data/davis_dev \\
        ../shared/data/davis_hard --gap 10 --json /tmp/box_examples.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from bench_interactive import (  # benchmarks/ is the script's own folder
    BOX_PAD,
    noc_means,
    read_truth,
    run_clicks,
)
from provenance import provenance, provenance_line

from frugalseg.active.objects.simulation.annotation_types import padded_box
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.data.io import read_frame

SIDES = ("without", "with")


def main() -> None:
    """Box each clip's frames with and without the earlier frame's mask; print and save the scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, nargs="+", required=True, help="DAVIS-layout roots")
    parser.add_argument("--frames", default="10,15,20,25,30,35", help="the frames boxed (each ≥ 1)")
    parser.add_argument("--gap", type=int, default=10, help="frames from the example back (or frame 0)")
    parser.add_argument("--max-clicks", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write every box's IoU after each click here")
    args = parser.parse_args()
    indices = [int(frame) for frame in args.frames.split(",")]
    if args.gap < 1 or min(indices) < 1:
        parser.error("--gap and each frame of --frames must be at least 1 (the example comes first)")
    began = time.perf_counter()
    scores: dict[str, dict[str, list[float]]] = {side: {} for side in SIDES}
    seconds: dict[str, list[float]] = {side: [] for side in SIDES}
    for root in args.davis:
        for folder in sorted((root / "Annotations" / "480p").iterdir()):
            paths = sorted((root / "JPEGImages" / "480p" / folder.name).glob("*.jpg"))
            for index in indices:
                if index >= len(paths):
                    continue
                image = read_frame(paths[index])
                truth, ignored = read_truth(folder / f"{paths[index].stem}.png")
                earlier = max(0, index - args.gap)
                example = (read_frame(paths[earlier]), read_truth(folder / f"{paths[earlier].stem}.png")[0])
                neighbour = read_frame(paths[index - 1])
                boxed = sum(map(len, scores.values()))
                for side in SIDES if boxed % 4 == 0 else SIDES[::-1]:  # each side first on every other box
                    known = ObjectPrior(examples=[example] if side == "with" else [], neighbour=neighbour)
                    found, spent = run_clicks(
                        StarCutClicks(),
                        image,
                        truth,
                        ignored,
                        start=padded_box(truth, BOX_PAD),
                        max_clicks=args.max_clicks,
                        known=known,
                    )
                    scores[side][f"{folder.name}/{paths[index].stem}"] = found
                    seconds[side].append(spent[0])
    shown = [count for count in (0, 1, 3, 5) if count <= args.max_clicks]
    for side in SIDES:
        table = np.array(list(scores[side].values()))
        nocs = noc_means(list(scores[side].values()), args.max_clicks)
        print(
            f"{side} the earlier mask: {len(table)} boxes; NoC@85 {nocs['noc85']:.2f}, NoC@90 "
            f"{nocs['noc90']:.2f}; IoU after {', '.join(map(str, shown))} clicks mean "
            + " / ".join(f"{table[:, k].mean():.3f}" for k in shown)
            + ", median "
            + " / ".join(f"{np.median(table[:, k]):.3f}" for k in shown)
            + f"; the box's first answer {np.mean(seconds[side]):.3f} s (90th percentile "
            f"{np.quantile(seconds[side], 0.9):.3f})",
            flush=True,
        )
    elapsed = time.perf_counter() - began
    print(f"{elapsed:.0f} s; {provenance_line()}")
    if args.json:
        record = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "seconds": elapsed,
            "provenance": provenance(),
        }
        args.json.write_text(json.dumps({**record, "iou": scores}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
