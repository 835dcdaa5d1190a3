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

``--page STRATEGY …`` also replays those strategies' loops with the allocation of a session (the
page, ``annotate propose``), which has no ground truth: each loop's annotations are propagated again
prefix by prefix to read what the session reads, and the next mask goes to the clip of the highest
weight-free score per second (``--page-rule model``: the rise of the clip's mean J&F the fitted error
model expects, what a session ranks by; ``doubt``: the chosen frame's doubted share, what it ranked
by before).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.active.objects.simulation.loop import TARGET_JF, Curve, dataset_curve, mean_curve
from frugalseg.active.objects.state import IterationRecord, load_history

RANDOM = "random-mask"
RULES = ("doubt", "model")

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
            first = json.loads(state.read_text(encoding="utf-8"))["objects"]
            initial = len({0, *first.values()})
            found.setdefault(strategy, {}).setdefault(seed, []).append((records, objects, initial))
    return found


def allocation(clips: list[Loop], priority: Callable[[int, int], float]) -> Curve:
    """The dataset curve when the next mask goes to the clip of the highest ``priority(clip, record)``.

    ``priority(c, i)`` ranks clip ``c``'s next recorded mask, its record ``i``; ties go to the earlier clip.
    """
    weights = clip_weights(clips)
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
            (priority(c, i + 1), -c)
            for c, ((records, _, _), i) in enumerate(zip(clips, at, strict=True))
            if i + 1 < len(records) and records[i + 1].seconds > 0
        ]
        if not options:
            return curve
        _, negative_clip = max(options)
        at[-negative_clip] += 1


def clip_weights(clips: list[Loop]) -> list[int]:
    """Each clip's weight in the dataset J&F: its objects (all 1 when no clip has any)."""
    weights = [max(objects, 0) for _, objects, _ in clips]
    return weights if any(weights) else [1] * len(clips)


def oracle_allocation(clips: list[Loop]) -> Curve:
    """The dataset curve when the next mask goes to the clip of the largest J&F gain per second."""
    weights = clip_weights(clips)

    def gain_per_second(c: int, i: int) -> float:
        records = clips[c][0]
        return weights[c] * (records[i].jf - records[i - 1].jf) / records[i].seconds

    return allocation(clips, gain_per_second)


def page_priorities(state_folder: Path, root: Path, stride: int, max_frames: int) -> dict[str, list[float]]:
    """What the page ranks a clip's next mask by, after each prefix of a saved loop (index: the record).

    The loop's annotations are propagated again prefix by prefix (the run's engine: flow at half size),
    and the next recorded frame gets each rule's weight-free score per second of a mask of its objects:
    ``doubt`` the share of its object area the propagation doubts (what the page ranked videos by before),
    ``model`` the rise of the clip's mean J&F the fitted error model expects (`expected_jf_gain`) times
    the clip's objects, its weight in the dataset J&F (what `AnnotationSession.propose` ranks by now).
    """
    import cv2

    from frugalseg.active.objects.choosing.frame_selectors import expected_jf_gain
    from frugalseg.active.objects.choosing.type_policies import type_seconds
    from frugalseg.active.objects.engines import get_loop_engine
    from frugalseg.active.objects.simulation.runs import video_sources
    from frugalseg.active.objects.state import VideoState
    from frugalseg.active.propagation import unreliability
    from frugalseg.data.formats.davis import DavisFormat

    state = VideoState.load(state_folder)[0]
    source = next(
        s
        for s in video_sources(DavisFormat(root), "all", stride=stride, max_frames=max_frames)
        if s.name == state.video
    )
    frames = [cv2.cvtColor(cv2.imread(str(source.frame_paths[i])), cv2.COLOR_BGR2RGB) for i in source.indices]
    engine = get_loop_engine("flow", downscale=2)
    cache = engine.new_cache()
    priorities: dict[str, list[float]] = {rule: [0.0] for rule in RULES}
    for k in range(1, len(state.history)):
        frame = state.history[k].frame
        annotated = {r.frame: state.annotated[r.frame] for r in state.history[:k]}
        made = engine.propagate(frames, annotated, first_frames=state.objects, cache=cache)
        objects = [o for o, first in state.objects.items() if first <= frame]
        seconds = type_seconds(len(objects))["mask"]
        # the page's rule before: the frame's doubted share; now: the expected rise of the clip's J&F
        priorities["doubt"].append(min(1.0, made.disagreement[frame] + made.unsure[frame]) / seconds)
        doubt = unreliability(made.disagreement, made.unsure, annotated)
        priorities["model"].append(len(state.objects) * expected_jf_gain(doubt, annotated, frame) / seconds)
    return priorities


