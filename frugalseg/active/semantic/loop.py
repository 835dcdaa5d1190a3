"""The semantic annotation loop of paper 000 (HVSA) on one video: select, label, fine-tune, predict, repeat.

A budget of clicks — a percentage of the clicks that labelling every frame fully would take — is
split equally over ``iterations`` (3 in the paper). Each iteration:

1. **select** samples of the granularity (`active.semantic.samples`) with the selector: ``diversity``
   reads the previous iteration's student features pooled per sample (the first iteration, before
   any fine-tuning, a weight-free descriptor: `colour_descriptors`), ``uncertainty`` the entropy of
   the previous predictions (the first iteration: the initial student's), ``random`` and
   ``uniform`` nothing. As many samples are taken as fit the iteration's share of the budget (the
   budget not spent by an iteration carries over); at least one, so a budget smaller than every
   sample is overspent, and the ledger says by how much;
2. **label** them with the simulated annotator (the ground truth of their pixels) and **charge**
   their polygon clicks (`frugalseg.active.semantic.click_cost`);
3. **fine-tune** the learner (`frugalseg.lightning_modules.semantic_learner.FineTuningLearner`, or
   any object with its methods) on every label so far, continuing from the previous iteration;
4. **predict** every frame: the video's generated labels are the predictions, with the pixels a
   person labelled kept as labelled;
5. **score** the generated labels against the ground truth (mIoU, pixel accuracy, boundary IoU with
   d = 2, and the temporal consistency TC of consecutive labels, `frugalseg.metrics`) and, for the
   ``frame`` granularity, the baseline at equal clicks: the same labelled frames carried to the
   others by flow propagation (`frugalseg.active.propagation.propagate_annotations`: each frame
   from the nearest labelled frame on each side, fused).

Folder of a loop's state, saved atomically after every iteration::

    state.json              the commit point, written last: config, labelled samples, records, names
    weights/iter02.safetensors  the student after the last finished iteration (older ones removed)
    labels/00012.png        the generated label of frame 12 (train ids)

A loop killed at any point resumes from its last ``state.json``: the learner loads the weights it
names, and labels that no longer match their recorded SHA-1 are predicted again. Every iteration is
seeded and nothing in the state depends on the wall clock, so a resumed loop ends where an
uninterrupted one does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from frugalseg.active.propagation import PropagationCache, propagate_annotations
from frugalseg.active.semantic.click_cost import samples_cost
from frugalseg.active.semantic.samples import (
    Granularity,
    SampleKey,
    SamplePool,
    SampleSelector,
    SampleView,
    SimulatedSemanticAnnotator,
    get_sample_selector,
)
from frugalseg.data.clips import IGNORE_INDEX, Clip
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.formats.base import Format
from frugalseg.data.io import (
    array_sha1,
    encode_png,
    image_size,
    imread,
    read_frame,
    write_bytes_atomic,
    write_json_atomic,
)
from frugalseg.errors import ConfigError, DataError
from frugalseg.flow import DISFlow, FlowCache
from frugalseg.metrics import BoundaryIoU, DatasetMeanIoU, TemporalConsistency

STATE_FILE = "state.json"
VERSION = 1
DEFAULT_ITERATIONS = 3
BOUNDARY_WIDTH = 2
NO_GROUND_TRUTH = "no ground truth: the simulated annotator and the click cost need it on every frame"


class StudentOutputs(Protocol):
    """The learner's view of every frame."""

    @property
    def probabilities(self) -> list[np.ndarray]:
        """The C×H×W softmax of each frame."""
        ...

    @property
    def features(self) -> list[np.ndarray]:
        """The D×h×w features of each frame."""
        ...


class Learner(Protocol):
    """What the loop trains (`FineTuningLearner` is one)."""

    @property
    def settings(self) -> dict[str, Any]:
        """What decides its results (recorded in the state; a resumed loop must match)."""
        ...

    def reset(self) -> None:
        """Start from the initial weights."""
        ...

    def fit(
        self,
        frames: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        iteration: int,
        flow_cache: str | Path | None = None,
    ) -> StudentOutputs:
        """Fine-tune on the labels so far, then read every frame."""
        ...

    def predict(self, frames: Sequence[np.ndarray]) -> StudentOutputs:
        """Read every frame with the current weights."""
        ...

    def save(self, path: str | Path) -> None:
        """Write the weights atomically."""
        ...

    def load(self, path: str | Path) -> None:
        """Load weights written by `save`."""
        ...


