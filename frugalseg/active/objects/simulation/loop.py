"""The annotation loop of paper 002 on one video, and the J&F-against-hours curves of many.

One iteration: select a frame (`frame_selectors`) → select the annotation type (`type_policies`) → the
(simulated) annotator annotates → the frame's new mask joins the annotated set K → every frame's
mask is propagated again from K (`propagation`) → the iteration is recorded (human seconds so
far, J&F where ground truth exists) and the state is saved (`state`). The first iterations annotate
frame 0 with a mask, then, with a mask, each frame on which an object first appears (the paper's
t = 0: the annotator points out the objects). A selector that ``replaces`` may choose a frame
annotated with clicks or a box again: a mask then replaces them. A killed loop resumes at its last
saved iteration.

Quality: each object's J and F are averaged over every frame of the loop (annotated frames
included: they are part of the output; a frame where an object is absent and predicted absent
scores 1), then over the objects; a frame's quality is the mean J&F of the objects on it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from frugalseg.active.objects.choosing.frame_selectors import FrameSelector, SelectionView
from frugalseg.active.objects.choosing.type_policies import TypePolicy, TypeView, type_context
from frugalseg.active.objects.engines import LoopEngine
from frugalseg.active.objects.simulation.annotation_types import (
    AnnotationResult,
    annotate_frame,
    annotate_mask,
    annotation_priors,
    frame_quality,
)
from frugalseg.active.objects.state import STATE_FILE, Annotation, IterationRecord, VideoState
from frugalseg.active.propagation import unreliability
from frugalseg.active.run_folder import figure_png
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.files import array_sha1
from frugalseg.errors import ConfigError

if TYPE_CHECKING:
    from frugalseg.active.objects.tools.click_models import ClickToMask

TARGET_JF = 0.85


@dataclass
class Video:
    """A video for the loop: frames (H×W×3 uint8 RGB), ground-truth object ids (None for real use), names.

    ``indices`` are the frames' indices in the original sequence (they differ with a frame stride).
    """

    name: str
    frames: list[np.ndarray]
    truth: list[np.ndarray] | None
    indices: list[int]

    def require_truth(self) -> list[np.ndarray]:
        """The ground truth; `ConfigError` when the video has none."""
        if self.truth is None:
            raise ConfigError("truth", f"video {self.name}: the simulated annotator needs ground truth")
        return self.truth

    def first_frames(self) -> dict[int, int]:
        """Object id → the first frame its ground truth shows it on."""
        first: dict[int, int] = {}
        for t, ids in enumerate(self.require_truth()):
            for value in np.unique(ids):
                if value not in (0, 255) and int(value) not in first:
                    first[int(value)] = t
        return first


class AnnotationLoop:
    """Runs the loop on one video with a frame selector, a type policy and a propagation engine.

    Args:
        video: the video, with ground truth (the simulated annotator draws from it).
        selector: the frame selector.
        policy: the annotation-type policy.
        engine: the propagation engine (`frugalseg.active.objects.engines`).
        folder: where the state is saved after every iteration (and resumed from).
        costs: annotation costs.
        config: recorded in the state; a resumed loop must have the same.
        cache: the engine's cache of this video (``engine.new_cache()``), shared with other loops
            on the same video; None: a fresh one.
        click_model: the click-to-mask model of the ``clicks`` type (None: the default, ``starcut``).
    """

    def __init__(
        self,
        video: Video,
        selector: FrameSelector,
        policy: TypePolicy,
        engine: LoopEngine,
        folder: str | Path,
        *,
        costs: AnnotationCosts = DEFAULT_COSTS,
        config: dict[str, Any] | None = None,
        cache: Any = None,
        click_model: ClickToMask | None = None,
    ) -> None:
        if not isinstance(engine, LoopEngine):
            raise TypeError(
                f"the loop needs a LoopEngine (active.objects.engines), got {type(engine).__name__}; "
                "wrap a single-anchor engine in AnchorFusionEngine"
            )
        self.video = video
        self.selector = selector
        self.policy = policy
        self.engine = engine
        self.folder = Path(folder)
        self.costs = costs
        self.config = dict(config or {})
        self.cache = engine.new_cache() if cache is None else cache
        self.click_model = click_model
        self.first_frames = video.first_frames()
        self.initial = sorted({0, *self.first_frames.values()})
        self._scores: dict[str, tuple[list[float], list[float]]] = {}
        self.state = self._open()

    def _open(self) -> VideoState:
        if (self.folder / STATE_FILE).is_file():
            state, whole = VideoState.load(self.folder)
            if state.config != self.config or state.video != self.video.name:
                raise ConfigError(
                    "out",
                    f"{self.folder}: holds a loop of video {state.video!r} with config {state.config}, "
                    f"not {self.video.name!r} with {self.config}; use another folder",
                )
            if state.annotated and not whole:
                self._propagate(state)
            if state.annotated:
                state.quality = self._evaluate(state)[2]
            return state
        return VideoState(
            video=self.video.name,
            num_frames=len(self.video.frames),
            objects=self.first_frames,
            config=self.config,
        )

    @property
    def objects(self) -> list[int]:
        """The ids of the video's objects, in order."""
        return sorted(self.first_frames)

    @property
    def finished(self) -> bool:
        """Whether no frame is left to choose (see `run`)."""
        return self.state.done and not (self.selector.replaces and self.state.replaceable)

    def _propagate(self, state: VideoState) -> None:
        result = self.engine.propagate(
            self.video.frames, state.annotated, first_frames=self.first_frames, cache=self.cache
        )
        state.masks, state.disagreement, state.unsure = result.masks, result.disagreement, result.unsure

    def _frame_scores(self, t: int, mask: np.ndarray) -> tuple[list[float], list[float]]:
        """Per-object J and F of frame ``t`` (cached by the mask's content)."""
        key = f"{t}:{array_sha1(mask)}"
        if key not in self._scores:
            truth = self.video.require_truth()[t]
            js, fs = [], []
            for obj in self.objects:
                j, f = frame_quality(mask, truth, [obj])
                js.append(j)
                fs.append(f)
            self._scores[key] = (js, fs)
        return self._scores[key]

    def _evaluate(self, state: VideoState) -> tuple[float, float, list[float]]:
        """(J, F, per-frame J&F) of the current masks; a video without objects scores 1, as its frames do."""
        return self._quality(state.masks)

    def _quality(self, masks: Sequence[np.ndarray]) -> tuple[float, float, list[float]]:
        """(J, F, per-frame J&F) of ``masks``, every frame's (see `_evaluate`)."""
        if not self.objects:
            return 1.0, 1.0, [1.0] * len(masks)
        js, fs = zip(*(self._frame_scores(t, m) for t, m in enumerate(masks)), strict=True)
        j_obj, f_obj = np.mean(js, 0), np.mean(fs, 0)
        per_frame = [round(float((np.mean(j) + np.mean(f)) / 2), 6) for j, f in zip(js, fs, strict=True)]
        return float(np.mean(j_obj)), float(np.mean(f_obj)), per_frame

    def _lookahead(self, frame: int, mask: np.ndarray | None = None) -> float:
        """The video's J&F were ``frame`` annotated next with ``mask`` (default: its ground-truth mask).

        One propagation from the annotated frames and that mask, through the loop's cache: what the
        engine makes here is reused when the frame is chosen and on later iterations. The ground-truth
        mask is `LookaheadSelector`'s; another type's mask is `LookaheadTypePolicy`'s.
        """
        if mask is None:
            mask = annotate_mask(self.video.require_truth()[frame], self.costs).mask
        annotated = {**self.state.annotated, frame: mask}
        masks = self.engine.propagate(
            self.video.frames, annotated, first_frames=self.first_frames, cache=self.cache
        ).masks
        j, f, _ = self._quality(masks)
        return (j + f) / 2

    def _attempt(self, frame: int, kind: str) -> AnnotationResult:
        truth = self.video.require_truth()[frame]
        current = self.state.masks[frame] if self.state.masks else np.zeros_like(truth)
        frames = self.video.frames
        known = annotation_priors(kind, self.state, frame, frames, current, truth)
        return annotate_frame(
            kind, frames[frame], current, truth, self.costs, model=self.click_model, known=known
        )

    def _gain(self, frame: int, result: AnnotationResult) -> float:
        truth = self.video.require_truth()[frame]
        before = frame_quality(self.state.masks[frame], truth, self.objects)
        after = frame_quality(result.mask, truth, self.objects)
        return (sum(after) - sum(before)) / 2

    def _selection_view(self) -> SelectionView:
        """What the frame selector sees of the current state."""
        state = self.state
        return SelectionView(
            key=self.video.name,
            iteration=state.iteration,
            num_frames=state.num_frames,
            annotated=set(state.annotated),
            frames=self.video.frames,
            masks=state.masks,
            quality=state.quality,
            unreliability=unreliability(state.disagreement, state.unsure, state.annotated),
            lookahead=self._lookahead,
            kinds=state.kinds,
        )

    def _choose_type(self, frame: int) -> tuple[str, AnnotationResult]:
        """The type policy's type for ``frame`` and the simulated annotator's annotation of that type."""
        state = self.state
        attempts: dict[str, AnnotationResult] = {}

        def attempt(kind: str) -> AnnotationResult:
            if kind not in attempts:
                attempts[kind] = self._attempt(frame, kind)
            return attempts[kind]

        now = state.history[-1].jf if state.history else None

        def video_gain(result: AnnotationResult) -> float:
            assert now is not None
            return self._lookahead(frame, result.mask) - now

        view = TypeView(
            self.video.name,
            state.iteration,
            frame,
            attempt,
            lambda r: self._gain(frame, r),
            type_context(state, frame, self.video.frames[frame]),
            video_gain,
        )
        kind = self.policy.choose(view)
        return kind, attempt(kind)

    def step(self) -> IterationRecord:
        """Make one iteration, save the state, and return its record."""
        state = self.state
        iteration = state.iteration
        if iteration < len(self.initial):
            frame, kind = self.initial[iteration], "mask"
            result = self._attempt(frame, kind)
        else:
            frame = self.selector.select(self._selection_view())
            if frame in state.annotated:  # chosen again: a mask replaces its clicks or box
                kind, result = "mask", self._attempt(frame, "mask")
            else:
                kind, result = self._choose_type(frame)
        seconds = round(result.total_seconds, 6)
        annotations = [
            Annotation(frame, obj, kind, round(s, 6), result.clicks.get(obj, 0), iteration)
            for obj, s in sorted(result.seconds.items())
        ]
        state.annotations.extend(annotations)
        state.annotated[frame] = result.mask
        self._propagate(state)
        j, f, state.quality = self._evaluate(state)
        record = IterationRecord(
            iteration=iteration,
            frame=frame,
            kind=kind,
            seconds=seconds,
            total_seconds=round(state.seconds, 6),
            jf=round((j + f) / 2, 6),
            j=round(j, 6),
            f=round(f, 6),
        )
        state.history.append(record)
        state.save(self.folder)
        return record

    def run(
        self,
        budget_seconds: float,
        *,
        on_step: Callable[[IterationRecord], None] | None = None,
        steps: int | None = None,
    ) -> VideoState:
        """Iterate while less than ``budget_seconds`` is spent and frames are left (``steps``: at most).

        Frames are left while one is not annotated, or, with a selector that ``replaces``, while one is
        annotated with clicks or a box.
        """
        if not budget_seconds > 0:
            raise ConfigError("budget", f"the budget must be > 0, got {budget_seconds}")
        made = 0
        while self.state.seconds < budget_seconds and not self.finished and (steps is None or made < steps):
            record = self.step()
            made += 1
            if on_step is not None:
                on_step(record)
        return self.state


