"""`annotate semantic`: the semantic loop (paper 000) over a data set with ground truth on every frame.

Every strategy (granularity × selector) runs at every budget on every video (`SemanticLoop`), one
video after the other, each read when its loops run; clips of one video (CamVid's stills, each anchoring
a clip over its whole sequence) count once (`distinct_videos`). Results are the mean over the videos.
Output folder::

    run.json                                 the run's settings (a rerun with others is refused)
    flows/                                   DIS flows of the videos, shared by every loop
    runs/<granularity>-<selector>/b<budget>/<video>/  each loop's state (resumable)
    curves.json                              per strategy and budget finished in the folder (by this run or
                                             an earlier one), every iteration's clicks %, hours and
                                             mIoU / pixel accuracy / bIoU / TC (+ the flow baseline)
    curves.png                               mIoU against clicks %, one line per strategy
    labels/<granularity>-<selector>-b<budget>/  the final generated labels as a label store

Everything is checked before anything is written: the strategies, the budgets, the videos (at
least 2 frames, ground truth on each) and each granularity on each video's frame size; the first
video is read whole (its files, label values and sizes) too, each later one when its loops start.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from frugalseg.active.run_folder import LoopLabel, figure_png, open_run, source_frame, write_loop_labels
from frugalseg.active.semantic.loop import (
    STATE_FILE,
    Learner,
    LoopResult,
    Quality,
    SemanticLoop,
    SemanticLoopConfig,
    check_clip,
    check_video,
    finished_loop,
    read_video,
)
from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.formats.base import Format
from frugalseg.data.io import image_size, write_bytes_atomic
from frugalseg.errors import ConfigError

#: The mIoU levels of Table 3 of paper 000.
TARGETS = (0.80, 0.85, 0.90)
ENGINE = "hvsa"


def loop_folder(out: Path, config: SemanticLoopConfig, video: str) -> Path:
    """Where the state of one loop is kept."""
    return out / "runs" / config.name / f"b{config.budget_percent:g}" / video


def store_name(config: SemanticLoopConfig) -> str:
    """The label store of a strategy at a budget: ``<granularity>-<selector>-b<budget>``."""
    return f"{config.name}-b{config.budget_percent:g}"


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return round(float(np.mean(finite)), 6) if finite else None


def _quality(records: Sequence[Quality | None]) -> dict[str, float | None] | None:
    present = [q for q in records if q is not None]
    if not present:
        return None
    return {key: _mean([getattr(q, key) for q in present]) for key in asdict(present[0])}


def curves(loops: Sequence[LoopResult]) -> dict[str, Any]:
    """Per strategy and budget, each iteration's mean over the videos, and the Table-3 summary."""
    grouped: dict[str, dict[float, list[LoopResult]]] = {}
    for loop in loops:
        grouped.setdefault(loop.config.name, {}).setdefault(loop.config.budget_percent, []).append(loop)
    strategies: dict[str, Any] = {}
    for name, budgets in grouped.items():
        points = []
        for budget, runs in sorted(budgets.items()):
            for iteration in range(runs[0].config.iterations):
                records = [run.history[iteration] for run in runs]
                points.append(
                    {
                        "budget_percent": budget,
                        "iteration": iteration,
                        "clicks_percent": _mean([r.clicks_percent for r in records]),
                        "clicks": int(sum(r.total_clicks for r in records)),
                        "hours": round(sum(r.hours for r in records), 6),
                        **(_quality([r.quality for r in records]) or {}),
                        "baseline": _quality([r.baseline for r in records]),
                    }
                )
        first = next(iter(budgets.values()))[0].config
        strategies[name] = {
            "granularity": asdict(first.granularity),
            "selector": first.selector,
            "points": points,
        }
    return {
        "strategies": strategies,
        "videos": sorted({loop.video for loop in loops}),
        "table3": table3(strategies),
    }


def table3(strategies: dict[str, Any], targets: Sequence[float] = TARGETS) -> list[dict[str, Any]]:
    """For each mIoU level, the cheapest point (in clicks %) of any strategy that reaches it (None: none)."""
    rows = []
    for target in targets:
        best: dict[str, Any] | None = None
        for name, strategy in strategies.items():
            for point in strategy["points"]:
                miou = point.get("miou")
                if miou is None or miou < target or point["clicks_percent"] is None:
                    continue
                if best is None or point["clicks_percent"] < best["clicks_percent"]:
                    best = {
                        "strategy": name,
                        "granularity": strategy["granularity"]["name"],
                        "clicks_percent": point["clicks_percent"],
                        "miou": miou,
                        "budget_percent": point["budget_percent"],
                        "iteration": point["iteration"],
                    }
        rows.append({"miou": target, "cheapest": best})
    return rows