@dataclass(frozen=True)
class SemanticVideo:
    """One video of the loop: its frames (H×W×3 uint8 RGB) and the ground truth of every frame."""

    name: str
    frames: list[np.ndarray]
    ground_truth: list[np.ndarray | None]
    num_classes: int


@dataclass(frozen=True)
class Quality:
    """How good a video's labels are against its ground truth (NaN where nothing could be counted)."""

    miou: float
    pixel_accuracy: float
    boundary_iou: float
    tc: float


@dataclass(frozen=True)
class SemanticIterationRecord:
    """One finished iteration: what it labelled and cost, and the quality it left the labels at.

    Attributes:
        iteration: 0, 1, …
        samples: samples labelled in this iteration.
        clicks: their clicks.
        total_clicks: clicks so far (the ledger).
        clicks_percent: ``total_clicks`` as a percentage of labelling every frame fully.
        hours: human hours so far.
        quality: of the generated labels.
        baseline: of flow propagation of the same labelled frames (``frame`` granularity), else None.
    """

    iteration: int
    samples: int
    clicks: int
    total_clicks: int
    clicks_percent: float
    hours: float
    quality: Quality
    baseline: Quality | None = None


@dataclass(frozen=True)
class LabelledSample:
    """A sample a person labelled, in which iteration, for how many clicks."""

    frame: int
    region: int
    iteration: int
    clicks: int


@dataclass(frozen=True)
class SemanticLoopConfig:
    """The loop's settings (recorded in its state).

    Attributes:
        granularity: how frames are cut into samples.
        selector: ``random``, ``uniform`` (frames), ``diversity`` or ``uncertainty``.
        budget_percent: clicks to spend, as a percentage of labelling every frame fully (0 < b ≤ 100).
        iterations: the budget is split equally over these.
        seed: seeds the random selector.
        baseline: also score flow propagation of the labelled frames (``frame`` granularity only).
    """

    granularity: Granularity = field(default_factory=Granularity)
    selector: str = "diversity"
    budget_percent: float = 10.0
    iterations: int = DEFAULT_ITERATIONS
    seed: int = 0
    baseline: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.budget_percent <= 100:
            raise ConfigError(
                "budget", f"the budget must be 0 < b ≤ 100 % of the clicks, got {self.budget_percent}"
            )
        if self.iterations < 1:
            raise ConfigError("iterations", f"must be ≥ 1, got {self.iterations}")
        get_sample_selector(self.selector)
        if self.selector == "uniform" and self.granularity.name != "frame":
            raise ConfigError(
                "selector",
                f"the 'uniform' selector spreads whole frames; use it with granularity 'frame', "
                f"not {self.granularity.name!r}",
            )

    @property
    def name(self) -> str:
        """``<granularity>-<selector>``, the curve this loop belongs to."""
        return f"{self.granularity.name}-{self.selector}"

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON."""
        return {**asdict(self), "granularity": asdict(self.granularity)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SemanticLoopConfig:
        """The settings `to_json` wrote."""
        return cls(**{**data, "granularity": Granularity(**data["granularity"])})


@dataclass(frozen=True)
class LoopResult:
    """A finished loop as the curves read it: its settings, its video's name and its iterations."""

    config: SemanticLoopConfig
    video: str
    history: list[SemanticIterationRecord]


def _granularity_settings(config: Any) -> Any:
    """A state's settings with those of its granularity that cut frames alone (`Granularity.settings`)."""
    loop = config.get("loop") if isinstance(config, dict) else None
    if not isinstance(loop, dict) or not isinstance(loop.get("granularity"), dict):
        return config
    try:
        granularity = Granularity(**loop["granularity"]).settings()
    except (TypeError, ConfigError):
        return config
    return {**config, "loop": {**loop, "granularity": granularity}}