@dataclass
class Curve:
    """J&F (and J, F) against human hours."""

    hours: list[float]
    jf: list[float]
    j: list[float] = field(default_factory=list)
    f: list[float] = field(default_factory=list)

    def hours_to_reach(self, target: float = TARGET_JF) -> float | None:
        """Hours at which J&F first reaches ``target`` (linear between points), None if never."""
        for i, value in enumerate(self.jf):
            if value >= target:
                if i == 0:
                    return self.hours[0]
                h0, h1, v0 = self.hours[i - 1], self.hours[i], self.jf[i - 1]
                return h0 + (h1 - h0) * (target - v0) / (value - v0)
        return None

    def at(self, hours: float) -> float:
        """J&F after ``hours`` (the last point not beyond it; NaN before the first point)."""
        index = int(np.searchsorted(self.hours, hours, side="right")) - 1
        return float("nan") if index < 0 else self.jf[index]


def dataset_curve(histories: Sequence[Sequence[IterationRecord]], weights: Sequence[int]) -> Curve:
    """The curve of videos annotated in lockstep.

    Point r sums their hours and averages their quality after r iterations (weighted by objects, or
    equally where no video has any; a video that stopped keeps its last values).
    """
    rounds = max(len(h) for h in histories)
    weight = np.asarray(weights, np.float64)
    if not weight.any():
        weight = np.ones_like(weight)
    curve = Curve([], [], [], [])
    for r in range(rounds):
        last = [h[min(r, len(h) - 1)] for h in histories]
        curve.hours.append(round(sum(rec.total_seconds for rec in last) / 3600, 6))
        for name in ("jf", "j", "f"):
            values = np.asarray([getattr(rec, name) for rec in last], np.float64)
            getattr(curve, name).append(round(float((values * weight).sum() / weight.sum()), 6))
    return curve


