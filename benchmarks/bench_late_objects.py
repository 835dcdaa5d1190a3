"""How soon the page sees frames when an object was declared late: passes one after another or at once.

On each DAVIS clip of the roots given (its first ``--frames`` frames, full size), object 1 is the
truth of the first and last frames, annotated before object 2 existed; object 2 (the truth's box,
grown by 20 px, less the object) is declared on the middle frame, which knows both. The flow engine
propagates with `propagate_with_late_objects`: the late pass and the others' pass one after another
(the engine's ``concurrent_passes`` off, as before) or at once. Printed per clip and way: seconds to
the first propagated frame reported (the annotated ones come at once: what the page waits before it
shows a new mask), to half of them and to the last, the median of ``--repeats`` runs, the two ways
alternating, each with a fresh cache; the masks of both ways are checked equal.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_late_objects.py --davis ../shared/data/davis_dev
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.session.late_objects import propagate_with_late_objects
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import read_frame


def video(data: DavisFormat, clip: str, n: int) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
    """A clip's first ``n`` frames and its annotated masks: object 1 on both ends, object 2 late, mid-clip."""
    frames = [read_frame(path) for path in data.frame_paths(clip)[:n]]
    n = len(frames)
    truths = {t: DavisFormat.read_mask(data.mask_paths(clip)[t]) != 0 for t in (0, n // 2, n - 1)}
    ys, xs = np.nonzero(truths[n // 2])
    height, width = truths[0].shape
    box = np.zeros((height, width), bool)
    box[max(ys.min() - 20, 0) : ys.max() + 21, max(xs.min() - 20, 0) : xs.max() + 21] = True
    annotated = {t: truth.astype(np.uint8) for t, truth in truths.items()}
    annotated[n // 2][box & ~truths[n // 2]] = 2
    return frames, annotated


def timed(
    frames: list[np.ndarray], annotated: dict[int, np.ndarray], at_once: bool
) -> tuple[tuple[float, float, float], list[np.ndarray]]:
    """Seconds to the first, half and last propagated frame reported, and the masks, passes at once or not."""
    engine = get_loop_engine("flow")
    engine.concurrent_passes = at_once
    n = len(frames)
    late = {0: frozenset({2}), n - 1: frozenset({2})}
    reported: list[float] = []

    def on_frame(t: int, *_: object) -> None:
        if t not in annotated:
            reported.append(time.perf_counter() - start)

    start = time.perf_counter()
    result = propagate_with_late_objects(
        engine, frames, annotated, late=late, first_frames={1: 0, 2: n // 2}, cache=engine.new_cache(),
        on_frame=on_frame,
    )  # fmt: skip
    reported.sort()
    return (reported[0], reported[len(reported) // 2], reported[-1]), result.masks


def main() -> None:
    """Run the comparison on every clip and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, nargs="+", required=True, help="DAVIS-layout roots")
    parser.add_argument("--frames", type=int, default=30, help="the first frames of each clip")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way, alternating")
    args = parser.parse_args()
    columns = [
        f"{when}, {way}" for when in ("first", "half", "all") for way in ("one after another", "at once")
    ]
    print("| clip | frames | " + " | ".join(f"{c} (s)" for c in columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for root in args.davis:
        data = DavisFormat(root)
        for clip in sorted(path.name for path in data.mask_dir.iterdir() if path.is_dir()):
            frames, annotated = video(data, clip, args.frames)
            runs: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
            masks: dict[bool, list[np.ndarray]] = {}
            for _ in range(args.repeats):
                for at_once in (False, True):
                    seconds, masks[at_once] = timed(frames, annotated, at_once)
                    runs[at_once].append(seconds)
            same = all(np.array_equal(a, b) for a, b in zip(masks[False], masks[True], strict=True))
            assert same, f"{clip}: the two ways gave different masks"
            cells = [statistics.median(r[i] for r in runs[way]) for i in (0, 1, 2) for way in (False, True)]
            print(f"| {clip} | {len(frames)} | " + " | ".join(f"{c:.2f}" for c in cells) + " |", flush=True)
    print(f"\n{provenance_line()}")


if __name__ == "__main__":
    main()
