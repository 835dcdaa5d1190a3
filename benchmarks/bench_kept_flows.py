"""A session's propagations with the flow engine keeping its flows (`FlowPropagator.keep_flows`) or not.

An annotation session propagates its video again after each annotation. On each DAVIS clip of the
roots given (its first ``--frames`` frames, full size), the person annotates the first frame, then the
last, the middle, and the quarter (the truth's masks), and the loop's ``flow`` engine propagates after
each, with the session's cache of single-anchor results; once with its flows kept (the session's
engine) and once without, in turn, each with a fresh engine and cache. Printed per clip: the seconds of
the first propagation and of the three after it, the flows computed, and the masks checked equal.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_kept_flows.py --davis ../shared/data/davis_dev \\
        ../shared/data/davis_hard
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.active.objects.engines import KEPT_FLOW_BYTES, get_loop_engine
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import read_frame


def session(
    frames: list[np.ndarray], truths: dict[int, np.ndarray], keep: bool
) -> tuple[list[float], int, list[list[np.ndarray]]]:
    """Seconds of each propagation, the flows computed, and each propagation's masks."""
    engine = get_loop_engine("flow")
    if keep:
        engine.keep_flows(KEPT_FLOW_BYTES)  # as an annotation session does
    cache, annotated = engine.new_cache(), {}
    seconds, masks, computed = [], [], 0
    for t, truth in truths.items():
        annotated[t] = truth
        start = time.perf_counter()
        result = engine.propagate(frames, dict(annotated), first_frames={1: 0}, cache=cache)
        seconds.append(time.perf_counter() - start)
        masks.append(result.masks)
    memory = getattr(engine.anchor_engine, "memory", None)
    if memory is not None:
        computed = memory.computed
    return seconds, computed, masks


def main() -> None:
    """Run both ways on every clip and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, nargs="+", required=True, help="DAVIS-layout roots")
    parser.add_argument("--frames", type=int, default=30, help="the first frames of each clip")
    args = parser.parse_args()
    print("| clip | frames | first, kept (s) | first, not kept (s) | next 3, kept (s) | next 3, not kept (s) "
          "| flows computed, kept |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    totals = {True: [0.0, 0.0], False: [0.0, 0.0]}
    for root in args.davis:
        data = DavisFormat(root)
        for clip in sorted(path.name for path in data.mask_dir.iterdir() if path.is_dir()):
            frames = [read_frame(path) for path in data.frame_paths(clip)[: args.frames]]
            n = len(frames)
            order = (0, n - 1, n // 2, n // 4)
            truths = {
                t: (DavisFormat.read_mask(data.mask_paths(clip)[t]) != 0).astype(np.uint8) for t in order
            }
            runs = {keep: session(frames, truths, keep) for keep in (True, False)}
            for a, b in zip(runs[True][2], runs[False][2], strict=True):
                assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), f"{clip}: masks differ"
            cells = []
            for keep in (True, False):
                first, later = runs[keep][0][0], sum(runs[keep][0][1:])
                totals[keep][0] += first
                totals[keep][1] += later
                cells.append((first, later))
            (kf, kl), (nf, nl) = cells
            print(
                f"| {clip} | {n} | {kf:.2f} | {nf:.2f} | {kl:.2f} | {nl:.2f} | {runs[True][1]} |", flush=True
            )
    (kf, kl), (nf, nl) = totals[True], totals[False]
    print(f"| all | | {kf:.1f} | {nf:.1f} | {kl:.1f} | {nl:.1f} | |")
    print(f"\n{provenance_line()}")


if __name__ == "__main__":
    main()
