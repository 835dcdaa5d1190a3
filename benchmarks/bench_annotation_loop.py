"""The annotation loop of paper 002 on the 8 DAVIS clips of ../shared/data (davis_dev + davis_hard).

Parts (one per run):

    python benchmarks/bench_annotation_loop.py anchors     mean J of frames 1…19 from anchors {0} and {0, 20}
    python benchmarks/bench_annotation_loop.py frames      J&F vs hours, masks only, per frame selector
    python benchmarks/bench_annotation_loop.py types --frames SELECTOR   mask / clicks / oracle type policy
    python benchmarks/bench_annotation_loop.py iteration   one iteration on a 50-frame 854×480 video, by stage

The loop parts use every 2nd frame of the first 40 of each clip (20 frames per clip, 160 in all;
drawing every one of them takes 3.56 h) under a budget of 0.8 h, with DIS flow at half resolution,
to fit the CPU; J&F is scored at full resolution on those frames. ``random`` (5 seeds) runs as a
part of its own so that each part stays under 15 minutes.
Results go to /work/experiments/active/bench/<part> (the loop folders; a rerun resumes) and are
printed as Markdown.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from frugalseg.active.annotation import annotate_clicks, annotate_mask, make_policy
from frugalseg.active.loop import TARGET_JF, AnnotationLoop
from frugalseg.active.propagation import PropagationCache, propagate_annotations
from frugalseg.active.selection import SelectionView, make_selector
from frugalseg.active.simulate import simulate, video_sources
from frugalseg.autolabel.propagate import FlowPropagator
from frugalseg.data.formats.davis import DavisFormat

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROOTS = [DATA / "davis_dev", DATA / "davis_hard"]
OUT = Path("/work/experiments/active/bench")
STRIDE, MAX_FRAMES, DOWNSCALE = 2, 40, 2
BUDGET_HOURS = 0.8


def merged_root() -> Path:
    """One DAVIS tree holding the 8 clips (symbolic links), so that one simulate call sees them all."""
    root = OUT / "davis8"
    for sub in ("JPEGImages/480p", "Annotations/480p"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for source in ROOTS:
            for seq in sorted((source / sub).iterdir()):
                link = root / sub / seq.name
                if not link.exists():
                    link.symlink_to(seq)
    return root


def j(mask: np.ndarray, truth: np.ndarray) -> float:
    a, b = mask == 1, truth == 1
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def anchors() -> None:
    fmt = DavisFormat(merged_root())
    engine = FlowPropagator()
    print("| clip | anchors {0} | anchors {0, 20} |\n|---|---|---|")
    rows = []
    for source in video_sources(fmt, "all", max_frames=21):
        video = source.load()
        truth = [(t > 0).astype(np.uint8) for t in video.truth]
        cache = PropagationCache()
        one = propagate_annotations(video.frames, {0: truth[0]}, engine, cache=cache)
        two = propagate_annotations(video.frames, {0: truth[0], 20: truth[20]}, engine, cache=cache)
        row = [np.mean([j(r.masks[t], truth[t]) for t in range(1, 20)]) for r in (one, two)]
        rows.append(row)
        print(f"| {source.name} | {row[0]:.3f} | {row[1]:.3f} |", flush=True)
    mean = np.mean(rows, 0)
    print(f"| **mean of {len(rows)}** | **{mean[0]:.3f}** | **{mean[1]:.3f}** |")


def report(curves: dict, baseline: str | None) -> None:
    base = curves["strategies"].get(baseline, {}).get("hours_to_target") if baseline else None
    print(
        f"| strategy | hours to J&F {TARGET_JF} | speed-up over {baseline} "
        "| J&F at 0.25 / 0.5 / 1.0 h | final J&F (hours) |"
    )
    print("|---|---|---|---|---|")
    for name, curve in curves["strategies"].items():
        hours, jf = curve["mean"]["hours"], curve["mean"]["jf"]

        def at(h: float, hours: list[float] = hours, jf: list[float] = jf) -> str:
            index = int(np.searchsorted(hours, h, side="right")) - 1
            return "–" if index < 0 else f"{jf[index]:.3f}"

        reach = curve["hours_to_target"]
        speed = f"{base / reach:.2f}×" if reach and base else "–"
        reached = "not reached" if reach is None else f"{reach:.2f}"
        print(
            f"| {name} | {reached} | {speed} | {at(0.25)} / {at(0.5)} / {at(1.0)} | "
            f"{curve['final_jf']:.3f} ({curve['final_hours']:.2f} h) |"
        )


def loop_part(name: str, frames: list[str], types: list[str], baseline: str) -> None:
    fmt = DavisFormat(merged_root())
    start = time.perf_counter()
    curves = simulate(
        fmt,
        OUT / name,
        split="all",
        budget_hours=BUDGET_HOURS,
        frames=frames,
        types=types,
        seeds=5,
        stride=STRIDE,
        max_frames=MAX_FRAMES,
        engine=FlowPropagator(downscale=DOWNSCALE),
        progress=False,
    )
    print(f"{name}: {time.perf_counter() - start:.0f} s; curves in {OUT / name}/curves.json\n")
    report(curves, baseline)


def iteration() -> None:
    """One iteration on blackswan (50 frames, 854×480) at full resolution, split by stage."""
    fmt = DavisFormat(merged_root())
    source = [s for s in video_sources(fmt, "all") if s.name == "blackswan"][0]
    video = source.load()
    engine = FlowPropagator()
    with tempfile.TemporaryDirectory() as folder:
        loop = AnnotationLoop(video, make_selector("uniform"), make_policy("mask"), engine, folder)
        stages: dict[str, float] = {}
        t0 = time.perf_counter()
        loop.step()  # frame 0: propagation to all 49 other frames
        stages["first iteration (cold: propagate frame 0 to 49 frames, score, save)"] = (
            time.perf_counter() - t0
        )
        loop.step()  # frame 49
        state = loop.state
        view = SelectionView(
            key=video.name,
            iteration=2,
            num_frames=50,
            annotated=set(state.annotated),
            frames=video.frames,
            masks=state.masks,
            quality=state.quality,
            unreliability=[d + u for d, u in zip(state.disagreement, state.unsure, strict=True)],
        )
        for selector in ("random", "uniform", "oracle", "uncertainty", "diversity"):
            t0 = time.perf_counter()
            frame = make_selector(selector).select(view)
            stages[f"selection: {selector}"] = time.perf_counter() - t0
        frame = 25
        t0 = time.perf_counter()
        annotate_mask(video.truth[frame])
        stages["annotation: mask (simulated)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = annotate_clicks(video.frames[frame], state.masks[frame], video.truth[frame])
        stages[f"annotation: clicks ({sum(result.clicks.values())} clicks → GrabCut)"] = (
            time.perf_counter() - t0
        )
        annotated = {**state.annotated, frame: result.mask}
        t0 = time.perf_counter()
        propagate_annotations(
            video.frames, annotated, engine, first_frames=loop.first_frames, cache=loop.cache
        )
        stages["propagation: new anchor 25 between 0 and 49 (warm cache: 2 × 24 frames)"] = (
            time.perf_counter() - t0
        )
        state.annotated = annotated
        t0 = time.perf_counter()
        loop._propagate(state)
        loop._evaluate(state)
        stages["scoring: J&F of the 50 frames (changed ones only)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        state.save(folder)
        stages["saving the state (JSON + 50 PNG)"] = time.perf_counter() - t0
    print("| stage | seconds |\n|---|---|")
    for stage, seconds in stages.items():
        print(f"| {stage} | {seconds:.3f} |")


def main(argv: list[str]) -> None:
    cv2.setNumThreads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=("anchors", "frames", "types", "iteration"))
    parser.add_argument("--frames", default="oracle", help="types part: the frame selector")
    args = parser.parse_args(argv)
    if args.part == "anchors":
        anchors()
    elif args.part == "frames":
        loop_part(
            "frames", ["random", "uniform", "uncertainty", "diversity", "oracle"], ["mask"], "uniform-mask"
        )
    elif args.part == "types":
        loop_part(f"types-{args.frames}", [args.frames], ["mask", "clicks", "oracle"], f"{args.frames}-mask")
    else:
        iteration()


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stdout.flush()
