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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from frugalseg.active.objects.choosing.diversity_features import get_diversity_features
from frugalseg.active.objects.choosing.frame_selectors import SELECTORS, SelectionView, get_selector
from frugalseg.active.objects.choosing.type_policies import POLICIES, get_policy
from frugalseg.active.objects.engines import LoopEngine
from frugalseg.active.objects.labels import write_video_labels
from frugalseg.active.objects.simulation.loop import (
    TARGET_JF,
    AnnotationLoop,
    Curve,
    curves_to_json,
    dataset_curve,
    mean_curve,
    plot_curves,
)
from frugalseg.active.objects.simulation.runs import VideoSource, video_sources
from frugalseg.active.objects.state import IterationRecord, load_history
from frugalseg.active.run_folder import open_run
from frugalseg.autolabel.runs import TrainerOptions, labelling_progress
from frugalseg.data.clips import Clip
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import write_bytes_atomic
from frugalseg.errors import ConfigError

if TYPE_CHECKING:
    from frugalseg.active.objects.tools.click_models import ClickToMask


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
    unknown = [t for t in types if t not in POLICIES]
    if unknown:
        raise ConfigError(
            "types", f"unknown annotation type policy {unknown[0]!r}; choose from {', '.join(POLICIES)}"
        )
    if seeds < 1:
        raise ConfigError("seeds", f"must be ≥ 1, got {seeds}")
    out = []
    for f, t in itertools.product(dict.fromkeys(frames), dict.fromkeys(types)):
        random = f == "random" or t == "random"
        out += [Strategy(f, t, s) for s in range(seeds if random else 1)]
    return out


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
    click_model: dict[str, Any] | None = None
    diversity: dict[str, Any] | None = None


def check_budget(hours: float) -> float:
    """``hours`` as a float, checked to be a finite number of hours > 0."""
    if not (isinstance(hours, int | float) and np.isfinite(hours) and hours > 0):
        raise ConfigError("budget_hours", f"the budget must be a number of hours > 0, got {hours}")
    return float(hours)


@dataclass(frozen=True)
class SimulationPlan:
    """What `simulate` runs: the split, the budget and the strategies (checked when made).

    Attributes:
        split: the split whose videos are annotated.
        budget_hours: human hours for the whole split, shared by the videos in proportion to their frames.
        frames: frame selectors (`frame_selectors.SELECTORS`).
        types: annotation type policies (`type_policies.POLICIES`).
        seeds: runs of each strategy with a random part.
        stride: the loop uses every ``stride``-th frame of a video.
        max_frames: the loop uses the first ``max_frames`` frames of a video (None: all).
        costs: annotation costs.
        policy: the weights file of the ``learned`` type policy.
        diversity_features: what the ``diversity`` selector compares (`get_diversity_features`:
            ``descriptor``, ``qnet``, ``timm:<model>``).
        diversity_weights: the QNet or encoder weights file of those features.

    Raises:
        ConfigError: a budget ≤ 0 or an unknown strategy.
    """

    split: str
    budget_hours: float
    frames: Sequence[str] = ("uniform",)
    types: Sequence[str] = ("auto",)
    seeds: int = 5
    stride: int = 1
    max_frames: int | None = None
    costs: AnnotationCosts = DEFAULT_COSTS
    policy: str | Path | None = None
    diversity_features: str = "descriptor"
    diversity_weights: str | Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget_hours", check_budget(self.budget_hours))
        self.strategies()

    def strategies(self) -> list[Strategy]:
        """Every frame selector × type policy, seeded ones ``seeds`` times (`strategies`)."""
        return strategies(self.frames, self.types, self.seeds)

    def settings(
        self, fmt: DavisFormat, engine: LoopEngine, click_model: ClickToMask | None
    ) -> SimulationSettings:
        """What ``run.json`` records of a run of this plan on ``fmt`` with ``engine`` and ``click_model``."""
        diversity = "diversity" in self.frames
        return SimulationSettings(
            format=fmt.name,
            root=str(fmt.root),
            split=self.split,
            budget_hours=self.budget_hours,
            frames=list(self.frames),
            types=list(self.types),
            seeds=self.seeds,
            stride=self.stride,
            max_frames=self.max_frames,
            engine={"name": engine.name, **engine.settings},
            costs=self.costs.to_dict(),
            policy=None if self.policy is None else str(Path(self.policy).resolve()),
            click_model=None if click_model is None else {"name": click_model.name, **click_model.settings},
            diversity=_diversity_settings(self.diversity_features, self.diversity_weights)
            if diversity
            else None,
        )


