"""The data options: constrained types, and the groups of `VideoSegDataModule`'s options.

LightningCLI (jsonargparse) reads these annotations on ``__init__`` arguments and dataclass fields,
and refuses a value outside them with one line naming the option (``data.loader.batch_size``),
before any class is built or any file written. For type checkers they are plain ``int`` and
``float``. Each group is a dataclass that the command line nests: ``--data.loader.batch_size 8``,
or ``loader: {batch_size: 8}`` under ``data:`` in a config. The annotations here are evaluated at
once (no ``from __future__ import annotations``), so that jsonargparse reads the constrained types
rather than the plain ones type checkers see.
"""

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from frugalseg.data.sources import LabelSource

if TYPE_CHECKING:
    PositiveInt = int
    NonNegativeInt = int
    PositiveFloat = float
    NonNegativeFloat = float
    Probability = float
else:
    from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt, restricted_number_type

    PositiveFloat = restricted_number_type(
        "FinitePositiveFloat", float, [(">", 0.0), ("<", math.inf)], docstring="finite float > 0"
    )
    NonNegativeFloat = restricted_number_type(
        "FiniteNonNegativeFloat", float, [(">=", 0.0), ("<", math.inf)], docstring="finite float ≥ 0"
    )
    Probability = ClosedUnitInterval  # float in 0…1


@dataclass(frozen=True)
class RecipeOptions:
    """Which training samples are drawn.

    Args:
        name: frame-mix or coarse-mix recipe name (``N1``, ``B3``, ``C30``, ``clicks``, …).
        budget: total training samples the recipe keeps (default: one per manually labelled clip).
        seed: seed of the recipe's draw.
    """

    name: str = "B3"
    budget: PositiveInt | None = None
    seed: NonNegativeInt = 0


@dataclass(frozen=True)
class SplitOptions:
    """The data set's split of each stage.

    Args:
        train: split the recipe draws its samples from.
        val: split validation reads (its manual labels).
        test: split testing reads (default: ``val``).
    """

    train: str = "train"
    val: str = "val"
    test: str | None = None


@dataclass(frozen=True)
class AugmentOptions:
    """The random geometry of training samples.

    Args:
        crop_size: training crop (height, width) after a random scale in ``scale_range``;
            ``None`` trains on whole frames without geometric augmentation.
        scale_range: range of the random scale applied before the crop.
        flip_prob: probability of a horizontal flip of a training sample.
    """

    crop_size: tuple[PositiveInt, PositiveInt] | None = None
    scale_range: tuple[PositiveFloat, PositiveFloat] = (0.5, 2.0)
    flip_prob: Probability = 0.5


@dataclass(frozen=True)
class LoaderOptions:
    """How frames are read and batched.

    Args:
        batch_size: training samples per batch (per device).
        val_batch_size: validation and test samples per batch (default: ``batch_size``).
        num_workers: data-loader processes per device.
        load_scale: resize factor applied on load to every split (0.25 turns 2048×1024 into 512×256).
        cache_frames: keep frames resized to ``load_scale`` < 1 in ``$FRUGALSEG_CACHE/frames`` after
            their first decoding, so a frame is decoded in full once, not every epoch; frames of video
            files are kept at any ``load_scale`` (reading one at random decodes from a keyframe).
        cache_flows: keep the DIS flows of temporal pairs and neighbours in ``$FRUGALSEG_CACHE/flows``
            after they are first computed, so no epoch after the first computes a flow.
        check_memory: before training, refuse a batch (``batch_size`` × frames × crop) that could not
            fit in the device's free memory by a rough lower bound, instead of being killed.
    """

    batch_size: PositiveInt = 4
    val_batch_size: PositiveInt | None = None
    num_workers: NonNegativeInt = 2
    load_scale: PositiveFloat = 1.0
    cache_frames: bool = True
    cache_flows: bool = True
    check_memory: bool = True