def plot(data: dict[str, Any], title: str = "") -> bytes:
    """PNG bytes of mIoU against clicks %: a line per strategy, the flow baseline dashed, Table 3 levels."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, strategy in data["strategies"].items():
        points = sorted(
            (p for p in strategy["points"] if p.get("miou") is not None), key=lambda p: p["clicks_percent"]
        )
        (line,) = axes.plot(
            [p["clicks_percent"] for p in points], [p["miou"] for p in points], marker="o", label=name
        )
        base = [p for p in points if p["baseline"] is not None and p["baseline"]["miou"] is not None]
        if base:
            axes.plot(
                [p["clicks_percent"] for p in base],
                [p["baseline"]["miou"] for p in base],
                linestyle="--",
                marker="x",
                color=line.get_color(),
                label=f"{name}: flow propagation",
            )
    for target in TARGETS:
        axes.axhline(target, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("annotation clicks (% of labelling every frame)")
    axes.set_ylabel("mIoU of the generated labels")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    return figure_png(figure)


def configs(
    granularities: Sequence[Any], selectors: Sequence[str], budgets: Sequence[float], **options: Any
) -> list[SemanticLoopConfig]:
    """Every granularity × selector × budget (each checked; ``options``: iterations, seed, baseline)."""
    if not granularities or not selectors or not budgets:
        raise ConfigError("strategies", "give at least one granularity, one selector and one budget")
    return [
        SemanticLoopConfig(granularity=g, selector=s, budget_percent=float(b), **options)
        for g, s, b in itertools.product(granularities, dict.fromkeys(selectors), dict.fromkeys(budgets))
    ]


def distinct_videos(clips: Sequence[Clip], max_frames: int | None = None) -> list[Clip]:
    """The first of ``clips`` of each video: clips that read the same frame files are one video.

    CamVid anchors a clip at each labelled still over its whole sequence: the loop reads each
    sequence once, from its start, as it reads any clip.
    """
    videos: dict[tuple[Path, ...], Clip] = {}
    for clip in clips:
        videos.setdefault(tuple(map(clip.frame_path, clip.present_offsets[:max_frames])), clip)
    return list(videos.values())


def simulate_semantic(
    fmt: Format,
    clips: Sequence[Clip],
    out: str | Path,
    loop_configs: Sequence[SemanticLoopConfig],
    learner: Learner,
    *,
    max_frames: int | None = None,
    scale: float = 1.0,
    costs: AnnotationCosts = DEFAULT_COSTS,
    report: Callable[[SemanticLoop], None] | None = None,
) -> tuple[dict[str, Any], list[SemanticLoop]]:
    """Run (or resume) every loop, then write the curves, the plot and the label stores.

    Args:
        fmt: the data set.
        clips: the videos to annotate (`distinct_videos` of them).
        out: the output folder (see the module docstring).
        loop_configs: the loops to run on every video (`configs`).
        learner: the student each loop fine-tunes (reset for every loop).
        max_frames: use the first n frames of each clip.
        scale: shrink frames and ground truth by this factor (0 < scale ≤ 1).
        costs: seconds per click and clicked frame.
        report: called after each finished loop (progress).

    Returns:
        The curves (as written to ``curves.json``: every strategy and budget finished in ``out``) and
        this run's loops.
    """
    out = Path(out)
    clips = distinct_videos(clips, max_frames)
    if not clips:
        raise ConfigError("clips", "no clip to annotate")
    for clip in clips:
        check_clip(fmt, clip, [config.granularity for config in loop_configs], max_frames, scale)
        frames = len(clip.present_offsets[:max_frames])
        for config in loop_configs:  # each iteration labels a sample at least
            if config.granularity.name == "frame" and config.iterations > frames:
                raise ConfigError(
                    "iterations",
                    f"{config.iterations}, but {clip.clip_id} has {frames} frames and each iteration of a "
                    f"frame loop labels one at least: give at most {frames}",
                )
    learner.reset()  # bad initial weights fail here, before run.json is written
    loops = []
    for k, clip in enumerate(clips):
        video = read_video(fmt, clip, max_frames=max_frames, scale=scale)
        check_video(video)
        if k == 0:  # a damaged first video (files, label values, sizes) is refused before run.json
            open_run(out, _run_settings(fmt, clips, learner, costs, max_frames=max_frames, scale=scale))
        for config in loop_configs:
            loop = SemanticLoop(
                video,
                loop_folder(out, config, video.name),
                config,
                learner,
                costs=costs,
                flow_cache=out / "flows",
            )
            loop.run()
            if report is not None:
                report(loop)
            loops.append(loop)
    data = _write_outputs(out, fmt, clips, loops, costs)
    return data, loops


def _run_settings(
    fmt: Format, clips: Sequence[Clip], learner: Learner, costs: AnnotationCosts, **sizes: Any
) -> dict[str, Any]:
    """What ``run.json`` records: data set, clips, their size (``max_frames``, ``scale``), learner, costs."""
    clip_ids = [clip.clip_id for clip in clips]
    return {
        "format": fmt.name,
        "root": str(fmt.root),
        "clips": clip_ids,
        **sizes,
        "learner": learner.settings,
        "costs": asdict(costs),
    }


def _write_outputs(
    out: Path, fmt: Format, clips: Sequence[Clip], loops: Sequence[SemanticLoop], costs: AnnotationCosts
) -> dict[str, Any]:
    """Write the curves (``curves.json``, ``curves.png``) and the loops' label stores; the curves."""
    data = curves(finished_loops(out, [clip.clip_id for clip in clips]))
    write_bytes_atomic(out / "curves.json", (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
    write_bytes_atomic(out / "curves.png", plot(data, title=f"{fmt.name}: {len(clips)} video(s)"))
    clip_of = {clip.clip_id: clip for clip in clips}
    for loop in loops:
        store = out / "labels" / store_name(loop.config)
        write_semantic_labels(store, fmt, clip_of[loop.video.name], loop, costs)
    return data


def finished_loops(out: Path, videos: Sequence[str]) -> list[LoopResult]:
    """Every strategy and budget in ``out`` finished on each of ``videos``: this run's and earlier runs'."""
    by_strategy: dict[tuple[str, float], list[LoopResult]] = {}
    for state in sorted((out / "runs").glob(f"*/*/*/{STATE_FILE}")):
        loop = finished_loop(state.parent)
        if loop is not None:
            by_strategy.setdefault((loop.config.name, loop.config.budget_percent), []).append(loop)
    return [
        loop
        for loops in by_strategy.values()
        if sorted(loop.video for loop in loops) == sorted(videos)
        for loop in loops
    ]


def write_semantic_labels(
    root: Path, fmt: Format, clip: Clip, loop: SemanticLoop, costs: AnnotationCosts
) -> int:
    """The loop's generated labels as ``pseudo`` labels of a label store, at the clip's frame size.

    Each record's source is the nearest frame a person labelled samples on, and its seconds the
    human time spent on the frame itself (its clicks and, per iteration that clicked it, the time
    to find its objects). The store's ``run.json`` names the data set and split, so that ``label
    report`` finds the ground truth. Returns how many labels were written.
    """
    settings = {"loop": loop.config.to_json(), "learner": loop.learner.settings}
    config = {"engine": ENGINE, "settings": settings, "split": clip.split, **fmt.describe()}
    labels = _loop_labels(clip, loop, costs)
    return write_loop_labels(root, clip, config, labels, engine=ENGINE, settings=settings)


def _loop_labels(clip: Clip, loop: SemanticLoop, costs: AnnotationCosts) -> Iterator[LoopLabel]:
    offsets = clip.present_offsets[: len(loop.labels)]
    width, height = image_size(clip.frame_path(offsets[0]))
    clicked = sorted({s.frame for s in loop.labelled})
    for t, (offset, label) in enumerate(zip(offsets, loop.labels, strict=True)):
        full = (
            label
            if label.shape == (height, width)
            else cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)
        )
        on_frame = [s for s in loop.labelled if s.frame == t]
        seconds = sum(s.clicks for s in on_frame) * costs.click_seconds + costs.clicked_frame_seconds * len(
            {s.iteration for s in on_frame}
        )
        source = source_frame(clicked, t)
        yield LoopLabel(offset, LabelKind.PSEUDO, full, offsets[source], seconds)