def simulate(
    fmt: DavisFormat,
    out: str | Path,
    plan: SimulationPlan,
    *,
    engine: LoopEngine,
    click_model: ClickToMask | None = None,
    trainer: TrainerOptions | None = None,
    progress: bool = True,
) -> dict[str, Any] | None:
    """Run every strategy of ``plan`` on every video; write states, curves, plot and label stores.

    Args:
        fmt: the data set (DAVIS or MOSE layout), with ground truth on every frame used.
        out: the run's folder; a rerun with the same settings resumes it.
        plan: the split, the budget and the strategies.
        engine: the propagation engine (`engines`).
        click_model: the click-to-mask model of the ``clicks`` type (None: GrabCut).
        trainer: share the videos out among Lightning's processes (``Trainer.predict`` on several
            devices); None: one process, video after video.
        progress: show a progress bar.

    Returns:
        The curves (also written to ``curves.json`` and ``curves.png``); None in the processes of a
        multi-process run other than rank 0, which alone summarises.

    Raises:
        ConfigError: ``learned`` without ``policy``, or an output folder of another run.
        DataError: a video without a ground-truth mask on a frame it uses.
        WeightsError: a ``policy`` file that is missing or not a type policy.
    """
    if "learned" in plan.types:
        get_policy("learned", weights=plan.policy)  # a bad file is refused before anything is written
    features = None
    if "diversity" in plan.frames:
        features = get_diversity_features(plan.diversity_features, plan.diversity_weights)
    sources = video_sources(fmt, plan.split, stride=plan.stride, max_frames=plan.max_frames)
    out = Path(out)
    open_run(out, asdict(plan.settings(fmt, engine, click_model)))
    total = sum(len(s.indices) for s in sources)
    job = _VideoJob(fmt, out, plan, plan.strategies(), total, engine, click_model, features)
    if trainer is None:
        with labelling_progress("annotating", "videos", enabled=progress) as bar:
            task = bar.add_task(plan.split, total=len(sources))
            for source in sources:
                bar.update(task, description=f"{plan.split}: {source.name}")
                job(source)
                bar.advance(task)
    else:
        from frugalseg.autolabel.lightning_runner import label_with_trainer

        movable = [engine] if click_model is None else [engine, click_model]
        if label_with_trainer(sources, job, movable=movable, options=trainer, progress=progress).rank != 0:
            return None
    return job.write_curves(sources)


def _diversity_settings(features: str, weights: str | Path | None) -> dict[str, Any]:
    """What ``run.json`` records of the diversity selector's features (the weights by name and sha256)."""
    if weights is None:
        return {"features": features}
    from frugalseg.zoo import sha256_file

    return {"features": features, "weights": Path(weights).name, "weights_sha256": sha256_file(weights)}


@dataclass
class _VideoJob:
    """Every strategy's loop on one video, then its label stores: one work item of `simulate`.

    Each process of a multi-process run calls it on its share of the videos.
    """

    fmt: DavisFormat
    out: Path
    plan: SimulationPlan
    strategies: list[Strategy]
    total_frames: int
    engine: LoopEngine
    click_model: ClickToMask | None
    features: Callable[[SelectionView], np.ndarray] | None

    def folder(self, strategy: Strategy, source: VideoSource) -> Path:
        """Where the loop state of ``strategy`` on ``source`` is saved."""
        return self.out / "runs" / strategy.name / f"seed{strategy.seed}" / source.name

    def __call__(self, source: VideoSource) -> int:
        """Run the loops of one video and write their label stores; how many labels were written."""
        video = source.load()
        plan = self.plan
        share = plan.budget_hours * 3600 * len(source.indices) / self.total_frames
        cache = self.engine.new_cache()
        clip = Clip(clip_id=source.name, split=plan.split, frames=list(source.frame_paths), anchor_index=0)
        written = 0
        for strategy in self.strategies:
            config = {"frames": strategy.frames, "types": strategy.types, "seed": strategy.seed}
            loop = AnnotationLoop(
                video,
                get_selector(
                    strategy.frames,
                    strategy.seed,
                    features=self.features if strategy.frames == "diversity" else None,
                ),
                get_policy(strategy.types, strategy.seed, weights=plan.policy),
                self.engine,
                self.folder(strategy, source),
                costs=plan.costs,
                config=config,
                cache=cache,
                click_model=self.click_model,
            )
            state = loop.run(share)
            store_config = {
                "engine": "annotation-loop",
                "settings": {**config, "budget_hours": plan.budget_hours, "stride": plan.stride},
                "split": plan.split,
                **self.fmt.describe(),
            }
            store = self.out / "labels" / f"{strategy.name}-seed{strategy.seed}"
            written += write_video_labels(store, clip, source.indices, state, store_config, object_ids=True)
        return written

    def write_curves(self, sources: Sequence[VideoSource]) -> dict[str, Any]:
        """Summarise every loop's history into ``curves.json`` and ``curves.png``; the curves."""
        histories = {s: [load_history(self.folder(s, source)) for source in sources] for s in self.strategies}
        curves = summarise(histories, self.plan.budget_hours)
        write_bytes_atomic(self.out / "curves.json", curves_to_json(curves).encode())
        lines = {name: Curve(c["mean"]["hours"], c["mean"]["jf"]) for name, c in curves["strategies"].items()}
        title = f"{self.fmt.root.name} ({len(sources)} videos, {self.total_frames} frames)"
        write_bytes_atomic(self.out / "curves.png", plot_curves(lines, title=title))
        return curves


def summarise(
    histories: dict[Strategy, list[tuple[list[IterationRecord], int]]], budget_hours: float
) -> dict[str, Any]:
    """The curves of every strategy (per seed and their mean) and the hours each needs to reach 0.85.

    ``histories`` holds, per strategy, each video's iteration records and object count.
    """
    grouped: dict[str, list[tuple[int, Curve]]] = {}
    for strategy, videos in histories.items():
        curve = dataset_curve([h for h, _ in videos], [objects for _, objects in videos])
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
