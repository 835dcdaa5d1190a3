"""The training samples of the loop's two networks, rebuilt from the states of simulated loops (paper 002).

This module sits above the loop and the run-folder reader (`simulate.run_loop_folders`): it
replays saved loops, which nothing below it does.

**QNet** (section 2.2):

EVA-VOS trains its quality network (`frugalseg.zoo.QualityNet`) on the masks of simulated loops:
every mask the propagation predicted at every iteration, labelled with the bin of its J against the
ground truth (`quality_bin`). A saved loop state (`annotate simulate`) keeps only its final masks, so
`quality_samples` rebuilds the masks of each iteration k from the frames annotated in iterations
≤ k (one engine cache makes this cheap: each iteration adds only the segments around its frame) and
samples every frame that is not annotated at that iteration, once per object. Frames where the
object is absent from both the truth and the mask are left out, as the official code removes
no-object frames.

`QualitySamples` holds them compactly — each frame resized to the network's input once, each
object's mask as packed bits, and the J at full size — and is saved as one ``.npz`` (atomically),
so that making the samples (slow: propagation) and training (fast) are separate steps.
`run_quality_samples` collects those of every loop state of an ``annotate simulate`` folder.

**The type policy** (`type_policies.LearnedTypePolicy`): on every frame a loop state leaves
unannotated, both annotation types are tried with the simulated annotator and their J&F gains
recorded with the frame's features (`episode_samples`; `run_samples` over a run folder).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugalseg.active.objects.choosing.type_policies import FEATURES, frame_features, type_context
from frugalseg.active.objects.engines import LoopEngine
from frugalseg.active.objects.simulation.annotation_types import (
    ANNOTATION_TYPES,
    annotate_frame,
    annotation_priors,
    frame_quality,
)
from frugalseg.active.objects.simulation.loop import Video
from frugalseg.active.objects.simulation.runs import run_loop_folders
from frugalseg.active.objects.state import VideoState
from frugalseg.active.objects.tools.click_models import ClickToMask
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.io import array_sha1, write_bytes_atomic
from frugalseg.errors import ConfigError, DataError
from frugalseg.metrics.mask_scores import region_similarity
from frugalseg.zoo.quality_net import (
    DEFAULT_BINS,
    DEFAULT_INPUT_SIZE,
    quality_bins,
    resize_frame,
    resize_mask,
)

SAMPLES_FORMAT = "frugalseg-quality-samples"
VOID = 255
#: The arrays of `QualitySamples` with one entry per sample (``frames`` holds each frame once).
PER_SAMPLE = ("frame_index", "packed_masks", "j", "video", "frame", "object", "iteration")


def quality_bin(j: float, bins: int = DEFAULT_BINS) -> int:
    """The quality bin of a J (IoU) value: bins of width ``1 / bins``, J = 1 in the last one.

    Args:
        j: J in 0…1 (0.05 → 1, 0.999 → 19, 1.0 → 19 with 20 bins).
        bins: number of bins.
    """
    return int(quality_bins(torch.tensor(float(j)), bins))


@dataclass
class QualitySamples:
    """(frame, object mask, J) samples of QNet, stored compactly (see the module docstring).

    Attributes:
        frames: F×S×S×3 uint8, the resized frames the samples show, each stored once.
        frame_index: N int64, the row of ``frames`` each sample shows.
        packed_masks: N×S×⌈S/8⌉ uint8, each sample's object mask at S×S, bits packed along rows.
        j: N float64, the J of each sample's mask against the truth at full size.
        video: N str, the video of each sample.
        frame: N int64, the frame of each sample in its loop's numbering.
        object: N int64, the object id of each sample.
        iteration: N int64, the loop iteration whose masks the sample has.
    """

    frames: np.ndarray
    frame_index: np.ndarray
    packed_masks: np.ndarray
    j: np.ndarray
    video: np.ndarray
    frame: np.ndarray
    object: np.ndarray
    iteration: np.ndarray

    @classmethod
    def empty(cls, input_size: int = DEFAULT_INPUT_SIZE) -> QualitySamples:
        """No samples.

        Args:
            input_size: side of the square frames and masks they would have.
        """
        size, width = input_size, (input_size + 7) // 8
        ints = np.zeros(0, np.int64)
        return cls(
            frames=np.zeros((0, size, size, 3), np.uint8),
            frame_index=ints,
            packed_masks=np.zeros((0, size, width), np.uint8),
            j=np.zeros(0, np.float64),
            video=np.zeros(0, "<U1"),
            frame=ints,
            object=ints,
            iteration=ints,
        )

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.j)

    @property
    def input_size(self) -> int:
        """Side of the square frames and masks."""
        return int(self.frames.shape[1])

    def masks(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The object masks of ``rows`` as N×S×S uint8 0/1.

        Args:
            rows: the samples whose masks are wanted (None: all).
        """
        packed = self.packed_masks if rows is None else self.packed_masks[np.asarray(rows, np.int64)]
        return np.unpackbits(packed, axis=-1, count=self.input_size)

    def labels(self, bins: int = DEFAULT_BINS) -> np.ndarray:
        """The quality bin of each sample's J (int64).

        Args:
            bins: number of bins.
        """
        return quality_bins(torch.from_numpy(np.asarray(self.j, np.float64)), bins).numpy()

    def subset(self, keep: np.ndarray | Sequence[int]) -> QualitySamples:
        """The samples ``keep`` selects, with only the frames they show.

        Args:
            keep: a bool mask over the samples, or their row numbers.
        """
        rows = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, np.int64)
        used, index = np.unique(self.frame_index[rows], return_inverse=True)
        per_sample = {name: getattr(self, name)[rows] for name in PER_SAMPLE[1:]}
        return QualitySamples(frames=self.frames[used], frame_index=index.astype(np.int64), **per_sample)

    def of_videos(self, names: Sequence[str]) -> QualitySamples:
        """The samples of some videos (e.g. a held-out split by video).

        Args:
            names: the videos.
        """
        return self.subset(np.isin(self.video, list(names)))

    @classmethod
    def concatenate(cls, parts: Sequence[QualitySamples]) -> QualitySamples:
        """All samples of ``parts`` in order; identical frames are stored once.

        Args:
            parts: sample sets of one input size.

        Raises:
            ConfigError: parts of different input sizes, or no parts.
        """
        if not parts:
            raise ConfigError("samples", "nothing to concatenate: no sample sets given")
        sizes = sorted({p.input_size for p in parts})
        if len(sizes) > 1:
            raise ConfigError("samples", f"sample sets of different input sizes {sizes} cannot be mixed")
        rows: dict[str, int] = {}
        frames: list[np.ndarray] = []
        index: list[np.ndarray] = []
        for part in parts:
            local = np.asarray([_frame_row(rows, frames, f) for f in part.frames], np.int64)
            index.append(local[part.frame_index])
        per_sample = {name: np.concatenate([getattr(p, name) for p in parts]) for name in PER_SAMPLE[1:]}
        return cls(
            frames=np.stack(frames) if frames else cls.empty(sizes[0]).frames,
            frame_index=np.concatenate(index),
            **per_sample,
        )

    def save(self, path: str | Path) -> Path:
        """Write the samples as one compressed ``.npz`` (atomically); returns ``path``.

        Args:
            path: the file to write.
        """
        buffer = io.BytesIO()
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        np.savez_compressed(buffer, format=np.asarray(SAMPLES_FORMAT), **arrays)
        write_bytes_atomic(path, buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> QualitySamples:
        """The samples `save` wrote.

        Args:
            path: the ``.npz`` file.

        Raises:
            DataError: naming the file, when it is missing, not an ``.npz`` of quality samples, or
                its arrays do not agree in length.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "quality samples file does not exist")
        found = _read_npz(path)
        if str(found.get("format", "")) != SAMPLES_FORMAT:
            raise DataError(path, f"not quality samples (its format entry is not {SAMPLES_FORMAT!r})")
        missing = [f.name for f in fields(cls) if f.name not in found]
        if missing:
            raise DataError(path, f"quality samples without {', '.join(missing)}")
        samples = cls(**{f.name: found[f.name] for f in fields(cls)})
        _check_arrays(path, samples)
        return samples


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file, read without unpickling; DataError naming the file otherwise."""
    unreadable = "not a readable .npz archive of arrays (`QualitySamples.save` writes quality samples)"
    failures = (OSError, ValueError, zipfile.BadZipFile, EOFError)
    try:
        data = np.load(path, allow_pickle=False)  # a pickle is refused, never run
    except failures as err:
        raise DataError(path, f"{unreadable}: {type(err).__name__}") from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DataError(path, unreadable)
    with data:
        try:
            return {name: data[name] for name in data.files}
        except failures as err:
            raise DataError(path, f"{unreadable}: {type(err).__name__}") from err


def _frame_row(rows: dict[str, int], frames: list[np.ndarray], frame: np.ndarray) -> int:
    """The row of ``frame`` in ``frames``, appended when no identical frame is there yet."""
    key = array_sha1(frame)
    if key not in rows:
        rows[key] = len(frames)
        frames.append(frame)
    return rows[key]


def _check_arrays(path: Path, samples: QualitySamples) -> None:
    """Raise DataError unless every per-sample array has one entry per sample and the shapes fit."""
    lengths = {name: len(getattr(samples, name)) for name in PER_SAMPLE}
    size = samples.frames.shape[1] if samples.frames.ndim == 4 else -1
    shapes_fit = (
        samples.frames.shape[1:] == (size, size, 3)
        and samples.packed_masks.shape[1:] == (size, (size + 7) // 8)
        and len(set(lengths.values())) == 1
    )
    index = samples.frame_index
    if not shapes_fit or (len(index) and (index.min() < 0 or index.max() >= len(samples.frames))):
        raise DataError(
            path,
            f"quality samples whose arrays disagree: frames {samples.frames.shape}, masks "
            f"{samples.packed_masks.shape}, lengths {lengths}",
        )


class _Collector:
    """Samples of one video, built one at a time; each frame is resized once."""

    def __init__(self, video: Video, input_size: int) -> None:
        self.video, self.size = video, input_size
        self.rows: dict[int, int] = {}
        self.frames: list[np.ndarray] = []
        self.records: list[tuple[int, int, int, float, int]] = []
        self.masks: list[np.ndarray] = []

    def add(self, t: int, obj: int, mask: np.ndarray, j: float, iteration: int) -> None:
        """Record frame ``t``'s mask of object ``obj`` (bool, full size) with its ``j``."""
        if t not in self.rows:
            self.rows[t] = len(self.frames)
            self.frames.append(resize_frame(self.video.frames[t], self.size))
        self.records.append((self.rows[t], t, obj, j, iteration))
        self.masks.append(np.packbits(resize_mask(mask, self.size), axis=-1))

    def samples(self) -> QualitySamples:
        """What was recorded, as `QualitySamples`."""
        if not self.records:
            return QualitySamples.empty(self.size)
        row, t, obj, j, iteration = (np.asarray(c) for c in zip(*self.records, strict=True))
        return QualitySamples(
            frames=np.stack(self.frames),
            frame_index=row.astype(np.int64),
            packed_masks=np.stack(self.masks),
            j=j.astype(np.float64),
            video=np.full(len(row), self.video.name),
            frame=t.astype(np.int64),
            object=obj.astype(np.int64),
            iteration=iteration.astype(np.int64),
        )


def annotation_rounds(state: VideoState) -> list[tuple[int, frozenset[int]]]:
    """Each iteration of a loop's history and the frames annotated in it or before, in order.

    Args:
        state: the loop state; the iteration of each of its annotations is read.

    Raises:
        ConfigError: an annotation names a frame whose mask the state lacks.
    """
    made: dict[int, set[int]] = {}
    for annotation in state.annotations:
        made.setdefault(annotation.iteration, set()).add(annotation.frame)
    lacking = sorted({t for frames in made.values() for t in frames} - set(state.annotated))
    if lacking:
        raise ConfigError(
            "state", f"the loop state of {state.video!r} annotates frames {lacking} but holds no mask of them"
        )
    rounds: list[tuple[int, frozenset[int]]] = []
    annotated: frozenset[int] = frozenset()
    for iteration in sorted(made):
        annotated = annotated | made[iteration]
        rounds.append((iteration, annotated))
    return rounds


def quality_samples(
    video: Video,
    state: VideoState,
    engine: LoopEngine,
    *,
    input_size: int = DEFAULT_INPUT_SIZE,
    cache: Any = None,
) -> QualitySamples:
    """The samples of every iteration of a loop ``state`` on ``video`` (see the module docstring).

    Args:
        video: the loop's video, with ground truth.
        state: the loop's state; its annotated masks and the iteration of each annotation are read.
        engine: the propagation engine the loop used.
        input_size: side of the square frames and masks kept.
        cache: the engine's cache of this video, shared with other states of it (None: a fresh one).

    Raises:
        ConfigError: the video has no ground truth, or another number of frames than the state.
    """
    truth = video.require_truth()
    if state.num_frames != len(video.frames):
        raise ConfigError(
            "video",
            f"the loop state of {state.video!r} has {state.num_frames} frames, video {video.name!r} "
            f"{len(video.frames)}; the same stride and frame limit are needed",
        )
    cache = engine.new_cache() if cache is None else cache
    collector = _Collector(video, input_size)
    for iteration, annotated in annotation_rounds(state):
        given = {t: state.annotated[t] for t in sorted(annotated)}
        masks = engine.propagate(video.frames, given, first_frames=state.objects, cache=cache).masks
        for t in range(state.num_frames):
            if t not in annotated:
                _sample_frame(collector, t, masks[t], truth[t], sorted(state.objects), iteration)
    return collector.samples()


def _sample_frame(
    collector: _Collector, t: int, mask: np.ndarray, truth: np.ndarray, objects: list[int], iteration: int
) -> None:
    """Add one sample per object on frame ``t`` (in the truth or the mask), with its J (void left out)."""
    void = truth == VOID
    for obj in objects:
        predicted, target = mask == obj, truth == obj
        if predicted.any() or target.any():
            collector.add(t, obj, predicted, region_similarity(predicted, target, void), iteration)


def run_quality_samples(
    run: str | Path,
    videos: Sequence[str] | None = None,
    *,
    loops: Sequence[str] | None = None,
    engine: LoopEngine,
    input_size: int = DEFAULT_INPUT_SIZE,
) -> QualitySamples:
    """`quality_samples` of every loop state of an ``annotate simulate`` run folder.

    Args:
        run: the run's folder (``run.json`` and ``runs/<strategy>/seed<k>/<video>/``).
        videos: use only these videos (None: all); e.g. the training clips of a split by clip.
        loops: use only the loops of these strategies and seeds, ``<frames>-<types>/seed<k>`` (None: all).
        engine: the propagation engine the run used (its ``run.json`` records which), so that the
            rebuilt masks are the loop's.
        input_size: side of the square frames and masks kept.

    Raises:
        DataError: the folder holds no run or no loop state of the videos asked for, or a video's
            frames, masks or states cannot be read.
    """
    run = Path(run)
    parts = []
    for source, folders in run_loop_folders(run, videos, loops):
        video = source.load()
        cache = engine.new_cache()  # one per video, shared by its loops as the run shared it
        for folder in folders:
            state, _ = VideoState.load(folder)
            parts.append(quality_samples(video, state, engine, input_size=input_size, cache=cache))
    if not parts:
        raise DataError(run, "holds no loop state of the videos asked for")
    return QualitySamples.concatenate(parts)


def episode_samples(
    video: Video,
    state: VideoState,
    costs: AnnotationCosts = DEFAULT_COSTS,
    click_model: ClickToMask | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N×F) and the J&F gain of each type (N×K) on every frame ``state`` left unannotated.

    Each type is tried with the simulated annotator on the frame's current mask; the gain is that of
    the frame's J&F over the video's objects, as `OracleTypePolicy` measures it.
    """
    truth = video.require_truth()
    objects = sorted(state.objects)
    features, gains = [], []
    for t in range(state.num_frames):
        if t in state.annotated:
            continue
        current = state.masks[t]
        before = sum(frame_quality(current, truth[t], objects)) / 2
        results = {
            kind: annotate_frame(
                kind,
                video.frames[t],
                current,
                truth[t],
                costs,
                model=click_model,
                known=annotation_priors(kind, state, t, video.frames, current, truth[t]),
            )
            for kind in ANNOTATION_TYPES
        }
        after = {k: sum(frame_quality(r.mask, truth[t], objects)) / 2 for k, r in results.items()}
        features.append(frame_features(type_context(state, t, video.frames[t]), t))
        gains.append([after[k] - before for k in ANNOTATION_TYPES])
    width = len(FEATURES)
    return (
        np.asarray(features, np.float32).reshape(-1, width),
        np.asarray(gains, np.float32).reshape(-1, len(ANNOTATION_TYPES)),
    )


def run_samples(
    run: str | Path,
    videos: Sequence[str] | None = None,
    *,
    loops: Sequence[str] | None = None,
    costs: AnnotationCosts = DEFAULT_COSTS,
    click_model: ClickToMask | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`episode_samples` of every loop state of an ``annotate simulate`` run folder.

    Args:
        run: the run's folder (``run.json`` and ``runs/<strategy>/seed<k>/<video>/``).
        videos: use only these videos (None: all); e.g. the training clips of a split by clip.
        loops: use only the loops of these strategies and seeds, ``<frames>-<types>/seed<k>`` (None: all).
        costs: annotation costs.
        click_model: the click-to-mask model of the ``clicks`` type (None: GrabCut).

    Returns:
        The features, the gains, and the video of each sample.

    Raises:
        DataError: the folder holds no run, or a video's frames or masks cannot be read.
    """
    features, gains, names = [], [], []
    for source, folders in run_loop_folders(run, videos, loops):
        video = source.load()
        for folder in folders:
            state, whole = VideoState.load(folder)
            if not whole or not state.masks:
                continue
            x, y = episode_samples(video, state, costs, click_model)
            features.append(x)
            gains.append(y)
            names += [source.name] * len(x)
    if not features:
        raise DataError(run, "holds no finished loop state of the videos asked for")
    return np.concatenate(features), np.concatenate(gains), names
