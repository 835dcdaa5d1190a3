"""`annotate simulate`: the loop with the simulated annotator over a DAVIS/MOSE data set with ground truth.

For every strategy (frame selector × type policy × seed) and every video, `AnnotationLoop` runs
until the video's share of the budget is spent (the budget in hours is for the whole data set,
shared between videos in proportion to their frames) or every frame is annotated. Output folder::

    run.json                              the run's settings (a rerun with others is refused)
    runs/<frames>-<types>/seed<k>/<video>/  the loop state of each video (resumable)
    curves.json                           J&F against hours per strategy (dataset curve, lockstep)
    curves.png                            the same as a plot, the J&F = 0.85 line marked
    labels/<frames>-<types>-seed<k>/      the final masks of every frame as a label store (two classes)

Everything is checked before anything is written: the budget, the strategy names, and that every
frame of every video has a ground-truth mask.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.active.annotation import POLICY_NAMES, make_policy
from frugalseg.active.loop import (
    TARGET_JF,
    AnnotationLoop,
    Curve,
    Video,
    curves_to_json,
    dataset_curve,
    mean_curve,
    plot_curves,
)
from frugalseg.active.propagation import PropagationCache
from frugalseg.active.selection import SELECTORS, make_selector
from frugalseg.active.state import VideoState
from frugalseg.autolabel.runs import labelling_progress
from frugalseg.autolabel.store import LabelStore
from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import read_frame, write_bytes_atomic, write_json_atomic
from frugalseg.errors import ConfigError, DataError

RUN_FILE = "run.json"


@dataclass(frozen=True)
class Strategy:
    """One curve: a frame selector, a type policy and a seed."""

    frames: str
    types: str
    seed: int = 0

    @property
    def name(self) -> str:
        """The strategy's name: its frame selector and type policy (``random-clicks``)."""
        return f"{self.frames}-{self.types}"


def strategies(frames: Sequence[str], types: Sequence[str], seeds: int) -> list[Strategy]:
    """Every frame selector × type policy; seeded ones (random) ``seeds`` times, the others once."""
    unknown = [f for f in frames if f not in SELECTORS]
    if unknown:
        raise ConfigError(
            "frames", f"unknown frame selector {unknown[0]!r}; choose from {', '.join(SELECTORS)}"
        )
    unknown = [t for t in types if t not in POLICY_NAMES]
    if unknown:
        raise ConfigError(
            "types", f"unknown annotation type policy {unknown[0]!r}; choose from {', '.join(POLICY_NAMES)}"
        )
    if seeds < 1:
        raise ConfigError("seeds", f"must be ≥ 1, got {seeds}")
    out = []
    for f, t in itertools.product(dict.fromkeys(frames), dict.fromkeys(types)):
        random = f == "random" or t == "random"
        out += [Strategy(f, t, s) for s in range(seeds if random else 1)]
    return out


@dataclass
class VideoSource:
    """Where one video's frames and masks are, and which of them the loop uses (every ``stride``-th)."""

    name: str
    frame_paths: list[Path]
    mask_paths: list[Path]
    indices: list[int]

    def load(self) -> Video:
        """The frames and ground-truth masks of the video, checked to be of one size."""
        frames = [read_frame(self.frame_paths[i]) for i in self.indices]
        truth = [DavisFormat.read_mask(self.mask_paths[i]) for i in self.indices]
        for i, (frame, mask) in zip(self.indices, zip(frames, truth, strict=True), strict=True):
            if frame.shape[:2] != mask.shape:
                raise DataError(
                    self.mask_paths[i],
                    f"mask size {mask.shape[::-1]} differs from its frame's {frame.shape[1::-1]}",
                )
        return Video(self.name, frames, truth, list(self.indices))