def check_video(video: SemanticVideo) -> None:
    """Raise unless ``video`` can be annotated: ≥ 2 frames of one size, ground truth of that size on each.

    Raises:
        ConfigError: fewer than 2 frames.
        DataError: a frame without ground truth, ground truth of another size, or none labelled (all void).
    """
    _check_length(video.name, len(video.frames))
    if len(video.ground_truth) != len(video.frames):
        raise DataError(
            video.name, f"{len(video.ground_truth)} ground-truth maps for {len(video.frames)} frames"
        )
    shape = video.frames[0].shape[:2]
    for t, truth in enumerate(video.ground_truth):
        if truth is None:
            raise DataError(f"{video.name} frame {t}", NO_GROUND_TRUTH)
        if truth.shape != shape or video.frames[t].shape[:2] != shape:
            raise DataError(
                f"{video.name} frame {t}",
                f"frame {video.frames[t].shape[:2]} or ground truth {truth.shape} is not frame 0's {shape}",
            )
    if all((truth == IGNORE_INDEX).all() for truth in video.ground_truth if truth is not None):
        raise DataError(
            video.name,
            "its ground truth labels no pixel (every one void): the simulated annotator has nothing to draw",
        )


def _check_length(video: str, frames: int, *, cut: bool = True) -> None:
    """Refuse a video of under 2 frames: an option's fault where it was ``cut`` short, else the data's."""
    if frames < 2:
        problem = f"the semantic loop needs a video of at least 2 frames, got {frames}"
        raise ConfigError("frames", f"{video}: {problem}") if cut else DataError(video, problem)


def _check_scale(scale: float) -> None:
    if not 0 < scale <= 1:
        raise ConfigError("scale", f"must be 0 < scale ≤ 1, got {scale}")


def _scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(width, height) of a frame shrunk by ``scale``, a pixel at least."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_clip(
    fmt: Format,
    clip: Clip,
    granularities: Sequence[Granularity],
    max_frames: int | None = None,
    scale: float = 1.0,
) -> None:
    """Refuse a clip whose video (`read_video`) the loop cannot annotate, reading file headers only.

    Checks what `check_video` checks but the sizes: ≥ 2 frames and ground truth on each (naming the
    frame file without it); and each granularity on the first frame's size.

    Args:
        fmt: the data set.
        clip: the clip whose video `read_video` would read.
        granularities: the sample granularities its loops cut frames into.
        max_frames: the first frames of the clip read (None: all).
        scale: the factor frames are shrunk by (0 < scale ≤ 1).

    Raises:
        ConfigError: a bad ``scale``, fewer than 2 frames, or a granularity the frame size cannot take.
        DataError: naming a frame without ground truth.
    """
    _check_scale(scale)
    offsets = clip.present_offsets[:max_frames]
    _check_length(clip.clip_id, len(offsets), cut=len(offsets) < len(clip.present_offsets))
    truth = fmt.ground_truth(clip)
    for offset in offsets:
        if offset not in truth:
            raise DataError(clip.frame_path(offset), NO_GROUND_TRUTH)
    width, height = _scaled_size(*image_size(clip.frame_path(offsets[0])), scale)
    for granularity in granularities:
        granularity.check_frame_size(width, height)


def read_video(fmt: Format, clip: Clip, max_frames: int | None = None, scale: float = 1.0) -> SemanticVideo:
    """A clip's present frames (the first ``max_frames``) and their ground truth, resized by ``scale``.

    Frames are shrunk with area averaging and ground truth by nearest neighbour, so class ids stay
    class ids. A frame without ground truth gets None (`check_video` refuses it).
    """
    _check_scale(scale)
    offsets = clip.present_offsets[:max_frames]
    truth = fmt.ground_truth(clip)
    frames, labels = [], []
    for offset in offsets:
        frame = read_frame(clip.frame_path(offset))
        size = _scaled_size(frame.shape[1], frame.shape[0], scale)
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if scale != 1 else frame)
        ref = truth.get(offset)
        label = None if ref is None else fmt.read_label(ref)
        if ref is not None and label is not None and label.shape != frame.shape[:2]:  # had been stretched
            (height, width), (rows, columns) = frame.shape[:2], label.shape
            raise DataError(
                ref.path,
                f"ground truth of {columns}×{rows}, but its frame {clip.frame_path(offset)} is "
                f"{width}×{height}",
            )
        if label is not None and scale != 1:
            label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        labels.append(label)
    return SemanticVideo(clip.clip_id, frames, labels, fmt.num_classes)


