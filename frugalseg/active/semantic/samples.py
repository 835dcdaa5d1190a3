"""What a person labels in the semantic loop (paper 000, HVSA): samples of a granularity, and which ones.

A granularity cuts every frame into samples, each a set of pixels a person labels with every class
it holds:

* ``frame`` — the whole frame is one sample;
* ``rectangle`` — squares of ``size`` pixels tiling the frame from its top-left corner (those on the
  right and bottom edges are cut by the frame), the paper's "Rec" settings;
* ``superpixel`` — SLIC superpixels (`skimage.segmentation.slic`), a weight-free stand-in for the
  paper's SpixelFCN. scikit-image is a dependency for this one function: OpenCV has SLIC only in its
  contrib build (``cv2.ximgproc``), which would replace the ``opencv-python-headless`` wheel the
  package depends on, and scikit-image's SLIC is the reference implementation, deterministic and
  with no weights.

`SamplePool` holds the region map of every frame of one video and numbers its samples;
`SimulatedSemanticAnnotator` labels the chosen samples from the ground truth (every other pixel is
ignore). A selector picks the next samples of one iteration (``select(view, count)``):

* `RandomSampleSelector` — unlabelled samples drawn at random, seeded per video and iteration;
* `UniformSampleSelector` — frames only: evenly spaced frames on the first iteration, then each the
  frame farthest in time from those labelled;
* `DiversitySampleSelector` — eq. 7 of paper 000 with farthest-first: each pick is the sample whose
  feature vector is farthest (L2) from its nearest labelled or already picked sample; with nothing
  labelled the first is the sample nearest the mean feature (the most typical one). Per-sample
  features come from per-frame feature maps by `pool_features`;
* `UncertaintySampleSelector` — the samples of the highest mean entropy of the current softmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.segmentation import slic

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.files import keyed_rng
from frugalseg.errors import ConfigError, DataError

GRANULARITIES = ("frame", "rectangle", "superpixel")


@dataclass(frozen=True)
class Granularity:
    """How frames are cut into samples (see the module docstring).

    Attributes:
        name: ``frame``, ``rectangle`` or ``superpixel``.
        size: side of a rectangle, in pixels (``rectangle`` only).
        segments: about how many superpixels per frame (``superpixel`` only).
        compactness: SLIC's balance of colour and space; larger gives squarer superpixels.
    """

    name: str = "frame"
    size: int = 40
    segments: int = 100
    compactness: float = 10.0

    def __post_init__(self) -> None:
        if self.name not in GRANULARITIES:
            raise ConfigError(
                "granularity",
                f"unknown sample granularity {self.name!r}; choose from {', '.join(GRANULARITIES)}",
            )
        if self.size < 1:
            raise ConfigError("size", f"a rectangle's side must be ≥ 1 pixel, got {self.size}")
        if self.segments < 1:
            raise ConfigError("segments", f"must be ≥ 1 superpixel per frame, got {self.segments}")

    def settings(self) -> dict[str, Any]:
        """The fields that change how this granularity cuts frames (a loop's state keeps these alone)."""
        kept = {"frame": (), "rectangle": ("size",), "superpixel": ("segments", "compactness")}[self.name]
        return {"name": self.name, **{key: getattr(self, key) for key in kept}}

    def check_frame_size(self, width: int, height: int) -> None:
        """Refuse frames of ``width``×``height`` pixels that this granularity cannot cut (`ConfigError`)."""
        if self.name == "rectangle" and (self.size > height or self.size > width):
            raise ConfigError(
                "size",
                f"rectangles of {self.size}×{self.size} pixels are larger than the {width}×{height} "
                f"frame; choose a size ≤ {min(height, width)}",
            )

    def regions(self, frame: np.ndarray) -> np.ndarray:
        """The H×W int32 map of the samples of ``frame`` (H×W×3 uint8 RGB), numbered 0…n−1.

        Raises:
            ConfigError: a rectangle larger than the frame.
        """
        height, width = frame.shape[:2]
        self.check_frame_size(width, height)
        if self.name == "frame":
            return np.zeros((height, width), np.int32)
        if self.name == "rectangle":
            columns = -(-width // self.size)
            rows, cols = np.indices((height, width)) // self.size
            result: np.ndarray = (rows * columns + cols).astype(np.int32)
            return result
        labels = slic(frame, n_segments=self.segments, compactness=self.compactness, start_label=0)
        _, numbered = np.unique(labels, return_inverse=True)
        return numbered.reshape(height, width).astype(np.int32)


@dataclass(frozen=True)
class SampleKey:
    """One sample: a frame and a region of its region map."""

    frame: int
    region: int


class SamplePool:
    """The samples of one video at one granularity, numbered frame by frame.

    Args:
        frames: the video's frames (H×W×3 uint8 RGB), at the size they are labelled.
        granularity: how each frame is cut into samples.
    """

    def __init__(self, frames: Sequence[np.ndarray], granularity: Granularity) -> None:
        self.granularity = granularity
        self.regions = [granularity.regions(frame) for frame in frames]
        self.samples = [
            SampleKey(t, int(r))
            for t, regions in enumerate(self.regions)
            for r in range(int(regions.max()) + 1)
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def mask(self, sample: SampleKey) -> np.ndarray:
        """The H×W bool mask of the pixels of ``sample``."""
        result: np.ndarray = self.regions[sample.frame] == sample.region
        return result

    def pool(self, maps: Sequence[np.ndarray]) -> np.ndarray:
        """The mean of per-frame C×h×w ``maps`` over each sample's pixels, N×C float64.

        A map coarser than the frame (a backbone's stride) is read at the cell each pixel falls
        in, so the mean is that of the map upsampled to the frame by nearest neighbour. Each
        (sample, cell) pair that occurs is weighted by its pixel count, so the work and memory grow
        with the map and the frame, not with their product.
        """
        if len(maps) != len(self.regions):
            raise ValueError(f"{len(maps)} maps for a video of {len(self.regions)} frames")
        pooled = []
        for regions, array in zip(self.regions, maps, strict=True):
            values = np.asarray(array)
            if values.ndim != 3:
                raise ValueError(f"expected a C×h×w map per frame, got shape {values.shape}")
            channels, h, w = values.shape
            height, width = regions.shape
            rows = np.arange(height) * h // height
            cols = np.arange(width) * w // width
            cells = (rows[:, None] * w + cols[None, :]).ravel()
            pairs, counts = np.unique(regions.ravel().astype(np.int64) * (h * w) + cells, return_counts=True)
            region, cell = np.divmod(pairs, h * w)
            weighted = values.reshape(channels, h * w).T[cell].astype(np.float64) * counts[:, None]
            starts = np.flatnonzero(np.r_[True, region[1:] != region[:-1]])  # regions are 0…n−1, sorted
            sums = np.add.reduceat(weighted, starts, axis=0)
            pooled.append(sums / np.add.reduceat(counts, starts)[:, None])
        return np.concatenate(pooled)


class SimulatedSemanticAnnotator:
    """Labels chosen samples with the ground truth of their pixels; every other pixel stays ignore.

    Args:
        ground_truth: the class map of every frame (H×W), None where a frame has none.
        video: the video's name, for errors.
        ignore_index: the label value of pixels no one labelled.
    """

    def __init__(
        self,
        ground_truth: Sequence[np.ndarray | None],
        video: str = "video",
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.ground_truth = list(ground_truth)
        self.video = video
        self.ignore_index = ignore_index

    def label(
        self, pool: SamplePool, samples: Sequence[SampleKey], labels: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """``labels`` (all ignore when None) with the pixels of ``samples`` set to their ground truth.

        Raises:
            DataError: a chosen sample's frame has no ground truth (nothing is returned).
        """
        for sample in samples:
            truth = self.ground_truth[sample.frame]
            if truth is None:
                raise DataError(
                    f"{self.video} frame {sample.frame}", "no ground truth to label the chosen sample from"
                )
        shapes = [regions.shape for regions in pool.regions]
        out = [
            np.full(shape, self.ignore_index, np.uint8) if labels is None else np.array(labels[t], np.uint8)
            for t, shape in enumerate(shapes)
        ]
        for sample in samples:
            mask = pool.mask(sample)
            out[sample.frame][mask] = np.asarray(self.ground_truth[sample.frame])[mask]
        return out


@dataclass
class SampleView:
    """What a sample selector may look at on one iteration of one video.

    Attributes:
        pool: the video's samples.
        labelled: indices (into ``pool.samples``) of the samples labelled so far.
        key: the video's name (seeds differ per video).
        iteration: the iteration about to be made (seeds differ per iteration).
        features: N×D feature vector of each sample (`SamplePool.pool` of feature maps), or None.
        probabilities: the current C×h×w softmax of every frame, or None.
    """

    pool: SamplePool
    labelled: set[int]
    key: str = ""
    iteration: int = 0
    features: np.ndarray | None = None
    probabilities: Sequence[np.ndarray] | None = None

    @property
    def candidates(self) -> list[int]:
        """Indices of the samples not labelled yet, in order."""
        return [i for i in range(len(self.pool)) if i not in self.labelled]

    def rng(self, seed: int) -> np.random.Generator:
        """A generator for this video and iteration only, so a resumed loop draws what it would have."""
        return keyed_rng(seed, self.key, self.iteration)


class SampleSelector:
    """Base of the sample selectors: ``name``, a seed, and ``select(view, count) -> sample indices``."""

    name = ""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def select(self, view: SampleView, count: int) -> list[int]:
        """Up to ``count`` samples to label next, among ``view.candidates``."""
        raise NotImplementedError


def _check_count(view: SampleView, count: int) -> list[int]:
    if count < 1:
        raise ConfigError("budget", f"each iteration must label ≥ 1 sample, got {count}")
    return view.candidates


class RandomSampleSelector(SampleSelector):
    """Unlabelled samples drawn at random, seeded."""

    name = "random"

    def select(self, view: SampleView, count: int) -> list[int]:
        """``count`` candidates drawn without repeats by the seeded generator."""
        candidates = _check_count(view, count)
        chosen = view.rng(self.seed).permutation(len(candidates))[:count]
        return [candidates[int(i)] for i in chosen]


def farthest_first(
    features: np.ndarray, labelled: Sequence[int], candidates: Sequence[int], count: int
) -> list[int]:
    """Greedy farthest-first: each pick is the candidate farthest from its nearest labelled or picked item.

    With nothing labelled the first pick is the candidate nearest the mean of ``features``; ties go
    to the earlier candidate.
    """
    points = np.asarray(features, np.float64)
    remaining = list(candidates)
    if labelled:
        nearest = np.sqrt(((points[remaining][:, None] - points[list(labelled)][None]) ** 2).sum(-1)).min(1)
    else:
        nearest = -np.sqrt(((points[remaining] - points.mean(0)) ** 2).sum(-1))
    picked: list[int] = []
    while remaining and len(picked) < count:
        best = int(np.argmax(nearest))
        chosen = remaining.pop(best)
        picked.append(chosen)
        nearest = np.delete(nearest, best)
        if remaining:
            distance = np.sqrt(((points[remaining] - points[chosen]) ** 2).sum(-1))
            nearest = distance if len(picked) == 1 and not labelled else np.minimum(nearest, distance)
    return picked


class UniformSampleSelector(SampleSelector):
    """Evenly spread frames (``frame`` granularity only)."""

    name = "uniform"

    def select(self, view: SampleView, count: int) -> list[int]:
        """Evenly spaced frames first, then the frames farthest in time from the labelled ones."""
        candidates = _check_count(view, count)
        if view.pool.granularity.name != "frame":
            raise ConfigError(
                "selector",
                f"the 'uniform' selector spreads whole frames; use it with granularity 'frame', "
                f"not {view.pool.granularity.name!r}",
            )
        if not view.labelled:
            frames = len(view.pool)
            picks = sorted({min(frames - 1, int((i + 0.5) * frames / count)) for i in range(count)})
            return picks[:count]
        times = np.array([[s.frame] for s in view.pool.samples], np.float64)
        return farthest_first(times, sorted(view.labelled), candidates, count)


class DiversitySampleSelector(SampleSelector):
    """Farthest-first in feature space from the labelled samples (eq. 7 of paper 000)."""

    name = "diversity"

    def select(self, view: SampleView, count: int) -> list[int]:
        """The ``count`` candidates farthest-first from the labelled samples on ``view.features``."""
        candidates = _check_count(view, count)
        if view.features is None:
            raise ConfigError("selector", "the 'diversity' selector needs a feature vector per sample")
        if len(view.features) != len(view.pool):
            raise ValueError(f"{len(view.features)} feature vectors for {len(view.pool)} samples")
        return farthest_first(view.features, sorted(view.labelled), candidates, count)


def entropy_maps(probabilities: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The 1×h×w pixel entropy (nats) of each frame's C×h×w softmax."""
    maps = []
    for probs in probabilities:
        p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
        maps.append(-(p * np.log(p)).sum(0, keepdims=True))
    return maps


class UncertaintySampleSelector(SampleSelector):
    """The samples whose current prediction is least certain: the highest mean pixel entropy."""

    name = "uncertainty"

    def select(self, view: SampleView, count: int) -> list[int]:
        """The ``count`` candidates of the highest mean entropy; ties to the earlier sample."""
        candidates = _check_count(view, count)
        if view.probabilities is None:
            raise ConfigError(
                "selector", "the 'uncertainty' selector needs the current softmax of every frame"
            )
        scores = view.pool.pool(entropy_maps(view.probabilities))[:, 0]
        order = sorted(candidates, key=lambda i: (-scores[i], i))
        return order[:count]


SAMPLE_SELECTORS: dict[str, type[SampleSelector]] = {
    cls.name: cls
    for cls in (
        RandomSampleSelector,
        UniformSampleSelector,
        DiversitySampleSelector,
        UncertaintySampleSelector,
    )
}


def get_sample_selector(name: str, seed: int = 0) -> SampleSelector:
    """The sample selector called ``name``; an unknown name raises `ConfigError` listing the known ones."""
    if name not in SAMPLE_SELECTORS:
        raise ConfigError(
            "selector", f"unknown sample selector {name!r}; choose from {', '.join(SAMPLE_SELECTORS)}"
        )
    return SAMPLE_SELECTORS[name](seed)