@dataclass(frozen=True)
class LabelOptions:
    """Where the labels other than the data set's own come from.

    Args:
        pseudo: where the recipe's ``pseudo`` labels come from: a label store folder that any
            ``frugalseg label propagate`` run wrote (flow or SAM 2, any settings), or a source such as
            ``frugalseg.autolabel.sources.FlowLabels`` (default: flow labels made into the cache).
        clicks: where the ``clicks`` labels of the ``clicks`` recipe come from: a store of
            ``frugalseg label clicks`` or a source (default: ``SimulatedClicks`` made into the cache).
        refined: where the ``refined_coarse`` labels of an ``RC{X}`` recipe come from: a store of
            ``frugalseg label refine-coarse`` (no default: refining needs SAM 2 weights).
        manual: a label store whose ``fine`` labels replace the data set's manual labels of the
            training split (``label import`` of a tool's export, ``annotate export`` of a session);
            None: the data set's own. Validation and test keep the data set's.
        min_confidence: training pixels of a stored label whose confidence map (written by the flow
            engine beside each label) is below this value (0…1) are ignored; 0 keeps them all.
    """

    pseudo: LabelSource | str | None = None
    clicks: LabelSource | str | None = None
    refined: LabelSource | str | None = None
    manual: LabelSource | str | None = None
    min_confidence: Probability = 0.0


@dataclass(frozen=True)
class TemporalOptions:
    """The frames a sample carries beyond the student's window, and what they are for.

    Args:
        consistency: compute TC on validation/test (one more frame and two flows per sample).
        train_pair: the same frame pair and flows for training samples (temporal consistency
            fine-tuning, paper 000).
        train_same_frame: training windows repeat the labelled frame (TDNet's first stage).
        neighbours: unlabelled earlier frames per training sample, with flows (WeClick's MFD: 2).
        neighbour_window: the neighbours are drawn among this many frames before the sample's (4).
    """

    consistency: bool = True
    train_pair: bool = False
    train_same_frame: bool = False
    neighbours: NonNegativeInt = 0
    neighbour_window: NonNegativeInt = 4


@dataclass(frozen=True)
class PredictOptions:
    """What ``frugalseg predict`` segments.

    Args:
        split: split whose anchor frames are segmented (default: the ``val`` split); no labels are needed.
        frames: frames to segment instead: a folder of frames (each sub-folder one video), a video file
            (``.mp4`` …) or a folder of video files.
        stream: segment ``frames`` frame by frame with the student's ``step()``, which keeps its memory
            (one frame's work per frame, on one device; whole frames, no sliding window).
    """

    split: str | None = None
    frames: str | None = None
    stream: bool = False


#: Where each option of the flat ``data:`` block of earlier releases went (the CLI refuses the old keys).
MOVED_OPTIONS = {
    "recipe": "recipe.name",
    "budget": "recipe.budget",
    "seed": "recipe.seed",
    "train_split": "splits.train",
    "val_split": "splits.val",
    "test_split": "splits.test",
    "crop_size": "augment.crop_size",
    "scale_range": "augment.scale_range",
    "flip_prob": "augment.flip_prob",
    "batch_size": "loader.batch_size",
    "val_batch_size": "loader.val_batch_size",
    "num_workers": "loader.num_workers",
    "load_scale": "loader.load_scale",
    "cache_frames": "loader.cache_frames",
    "cache_flows": "loader.cache_flows",
    "check_memory": "loader.check_memory",
    "pseudo_labels": "labels.pseudo",
    "click_labels": "labels.clicks",
    "refined_labels": "labels.refined",
    "manual_labels": "labels.manual",
    "min_confidence": "labels.min_confidence",
    "temporal_consistency": "temporal.consistency",
    "train_temporal_pair": "temporal.train_pair",
    "train_same_frame": "temporal.train_same_frame",
    "neighbours": "temporal.neighbours",
    "neighbour_window": "temporal.neighbour_window",
    "predict_split": "predict.split",
    "predict_frames": "predict.frames",
    "predict_stream": "predict.stream",
}

__all__ = [
    "MOVED_OPTIONS",
    "AugmentOptions",
    "LabelOptions",
    "LoaderOptions",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "PredictOptions",
    "Probability",
    "RecipeOptions",
    "SplitOptions",
    "TemporalOptions",
]