def page(strategy: str, found: dict[str, dict[str, list[Loop]]], runs: list[Path], size: int) -> None:
    """Print ``strategy``'s hours to the target with each rule of the page's allocation, against random
    frames in lockstep and the strategy's own lockstep; with ``size``, the speed-ups over every subset of
    that many clips too (mean ± standard deviation, min–max, over the subsets where both reach it)."""
    seed, clips = sorted(found[strategy].items())[0]
    folders = sorted(folder for run in runs for folder in (run / "runs" / strategy / seed).glob("*"))
    settings = json.loads((folders[0].parents[3] / "run.json").read_text(encoding="utf-8"))
    priorities = [
        page_priorities(f, Path(settings["root"]), settings["stride"], settings["max_frames"])
        for f in folders
    ]
    randoms = list(found[RANDOM].values())

    def lockstep(loops_: list[Loop]) -> Curve:
        return dataset_curve([r for r, _, _ in loops_], [o for _, o, _ in loops_])

    subsets = [tuple(range(len(clips)))] + (list(combinations(range(len(clips)), size)) if size else [])
    rows: dict[str, list[float]] = {}
    reached: dict[str, int] = {}
    for subset in subsets:
        base = mean_curve([lockstep([seeds[c] for c in subset]) for seeds in randoms]).hours_to_reach(
            TARGET_JF
        )
        mine = [clips[c] for c in subset]
        curves = {"lockstep": lockstep(mine)}
        for rule in RULES:
            chosen = [priorities[c][rule] for c in subset]
            curves[f"the page's allocation ({rule})"] = allocation(mine, lambda c, i, p=chosen: p[c][i])
        for name, curve in curves.items():
            h = curve.hours_to_reach(TARGET_JF)
            if subset == subsets[0]:
                cell = "not reached" if h is None else f"{h:.2f} h, {base / h:.2f}×" if base else f"{h:.2f} h"
                print(f"| {strategy} | {name} | all {len(subset)} clips | {cell} |", flush=True)
            elif h is not None and base is not None:
                rows.setdefault(name, []).append(base / h)
                reached[name] = reached.get(name, 0) + 1
    for name, ratios in rows.items():
        values = np.asarray(ratios)
        print(
            f"| {strategy} | {name} | {len(subsets) - 1} subsets of {size} ({reached[name]} reach) | "
            f"{values.mean():.2f} ± {values.std():.2f} ({values.min():.2f}–{values.max():.2f}) |"
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="folders of simulate runs on the same clips")
    parser.add_argument(
        "--page",
        nargs="*",
        default=[],
        help="strategies also replayed with the page's allocation (each loop propagated again by prefix)",
    )
    parser.add_argument(
        "--subset-size", type=int, default=0, help="with --page: also every subset of this many clips"
    )
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
    if args.page:
        print(f"\n| strategy | allocation | clips | hours to {TARGET_JF}, speed-up over random in lockstep |")
        print("|---|---|---|---|")
    for strategy in args.page:
        page(strategy, found, args.runs, args.subset_size)
    print(f"\n`python benchmarks/bench_loop_allocation.py {' '.join(argv)}`")


if __name__ == "__main__":
    main(sys.argv[1:])
    print(provenance_line(), flush=True)