def video_sources(
    fmt: DavisFormat, split: str, *, stride: int = 1, max_frames: int | None = None
) -> list[VideoSource]:
    """Every sequence of ``split``, checked to have a ground-truth mask on every frame the loop uses."""
    if stride < 1:
        raise ConfigError("stride", f"must be ≥ 1, got {stride}")
    if max_frames is not None and max_frames < 2:
        raise ConfigError("max_frames", f"must be ≥ 2, got {max_frames}")
    sources = []
    for seq in fmt.sequences(split):
        frames = fmt.frame_paths(seq)
        masks = fmt.mask_paths(seq)
        horizon = len(frames) if max_frames is None else min(len(frames), max_frames)
        indices = list(range(0, horizon, stride))
        lacking = [i for i in indices if masks[i] is None]
        if lacking:
            raise DataError(
                fmt.mask_dir / seq,
                f"simulating the annotator needs ground truth on every frame; {len(lacking)} of the "
                f"{len(indices)} frames used have no mask (first: {frames[lacking[0]].name})",
            )
        sources.append(VideoSource(seq, frames, masks, indices))  # type: ignore[arg-type]
    if not sources:
        raise DataError(fmt.root, f"split {split!r} has no sequence")
    return sources


def write_store(
    folder: Path,
    clip: Clip,
    indices: Sequence[int],
    state: VideoState,
    config: dict[str, Any],
) -> int:
    """Write the final mask of every frame of one video to the label store ``folder``.

    ``clip`` is the video's sequence as the data set's reader sees it (every frame, anchored at
    frame 0) and ``indices`` the sequence index of each loop frame, so each label lands on its own
    frame's offset. The labels are the format's two classes (`DavisFormat.to_label`: 0 background,
    1 any object), the label maps ``VideoSegDataModule`` trains DAVIS/MOSE from (a store of object
    ids would hold values beyond its classes); the object ids stay in the loop state's ``masks/``.
    Frames annotated with a mask are written as ``fine``, the others (clicks, propagated) as
    ``pseudo``. Returns how many were written.
    """
    store = LabelStore(folder)
    drawn = {a.frame for a in state.annotations if a.kind == "mask"}
    seconds: dict[int, float] = {}
    for a in state.annotations:
        seconds[a.frame] = seconds.get(a.frame, 0.0) + a.seconds
    written = 0
    with store.run(config):
        for t, mask in enumerate(state.masks):
            offset = indices[t] - clip.anchor_index
            kind = LabelKind.FINE if t in drawn else LabelKind.PSEUDO
            if store.has(clip.clip_id, offset, kind, split=clip.split):
                continue
            store.write(
                clip,
                offset,
                kind,
                DavisFormat.to_label(mask),
                engine=config["engine"],
                settings=config["settings"],
                source_offset=offset,
                seconds=seconds.get(t, 0.0),
            )
            written += 1
    return written


@dataclass
class SimulationSettings:
    """The settings of a simulation run (recorded in ``run.json``)."""

    format: str
    root: str
    split: str
    budget_hours: float
    frames: list[str]
    types: list[str]
    seeds: int
    stride: int
    max_frames: int | None
    engine: dict[str, Any]
    costs: dict[str, float]
    policy: str | None = None


def check_budget(hours: float) -> float:
    """``hours`` as a float, checked to be a finite number of hours > 0."""
    if not (isinstance(hours, int | float) and np.isfinite(hours) and hours > 0):
        raise ConfigError("budget_hours", f"the budget must be a number of hours > 0, got {hours}")
    return float(hours)