def mean_curve(curves: Sequence[Curve]) -> Curve:
    """The mean of several curves (seeds) on the union of their hours.

    Each curve is held at its last value before a point (a curve is a staircase: quality changes
    when an annotation is finished).
    """
    if len(curves) == 1:
        return curves[0]
    start = max(c.hours[0] for c in curves)
    grid = sorted({h for c in curves for h in c.hours if h >= start})
    return Curve(grid, [round(float(np.mean([c.at(h) for c in curves])), 6) for h in grid])


def curves_to_json(curves: dict[str, dict[str, Any]]) -> str:
    """Stable JSON text of the curves (sorted keys, finite numbers)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(curves), indent=1, sort_keys=True) + "\n"


def plot_curves(curves: dict[str, Curve], *, title: str = "", target: float = TARGET_JF) -> bytes:
    """PNG bytes of J&F against hours, one line per strategy, the ``target`` line marked.

    Straight lines join the points, as `Curve.hours_to_reach` reads them: the hours printed to reach the
    target are where its line crosses it (steps had crossed later, at the next point).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, curve in curves.items():
        axes.plot(curve.hours, curve.jf, marker=".", label=name)
    axes.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"J&F = {target}")
    axes.set_xlabel("annotation time (hours)")
    axes.set_ylabel("J&F")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return figure_png(figure)
