"""The frame selectors' edge over random frames, with its spread over subsets of the clips (issue 38, item 2).

    python benchmarks/bench_loop_spread.py RUN [RUN …] [--sizes 4 6 8] [--clips CLIP …]

Each ``RUN`` is the folder of a ``bench_annotation_loop.py frames`` or ``types`` run (or any ``annotate
simulate`` run) on the same clips with the same settings; their strategies are compared together (named
``RUN/strategy`` when several runs are given), each against the first run's random frames.
Nothing is simulated again: each clip's loop chooses its own frames, so the dataset curve of a subset
of the clips is the lockstep curve of their saved histories (`dataset_curve`; random frames: the
mean curve of its seeds, as `simulate` makes it). For every subset of each size, each strategy's
hours to dataset J&F 0.85 and its speed-up over random frames (random's hours / the strategy's);
printed as mean ± standard deviation, min–max over the subsets, and how many subsets reach 0.85.
A subset where a strategy never reaches 0.85 within the run's budget counts as not reached.
"""

from __future__ import annotations

import argparse
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.active.objects.simulation.loop import TARGET_JF, dataset_curve, mean_curve
from frugalseg.active.objects.state import IterationRecord, load_history

RANDOM = "random-mask"

History = tuple[list[IterationRecord], int]


def histories(runs: list[Path]) -> dict[str, dict[str, dict[str, History]]]:
    """strategy → seed → clip → (iteration records, objects) of every loop state saved under ``runs``."""
    found: dict[str, dict[str, dict[str, History]]] = {}
    for run in runs:
        for state in sorted((run / "runs").glob("*/seed*/*/state.json")):
            clip, seed, strategy = (folder.name for folder in state.parents[:3])
            name = strategy if len(runs) == 1 else f"{run.name}/{strategy}"
            found.setdefault(name, {}).setdefault(seed, {})[clip] = load_history(state.parent)
    return found


def hours_to_target(by_seed: dict[str, dict[str, History]], clips: tuple[str, ...]) -> float | None:
    """Hours to dataset J&F `TARGET_JF` on ``clips`` (the mean curve of the seeds), None if never."""
    curves = [
        dataset_curve([by_clip[c][0] for c in clips], [by_clip[c][1] for c in clips])
        for by_clip in by_seed.values()
    ]
    return mean_curve(curves).hours_to_reach(TARGET_JF)


def spread(values: list[float]) -> str:
    """``mean ± std (min–max)`` of ``values``, or a dash."""
    if not values:
        return "–"
    return f"{np.mean(values):.2f} ± {np.std(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="folders of simulate runs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 6, 8], help="clips per subset")
    parser.add_argument("--clips", nargs="+", help="only these clips (e.g. those a selector was not fit on)")
    args = parser.parse_args(argv)
    found = histories(args.runs)
    random = RANDOM if len(args.runs) == 1 else f"{args.runs[0].name}/{RANDOM}"
    if random not in found:
        raise SystemExit(f"{args.runs[0]}: no {RANDOM} loops to compare with")
    clips = sorted(set.intersection(*(set(by_clip) for s in found.values() for by_clip in s.values())))
    if args.clips:
        missing = set(args.clips) - set(clips)
        if missing:
            raise SystemExit(f"no loops of {', '.join(sorted(missing))} in every run")
        clips = sorted(args.clips)
    print(f"{len(clips)} clips ({', '.join(clips)}); strategies {', '.join(sorted(found))}\n")
    print(
        f"| clips per subset | subsets | strategy | reach {TARGET_JF} | hours to {TARGET_JF} "
        "| speed-up over random frames |\n|---|---|---|---|---|---|"
    )
    for size in args.sizes:
        subsets = list(combinations(clips, size))
        base = {subset: hours_to_target(found[random], subset) for subset in subsets}
        for strategy in sorted(found):
            hours = {subset: hours_to_target(found[strategy], subset) for subset in subsets}
            reached = [h for h in hours.values() if h is not None]
            speedups = [b / h for s, h in hours.items() if h is not None and (b := base[s]) is not None]
            print(
                f"| {size} | {len(subsets)} | {strategy} | {len(reached)}/{len(subsets)} | {spread(reached)} "
                f"| {spread(speedups) if strategy != random else '1'} |"
            )
    print(f"\n`python benchmarks/bench_loop_spread.py {' '.join(argv)}`")


if __name__ == "__main__":
    main(sys.argv[1:])
    print(provenance_line(), flush=True)