def simulate(
    fmt: DavisFormat,
    out: str | Path,
    *,
    split: str,
    budget_hours: float,
    frames: Sequence[str],
    types: Sequence[str],
    seeds: int = 5,
    stride: int = 1,
    max_frames: int | None = None,
    engine: Any,
    costs: AnnotationCosts = DEFAULT_COSTS,
    policy: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every strategy on every video, write states, curves, plot and label stores; return the curves.

    ``policy`` is the weights file of the ``learned`` type policy (`frugalseg.active.policy`).

    Raises:
        ConfigError: a budget ≤ 0, an unknown strategy, ``learned`` without ``policy``, or an output
            folder of another run.
        DataError: a video without a ground-truth mask on a frame it uses.
        WeightsError: a ``policy`` file that is missing or not a type policy.
    """
    budget_hours = check_budget(budget_hours)
    plan = strategies(frames, types, seeds)
    if "learned" in types:
        make_policy("learned", weights=policy)  # a bad file is refused before anything is written
    sources = video_sources(fmt, split, stride=stride, max_frames=max_frames)
    out = Path(out)
    settings = SimulationSettings(
        format=fmt.name,
        root=str(fmt.root),
        split=split,
        budget_hours=budget_hours,
        frames=list(frames),
        types=list(types),
        seeds=seeds,
        stride=stride,
        max_frames=max_frames,
        engine={"name": getattr(engine, "name", type(engine).__name__), **getattr(engine, "settings", {})},
        costs=costs.to_dict(),
        policy=None if policy is None else str(Path(policy).resolve()),
    )
    wanted = json.loads(json.dumps(asdict(settings)))
    run_path = out / RUN_FILE
    if run_path.is_file():
        found = json.loads(run_path.read_text())
        if found != wanted:
            keys = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            raise ConfigError(
                "out", f"{out} holds a run with other settings ({', '.join(keys)}); use another folder"
            )
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(
            "out", f"{out} exists and is not a simulation run's folder; use an empty or new folder"
        )
    write_json_atomic(run_path, wanted, indent=2)
    total_frames = sum(len(s.indices) for s in sources)
    histories: dict[Strategy, list[VideoState]] = {s: [] for s in plan}
    with labelling_progress("annotating", "loops", enabled=progress) as bar:
        task = bar.add_task(split, total=len(plan) * len(sources))
        for source in sources:
            video = source.load()
            share = budget_hours * 3600 * len(source.indices) / total_frames
            cache = PropagationCache()
            for strategy in plan:
                bar.update(task, description=f"{source.name} {strategy.name} seed {strategy.seed}")
                config = {"frames": strategy.frames, "types": strategy.types, "seed": strategy.seed}
                folder = out / "runs" / strategy.name / f"seed{strategy.seed}" / source.name
                loop = AnnotationLoop(
                    video,
                    make_selector(strategy.frames, strategy.seed),
                    make_policy(strategy.types, strategy.seed, weights=policy),
                    engine,
                    folder,
                    costs=costs,
                    config=config,
                    cache=cache,
                )
                state = loop.run(share)
                histories[strategy].append(state)
                store_config = {
                    "engine": "annotation-loop",
                    "settings": {**config, "budget_hours": budget_hours, "stride": stride},
                    "split": split,
                    **fmt.describe(),
                }
                clip = Clip(clip_id=source.name, split=split, frames=list(source.frame_paths), anchor_index=0)
                write_store(
                    out / "labels" / f"{strategy.name}-seed{strategy.seed}",
                    clip,
                    source.indices,
                    state,
                    store_config,
                )
                bar.advance(task)
    curves = summarise(histories, budget_hours)
    write_bytes_atomic(out / "curves.json", curves_to_json(curves).encode())
    lines = {name: Curve(c["mean"]["hours"], c["mean"]["jf"]) for name, c in curves["strategies"].items()}
    title = f"{fmt.root.name} ({len(sources)} videos, {total_frames} frames)"
    write_bytes_atomic(out / "curves.png", plot_curves(lines, title=title))
    return curves


def summarise(histories: dict[Strategy, list[VideoState]], budget_hours: float) -> dict[str, Any]:
    """The curves of every strategy (per seed and their mean) and the hours each needs to reach 0.85."""
    grouped: dict[str, list[tuple[int, Curve]]] = {}
    for strategy, states in histories.items():
        curve = dataset_curve([s.history for s in states], [len(s.objects) for s in states])
        grouped.setdefault(strategy.name, []).append((strategy.seed, curve))
    result: dict[str, Any] = {"budget_hours": budget_hours, "target_jf": TARGET_JF, "strategies": {}}
    for name, runs in grouped.items():
        mean = mean_curve([c for _, c in runs])
        result["strategies"][name] = {
            "runs": [{"seed": seed, **asdict(curve)} for seed, curve in runs],
            "mean": {"hours": mean.hours, "jf": mean.jf},
            "hours_to_target": mean.hours_to_reach(TARGET_JF),
            "final_jf": mean.jf[-1],
            "final_hours": mean.hours[-1],
        }
    return result