def colour_descriptors(pool: SamplePool, frames: Sequence[np.ndarray], bins: int = 4) -> np.ndarray:
    """A weight-free feature vector per sample, for the first iteration's diversity selection.

    Each sample gets its mean CIE Lab colour and its colour histogram (RGB quantised into ``bins``
    levels per channel); a ``frame`` sample also gets the frame shrunk to 8×16 (its layout). Each
    part is divided by the square root of its length so that none outweighs the others.
    """
    maps = []
    for frame in frames:
        small = cv2.resize(
            frame, (max(1, frame.shape[1] // 4), max(1, frame.shape[0] // 4)), interpolation=cv2.INTER_AREA
        )
        lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32) / 255
        levels = (small.astype(np.int32) * bins) // 256
        index = (levels[..., 0] * bins + levels[..., 1]) * bins + levels[..., 2]
        onehot = np.eye(bins**3, dtype=np.float32)[index]
        maps.append(np.concatenate([lab, onehot], axis=2).transpose(2, 0, 1))
    pooled = pool.pool(maps)
    parts = [pooled[:, :3] / np.sqrt(3), pooled[:, 3:] / np.sqrt(bins**3)]
    if pool.granularity.name == "frame":
        layout = np.stack(
            [cv2.resize(frame, (16, 8), interpolation=cv2.INTER_AREA).ravel() / 255 for frame in frames]
        )
        parts.append(layout / np.sqrt(layout.shape[1]))
    return np.concatenate(parts, axis=1)


def video_flows(
    frames: Sequence[np.ndarray], cache: str | Path | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The DIS flows (t → t−1, t−1 → t) of each consecutive pair, through the shared flow cache."""
    engine = DISFlow()
    compute = engine if cache is None else FlowCache(engine, cache)
    return [
        (compute(frames[t], frames[t - 1]), compute(frames[t - 1], frames[t])) for t in range(1, len(frames))
    ]


def score_labels(
    labels: Sequence[np.ndarray],
    ground_truth: Sequence[np.ndarray | None],
    num_classes: int,
    flows: Sequence[tuple[np.ndarray, np.ndarray]],
    ignore_index: int = IGNORE_INDEX,
) -> Quality:
    """mIoU, pixel accuracy and boundary IoU (d = 2) against the ground truth, and TC of consecutive labels.

    A label's ``ignore_index`` pixels (none: a propagation leaves them unlabelled) are scored as wrong where
    the ground truth has a class: an extra class that no truth holds, left out of the means.

    Args:
        labels: every frame's label (H×W class ids).
        ground_truth: every frame's ground truth, None where a frame has none (left out).
        num_classes: classes C.
        flows: `video_flows` of the video.
        ignore_index: the label value left out.
    """
    miou = DatasetMeanIoU(num_classes + 1, ignore_index=ignore_index)
    boundary = BoundaryIoU(num_classes + 1, ignore_index=ignore_index, width=BOUNDARY_WIDTH)
    tc = TemporalConsistency(num_classes, ignore_index=ignore_index)
    tensors = [torch.from_numpy(np.asarray(label, np.int64))[None] for label in labels]
    for label, truth in zip(tensors, ground_truth, strict=True):
        if truth is not None:
            target = torch.from_numpy(np.asarray(truth, np.int64))[None]
            unlabelled = label.masked_fill(label == ignore_index, num_classes)  # the extra class: wrong
            miou.update(unlabelled, target)
            boundary.update(unlabelled, target)
    for t, (to_prev, to_cur) in enumerate(flows, start=1):
        tc.update(
            tensors[t - 1],
            tensors[t],
            torch.from_numpy(to_prev).permute(2, 0, 1)[None].float(),
            torch.from_numpy(to_cur).permute(2, 0, 1)[None].float(),
        )
    confmat = miou.confmat.double()
    total = float(confmat.sum())
    return Quality(
        miou=round(float(miou.per_class()[:num_classes].nanmean()), 6),
        pixel_accuracy=round(float(confmat.trace()) / total, 6) if total else float("nan"),
        boundary_iou=round(float(boundary.per_class()[:num_classes].nanmean()), 6),
        tc=round(float(tc.compute()), 6) if flows else float("nan"),
    )


def _quality(data: dict[str, Any] | None) -> Quality | None:
    return None if data is None else Quality(**{k: float("nan") if v is None else v for k, v in data.items()})


class SemanticLoop:
    """The HVSA loop on one video (see the module docstring).

    Everything is checked when the loop is made, before anything is written: the video (≥ 2 frames,
    ground truth on each), the granularity (a rectangle no larger than the frame) and the selector.

    Args:
        video: the video and its ground truth.
        folder: where its state is saved (a rerun resumes it).
        config: granularity, selector, budget, iterations, seed.
        learner: the student fine-tuned on each iteration.
        costs: seconds per click and per clicked frame, for the hours.
        flow_cache: folder of cached flows (shared by every loop on the same frames); None: ``folder/flows``.
        baseline_engine: the propagation engine of the baseline (``frame`` granularity, with
            ``config.baseline``); None: `frugalseg.autolabel.FlowPropagator` with its defaults.
    """

    def __init__(
        self,
        video: SemanticVideo,
        folder: str | Path,
        config: SemanticLoopConfig,
        learner: Learner,
        costs: AnnotationCosts = DEFAULT_COSTS,
        flow_cache: str | Path | None = None,
        baseline_engine: Any = None,
    ) -> None:
        check_video(video)
        self.video = video
        self.folder = Path(folder)
        self.config = config
        self.learner = learner
        self.costs = costs
        self.flow_cache = Path(flow_cache) if flow_cache is not None else self.folder / "flows"
        self.selector: SampleSelector = get_sample_selector(config.selector, config.seed)
        self.pool = SamplePool(video.frames, config.granularity)
        self.truth = [np.asarray(t, np.uint8) for t in video.ground_truth if t is not None]
        self.annotator = SimulatedSemanticAnnotator(self.truth, video.name)
        self.sample_clicks = samples_cost(self.truth, self.pool, self.pool.samples, costs, video=video.name)
        self.budget = config.budget_percent / 100 * self.sample_clicks.full_clicks
        self.baseline_engine = baseline_engine
        self.index = {sample: i for i, sample in enumerate(self.pool.samples)}
        self.labelled: list[LabelledSample] = []
        self.history: list[SemanticIterationRecord] = []
        self.labels: list[np.ndarray] = []
        self._outputs: StudentOutputs | None = None
        self._flows: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._propagation = PropagationCache()

    @property
    def state_config(self) -> dict[str, Any]:
        """What a saved state must have been made with to be resumed by this loop."""
        return {
            "video": self.video.name,
            "num_frames": len(self.video.frames),
            "loop": self.config.to_json(),
            "learner": self.learner.settings,
            "costs": asdict(self.costs),
        }

    @property
    def result(self) -> LoopResult:
        """Its settings, its video's name and the iterations so far, as `simulate.curves` reads them."""
        return LoopResult(self.config, self.video.name, self.history)

    @property
    def done(self) -> bool:
        """Whether every iteration is finished."""
        return len(self.history) >= self.config.iterations

    def run(self) -> list[SemanticIterationRecord]:
        """Run (or resume) the loop to its last iteration; returns one record per iteration."""
        self._resume()
        while not self.done:
            self.step()
        return self.history

    def step(self) -> SemanticIterationRecord:
        """Make one iteration and save the state."""
        iteration = len(self.history)
        chosen = self._select(iteration)
        cost = samples_cost(self.truth, self.pool, chosen, self.costs, video=self.video.name)
        self.labelled += [
            LabelledSample(s.frame, s.region, iteration, clicks)
            for s, clicks in zip(chosen, cost.per_sample, strict=True)
        ]
        sparse = self.sparse_labels()
        self._outputs = self.learner.fit(self.video.frames, sparse, iteration, self.flow_cache)
        self.labels = self._generated(self._outputs, sparse)
        total = sum(s.clicks for s in self.labelled)
        record = SemanticIterationRecord(
            iteration=iteration,
            samples=len(chosen),
            clicks=cost.clicks,
            total_clicks=total,
            clicks_percent=round(100 * total / self.sample_clicks.full_clicks, 6),
            hours=self.hours(),
            quality=self.score(self.labels),
            baseline=self._baseline(),
        )
        self.history.append(record)
        self.save()
        return record

    def hours(self) -> float:
        """Human hours of the samples labelled so far, summed exactly (a frame's overhead per iteration)."""
        clicks: dict[tuple[int, int], int] = {}
        for sample in self.labelled:
            key = (sample.iteration, sample.frame)
            clicks[key] = clicks.get(key, 0) + sample.clicks
        return sum(self.costs.clicks_seconds(count) for count in clicks.values()) / 3600

    def sparse_labels(self) -> list[np.ndarray]:
        """Every frame's human label so far (255 where no one labelled)."""
        samples = [SampleKey(s.frame, s.region) for s in self.labelled]
        return self.annotator.label(self.pool, samples)

    def score(self, labels: Sequence[np.ndarray]) -> Quality:
        """The quality of ``labels`` of this video (`score_labels`)."""
        if self._flows is None:
            self._flows = video_flows(self.video.frames, self.flow_cache)
        return score_labels(labels, self.truth, self.video.num_classes, self._flows)

    def _select(self, iteration: int) -> list[SampleKey]:
        labelled = {self.index[SampleKey(s.frame, s.region)] for s in self.labelled}
        view = SampleView(self.pool, labelled, key=self.video.name, iteration=iteration)
        if self.config.selector == "diversity":
            if iteration == 0:
                view.features = colour_descriptors(self.pool, self.video.frames)
            else:
                view.features = self.pool.pool(self._student_outputs().features)
        elif self.config.selector == "uncertainty":
            view.probabilities = self._student_outputs().probabilities
        spent = sum(s.clicks for s in self.labelled)
        budget = self.budget * (iteration + 1) / self.config.iterations - spent
        picks = self._fit_budget(view, budget)
        return [self.pool.samples[i] for i in picks]

    def _fit_budget(self, view: SampleView, budget: float) -> list[int]:
        """The selector's largest pick whose clicks fit ``budget`` (one sample at least)."""
        candidates = view.candidates
        if not candidates:
            raise ConfigError(
                "budget", f"{self.video.name}: every sample is labelled already; lower the budget"
            )
        clicks = self.sample_clicks.per_sample

        def cost(count: int) -> tuple[list[int], int]:
            picks = self.selector.select(view, count)
            return picks, sum(clicks[i] for i in picks)

        low, high = 1, len(candidates)
        while low < high:
            middle = (low + high + 1) // 2
            if cost(middle)[1] <= budget:
                low = middle
            else:
                high = middle - 1
        return cost(low)[0]

    def _student_outputs(self) -> StudentOutputs:
        """The current student's view of every frame (the initial student's before the first iteration)."""
        if self._outputs is None:
            self._outputs = self.learner.predict(self.video.frames)
        return self._outputs

    def _generated(self, outputs: StudentOutputs, sparse: Sequence[np.ndarray]) -> list[np.ndarray]:
        labels = []
        for probs, human in zip(outputs.probabilities, sparse, strict=True):
            predicted = np.asarray(probs).argmax(0).astype(np.uint8)
            labels.append(np.where(human != IGNORE_INDEX, human, predicted).astype(np.uint8))
        return labels

    def _baseline(self) -> Quality | None:
        if not self.config.baseline or self.config.granularity.name != "frame":
            return None
        if self.baseline_engine is None:
            from frugalseg.autolabel.flow_propagate import FlowPropagator

            self.baseline_engine = FlowPropagator()
        annotated = {s.frame: self.truth[s.frame] for s in self.labelled}
        propagated = propagate_annotations(
            self.video.frames, annotated, self.baseline_engine, cache=self._propagation
        )
        return self.score(propagated.masks)

    def save(self) -> None:
        """Write the state atomically: weights and labels first, ``state.json`` (the commit point) last."""
        weights = f"weights/iter{len(self.history):02d}.safetensors"
        self.learner.save(self.folder / weights)
        shas = []
        for t, label in enumerate(self.labels):
            path = self.folder / "labels" / f"{t:05d}.png"
            write_bytes_atomic(path, encode_png(label, path))
            shas.append(array_sha1(label))
        data = {
            "version": VERSION,
            "config": self.state_config,
            "full_clicks": self.sample_clicks.full_clicks,
            "labelled": [asdict(s) for s in self.labelled],
            "history": [asdict(r) for r in self.history],
            "weights": weights,
            "label_sha1": shas,
        }
        write_json_atomic(self.folder / STATE_FILE, _finite(data), indent=1)
        for old in (self.folder / "weights").glob("iter*.safetensors"):
            if old.name != Path(weights).name:
                old.unlink()

    def _resume(self) -> None:
        """Take up the saved state in ``folder``, if there is one (else start from the initial weights).

        Raises:
            DataError: ``state.json`` is damaged or of another version.
            ConfigError: the state was made with other settings (names the first that differs).
        """
        self.learner.reset()
        path = self.folder / STATE_FILE
        if not path.is_file():
            return
        data = _read_state(path)
        wanted = _granularity_settings(json.loads(json.dumps(_finite(self.state_config))))
        held = _granularity_settings(data["config"])
        if held != wanted:
            differ = "; ".join(_differences(held, wanted))
            raise ConfigError(
                "out",
                f"{path} was made with other settings ({differ}); rerun with those, or use another output "
                "folder",
            )
        # its own settings kept, those its granularity does not cut by too: its state and store name them
        self.config = SemanticLoopConfig.from_json(data["config"]["loop"])
        self.labelled = [LabelledSample(**s) for s in data["labelled"]]
        self.history = _records(data)
        self.learner.load(self.folder / data["weights"])
        labels = []
        for t, sha in enumerate(data["label_sha1"]):
            label = imread(self.folder / "labels" / f"{t:05d}.png", cv2.IMREAD_UNCHANGED)
            if label is None or array_sha1(label) != sha:
                labels = self._generated(self._student_outputs(), self.sparse_labels())
                break
            labels.append(label)
        self.labels = labels


def _read_state(path: Path) -> dict[str, Any]:
    """A loop's saved state; `DataError` when it is damaged or of another version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, f"not valid JSON ({err})") from err
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise DataError(path, f"not a semantic loop state of version {VERSION}")
    return data


def _records(state: dict[str, Any]) -> list[SemanticIterationRecord]:
    """The iteration records of a saved state."""
    return [
        SemanticIterationRecord(
            **{**r, "quality": _quality(r["quality"]), "baseline": _quality(r["baseline"])}
        )
        for r in state["history"]
    ]


def finished_loop(folder: Path) -> LoopResult | None:
    """The loop whose state ``folder`` holds, None unless every iteration of it is finished."""
    state = _read_state(folder / STATE_FILE)
    config = SemanticLoopConfig.from_json(state["config"]["loop"])
    history = _records(state)
    if len(history) < config.iterations:
        return None
    return LoopResult(config, state["config"]["video"], history)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats as None (JSON has neither)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _differences(saved: Any, wanted: Any, name: str = "") -> list[str]:
    """Each setting that differs, by its dotted name (nested ones in full), as ``name then → now``."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        keys = sorted(set(saved) | set(wanted))
        return [
            d for k in keys for d in _differences(saved.get(k), wanted.get(k), f"{name}.{k}" if name else k)
        ]
    return [] if saved == wanted else [f"{name} {json.dumps(saved)} then → {json.dumps(wanted)} now"]
