"""How much choosing *which clip* to annotate next could add to choosing the frame (issue 38, a ceiling).

    python benchmarks/bench_loop_allocation.py RUN [RUN …]

The ``frames`` runs' dataset curve is lockstep: every round gives each clip one more mask
(`dataset_curve`), even a clip already at J&F 0.96. A session proposes across videos instead (the
next annotation of the video expected to gain most per second). Nothing is simulated again: each
clip's saved loop is a sequence of masks with known seconds and J&F after each, and an *oracle
allocation* replays them in another order across clips: after every clip's initial masks (frame 0
and the frames where objects first appear, which every curve starts with), the next mask taken is
that of the clip whose next recorded mask raises the dataset J&F (objects-weighted mean over the
clips) most per second. It uses the J&F gains after the fact (ground truth), and a clip can receive
at most the masks its loop recorded within the run's budget. Printed per strategy: hours to
dataset J&F 0.85 in lockstep and with the oracle allocation, and their speed-up over random frames
in lockstep (the first run's ``random-mask``, the mean curve of its seeds; with the oracle
allocation, random's seeds are each replayed, then averaged).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.active.objects.loop import TARGET_JF, Curve, dataset_curve, mean_curve
from frugalseg.active.objects.state import IterationRecord, load_history

RANDOM = "random-mask"

Loop = tuple[list[IterationRecord], int, int]  # records, objects, initial masks


def loops(runs: list[Path]) -> dict[str, dict[str, list[Loop]]]:
    """strategy → seed → each clip's (records, objects, initial masks), clips in name order."""
    found: dict[str, dict[str, list[Loop]]] = {}
    seen: set[tuple[str, str, str]] = set()
    for run in runs:
        for state in sorted((run / "runs").glob("*/seed*/*/state.json")):
            clip, seed, strategy = (folder.name for folder in state.parents[:3])
            if (strategy, seed, clip) in seen:
                raise SystemExit(f"{strategy} {seed} {clip}: in several runs; give each strategy once")
            seen.add((strategy, seed, clip))
            records, objects = load_history(state.parent)
            first = json.loads(state.read_text())["objects"]
            initial = len({0, *first.values()})
            found.setdefault(strategy, {}).setdefault(seed, []).append((records, objects, initial))
    return found


def oracle_allocation(clips: list[Loop]) -> Curve:
    """The dataset curve when the next mask goes to the clip of the largest J&F gain per second."""
    weights = [max(objects, 0) for _, objects, _ in clips]
    if not any(weights):
        weights = [1] * len(clips)
    at = [min(initial, len(records)) - 1 for records, _, initial in clips]

    def point() -> tuple[float, float]:
        last = [records[i] for (records, _, _), i in zip(clips, at, strict=True)]
        hours = sum(r.total_seconds for r in last) / 3600
        jf = sum(w * r.jf for w, r in zip(weights, last, strict=True)) / sum(weights)
        return round(hours, 6), round(jf, 6)

    curve = Curve([], [])
    while True:
        hours, jf = point()
        curve.hours.append(hours)
        curve.jf.append(jf)
        options = [
            (w * (records[i + 1].jf - records[i].jf) / records[i + 1].seconds, -c)
            for c, ((records, _, _), i, w) in enumerate(zip(clips, at, weights, strict=True))
            if i + 1 < len(records) and records[i + 1].seconds > 0
        ]
        if not options:
            return curve
        _, negative_clip = max(options)  # ties: the earlier clip
        at[-negative_clip] += 1


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="folders of simulate runs on the same clips")
    args = parser.parse_args(argv)
    found = loops(args.runs)
    if RANDOM not in found:
        raise SystemExit(f"{args.runs[0]}: no {RANDOM} loops to compare with")

    def hours(strategy: str, allocate: bool) -> float | None:
        seeds = found[strategy].values()
        if allocate:
            curve = mean_curve([oracle_allocation(clips) for clips in seeds])
        else:
            curve = mean_curve([dataset_curve([r for r, _, _ in c], [o for _, o, _ in c]) for c in seeds])
        return curve.hours_to_reach(TARGET_JF)

    base = hours(RANDOM, False)
    print(
        f"| strategy | hours to {TARGET_JF}, lockstep | speed-up | hours to {TARGET_JF}, oracle allocation "
        "| speed-up |\n|---|---|---|---|---|"
    )
    for strategy in sorted(found):
        cells = []
        for allocate in (False, True):
            h = hours(strategy, allocate)
            cells += ["not reached", "–"] if h is None else [f"{h:.2f}", f"{base / h:.2f}×" if base else "–"]
        print(f"| {strategy} | {' | '.join(cells)} |")
    print(f"\n`python benchmarks/bench_loop_allocation.py {' '.join(argv)}`")


if __name__ == "__main__":
    main(sys.argv[1:])
    print(provenance_line(), flush=True)
