"""VideoSegDataModule: a data set + a recipe + label sources → batches of clips with mixed-source labels."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sized
from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from kornia.geometry.transform import warp_affine
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, SequentialSampler

from frugalseg.data.classes import ClassTable
from frugalseg.data.clips import ANCHOR_EXPLAINED, IGNORE_INDEX, Clip, LabelKind, offsets_shown
from frugalseg.data.formats import FORMATS, Format, detect_format, formats_like, get_format
from frugalseg.data.formats.base import clips_of
from frugalseg.data.formats.davis import OBJECT_MASK, DavisFormat
from frugalseg.data.formats.synthetic import default_synthetic_root, generate_synthetic_streets
from frugalseg.data.io import cache_dir, image_size
from frugalseg.data.normalization import IMAGENET_MEAN
from frugalseg.data.sources import SOURCE_OPTIONS, LabelSource
from frugalseg.datamodules.dataset import ClipSampleDataset
from frugalseg.datamodules.frames import check_one_size
from frugalseg.datamodules.memory import batch_bytes, free_memory
from frugalseg.datamodules.options import (
    AugmentOptions,
    LabelOptions,
    LoaderOptions,
    PositiveInt,
    PredictOptions,
    RecipeOptions,
    SplitOptions,
    TemporalOptions,
)
from frugalseg.datamodules.predict import PredictDataset, SameSizeBatchSampler, folder_items, split_items
from frugalseg.datamodules.recipes import (
    Sample,
    annotation_cost,
    check_served,
    draw_samples,
    get_recipe,
    implied_anchors,
    write_samples,
)
from frugalseg.datamodules.recipes import logger as draw_logger
from frugalseg.datamodules.transforms import ClipRandomGeometry, Normalize, in_precision
from frugalseg.errors import ConfigError, option_paths
from frugalseg.options import keep_plain_hyperparameters

logger = logging.getLogger(__name__)

#: Batch entries that hold flow fields (…×2×H×W, in pixels): geometry moves and rescales them.
FLOW_KEYS = ("neighbour_flows", "flow_to_prev", "flow_from_prev")


class VideoSegDataModule(L.LightningDataModule):
    """Training clips drawn by a named recipe, with labels from injected sources.

    Validation and test read manual labels only.

    Batches are dicts: ``frames`` B×T×3×H×W (past frames first), ``label``
    B×H×W (long, 255 = ignore), ``kind`` B (index of the :class:`LabelKind` of each label), ``meta``
    (clip id, offset, label kind, label file) and, for validation with ``temporal.consistency`` (and
    training with ``temporal.train_pair``), one more past frame plus ``flow_to_prev``/``flow_from_prev``
    B×2×H×W. With ``temporal.neighbours`` K, training batches also carry ``neighbours`` B×K×3×H×W,
    ``neighbour_offsets`` B×K and ``neighbour_flows`` B×K×2×H×W (see :class:`ClipSampleDataset`).
    Augmented training batches carry ``valid`` B×H×W, the pixels inside the scaled frame.

    Loaders give uint8 frames: `on_after_batch_transfer` (the Trainer's, on the device; call it yourself
    outside one) normalises them to a student's float input, and augments a batch while it trains.

    The options come in groups (`frugalseg.datamodules.options`), which the command line nests:
    ``--data.recipe.name B3``, ``--data.loader.batch_size 8``.

    Args:
        root: the data set folder. ``None`` generates the synthetic streets set into the cache
            (``$FRUGALSEG_CACHE``, default ``~/.cache/frugalseg``) and uses it.
        format: its layout (``cityscapes``, ``davis``, ``mose``, …, ``frugalseg.data.FORMATS``); None
            detects it from the folder.
        masks: format ``video`` only: the folder of mask PNGs named by frame index (for several
            videos, one sub-folder per video); None looks in ``Annotations/<clip>/`` beside them.
        num_frames: frames the student reads (linked to the model).
        synthetic_clips: clips per split of the generated set (only with ``root=None``).
        recipe: which training samples are drawn (name, budget, seed).
        splits: the split of each stage (train, val, test).
        augment: the random geometry of training samples (crop, scale, flip).
        loader: how frames are read and batched (batch sizes, workers, load scale, caches).
        labels: where pseudo, click, refined and replacement manual labels come from.
        temporal: temporal consistency, frame pairs and neighbours a sample carries.
        predict: what ``frugalseg predict`` segments.
    """

    def __init__(
        self,
        root: str | None = None,
        format: str | None = None,
        masks: str | None = None,
        num_frames: PositiveInt = 3,
        synthetic_clips: dict[str, int] | None = None,
        recipe: RecipeOptions = RecipeOptions(),
        splits: SplitOptions = SplitOptions(),
        augment: AugmentOptions = AugmentOptions(),
        loader: LoaderOptions = LoaderOptions(),
        labels: LabelOptions = LabelOptions(),
        temporal: TemporalOptions = TemporalOptions(),
        predict: PredictOptions = PredictOptions(),
    ) -> None:
        super().__init__()
        groups = {"recipe": recipe, "splits": splits, "augment": augment, "loader": loader, "labels": labels}
        groups |= {"temporal": temporal, "predict": predict}
        recipe, splits, augment, loader, labels, temporal, predict = map(_group, groups, groups.values())
        self.save_hyperparameters(ignore=["labels"])
        with option_paths(recipe="data.recipe.name"):
            self.recipe = get_recipe(recipe.name)
        self.recipe_options = recipe
        self.splits = splits
        self.augment = augment
        self.loader = loader
        self.temporal = temporal
        self.prediction = predict
        self.min_confidence = labels.min_confidence
        self.synthetic_clips = synthetic_clips or {"train": 24, "val": 6}
        self.root = Path(root) if root is not None else default_synthetic_root(self.synthetic_clips)
        if root is not None and not self.root.exists():  # before the trainer starts, naming the option
            where = "" if self.root.is_absolute() else f" (taken from the current folder, {Path.cwd()})"
            raise ConfigError("data.root", f"{root}: data set folder (or video file) does not exist{where}")
        if root is None and format not in (None, "synthetic"):
            known = (
                f" (and {format!r} is no format; known: {', '.join(FORMATS)})"
                if format not in FORMATS
                else ""
            )
            raise ConfigError(
                "data.root", f"data.format {format} reads a data set folder: give it as --data.root{known}"
            )
        if root is None:
            format = "synthetic"
        elif format is None:
            format = detect_format(self.root)
        if format not in FORMATS:
            raise ConfigError("data.format", f"unknown format {format!r}; known: {', '.join(FORMATS)}")
        self.format_name = format
        self.hparams["format"] = format
        self.num_frames = num_frames
        self.batch_size = loader.batch_size
        self.val_batch_size = loader.val_batch_size or loader.batch_size
        given = {kind: getattr(labels, option) for kind, option in SOURCE_OPTIONS.items()}
        self.sources = {kind: _source(value, kind) for kind, value in given.items() if value is not None}
        described = {SOURCE_OPTIONS[kind]: source.describe() for kind, source in self.sources.items()}
        self.hparams["labels"] = {**described, "min_confidence": labels.min_confidence}
        keep_plain_hyperparameters(self)  # the groups as dicts of plain values, and what loggers write
        if not 0.0 <= labels.min_confidence <= 1.0:
            raise ConfigError("data.labels.min_confidence", f"must lie in 0…1, got {labels.min_confidence}")
        if not 0 <= temporal.neighbours <= temporal.neighbour_window:
            raise ConfigError(
                "data.temporal.neighbours",
                f"must lie in 0…neighbour_window ({temporal.neighbour_window}), got {temporal.neighbours}",
            )
        self.normalize = Normalize()
        red, green, blue = IMAGENET_MEAN
        mean_colour = (255.0 * red, 255.0 * green, 255.0 * blue)
        self.geometry = (
            ClipGeometry(
                augment.crop_size,
                augment.scale_range,
                augment.flip_prob,
                fill=mean_colour,
                sparse_kind=LabelKind.CLICKS.code if self.recipe.anchor_kind is LabelKind.CLICKS else None,
            )
            if augment.crop_size
            else None
        )
        self.samples: list[Sample] = []
        self._train_clips: dict[str, Clip] = {}
        self.datasets: dict[str, ClipSampleDataset | PredictDataset] = {}

    # Properties linked to the model by the CLI.
    @property
    def classes(self) -> ClassTable:
        """The format's class table."""
        return FORMATS[self.format_name].classes

    @property
    def num_classes(self) -> int:
        """How many classes the labels hold."""
        return self.classes.num_classes

    @property
    def ignore_index(self) -> int:
        """The label value that gets no loss."""
        return IGNORE_INDEX

    @property
    def class_names(self) -> list[str]:
        """Class names in train-id order."""
        return list(self.classes.names)

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        """RGB colour of each class."""
        return list(self.classes.palette)

    def format_reader(self) -> Format:
        """The reader of the data set (the synthetic set must have been generated: `prepare_data`)."""
        options = {"masks": self.hparams["masks"]} if self.hparams["masks"] is not None else {}
        return get_format(self.format_name, self.root, **options)

    def _training_format(self, fmt: Format) -> Format:
        """``fmt``; with ``data.labels.manual``, a view whose training clips carry those labels instead.

        Labels made on demand (pseudo-labels, clicks) are made from them then (`with_manual_labels`).
        """
        from frugalseg.autolabel.sources import with_manual_labels

        manual = self.sources.get(LabelKind.FINE)
        return fmt if manual is None else with_manual_labels(fmt, manual, self.splits.train)

    def needed_labels(self) -> dict[LabelKind, tuple[int, ...]]:
        """The label kinds other than manual ones that the recipe trains on, with their offsets."""
        needed: dict[LabelKind, tuple[int, ...]] = {}
        if self.recipe.pseudo_offsets:
            needed[LabelKind.PSEUDO] = self.recipe.pseudo_offsets
        if self.recipe.anchor_kind is not LabelKind.FINE:
            needed[self.recipe.anchor_kind] = (0,)
        if self.recipe.coarse_percent and self.recipe.coarse_kind is LabelKind.REFINED_COARSE:
            needed[LabelKind.REFINED_COARSE] = (0,)
        return needed

    def source(self, kind: LabelKind) -> LabelSource:
        """The source of ``kind`` labels: the one given, else the default (flow labels, simulated clicks)."""
        if kind not in self.sources:
            self.sources[kind] = _default_source(kind, self.recipe.name)
        return self.sources[kind]

    def prepare_data(self) -> None:
        """Generate the synthetic set if it is the data; make missing labels of the recipe (rank 0).

        Anchor labels (clicks) are made for the whole training split, since the draw chooses among
        the clips that have them; pseudo-labels only for the clips the recipe draws.
        """
        if self.hparams["root"] is None:
            generate_synthetic_streets(self.root, self.synthetic_clips)
        fitting = self.trainer is None or self.trainer.state.fn == "fit"
        if not fitting:
            return
        fmt = self._training_format(self.format_reader())
        self._check_splits(fmt, "fit")
        needed = self.needed_labels()
        for kind in sorted(self.sources.keys() - needed.keys() - {LabelKind.FINE}, key=lambda k: k.value):
            logger.warning("data.labels.%s: recipe %s trains on no %s labels, so it is not read",
                           SOURCE_OPTIONS[kind], self.recipe.name, kind.value)  # fmt: skip
        pseudo = needed.pop(LabelKind.PSEUDO, None)
        for kind, offsets in needed.items():
            self._prepare(kind, fmt, offsets)
        if pseudo is None or not self.source(LabelKind.PSEUDO).makes_labels:
            return
        if fmt.offset_step is not None:
            farthest = max(abs(offset) for offset in pseudo)
            logger.warning(
                "recipe %s on %s: an offset of 1 is %s, so its pseudo-labels are propagated to stills up to "
                "%d away, which hold manual labels of their own",
                self.recipe.name, fmt.name, fmt.offset_step, farthest,
            )  # fmt: skip
        clips = self._training_clips(fmt, needed)
        drawn = sorted({sample.clip_id for sample in self._draw(clips, quiet=True)})
        if not drawn:  # said now: `setup` would look for the store of labels never made
            raise ConfigError("data.recipe", self._nothing_drawn(clips))
        rank_zero_info(
            f"recipe {self.recipe.name} draws {len(drawn)} of the {len(clips)} clips of split "
            f"{self.splits.train!r}: pseudo-labels are made for those"
        )
        self._prepare(LabelKind.PSEUDO, clips_of(fmt, drawn), pseudo)

    def _prepare(self, kind: LabelKind, fmt: Format, offsets: tuple[int, ...]) -> None:
        """Make the missing ``kind`` labels at ``offsets`` of the clips ``fmt`` shows; log what was made."""
        if line := self.source(kind).prepare(fmt, self.splits.train, offsets):
            rank_zero_info(line)

    def _training_clips(self, fmt: Format, kinds: Iterable[LabelKind]) -> list[Clip]:
        """The training split's clips, checked, with ``kinds`` labels (and the manual ones given) attached."""
        clips = fmt.clips(self.splits.train)  # with the manual labels given (`_training_format`)
        with option_paths(recipe="data.recipe.name"):
            check_served(self.recipe, clips, self.splits.train)
        self._check_crop(clips)
        for kind in kinds:
            self.source(kind).attach(fmt, self.splits.train, clips)
        if LabelKind.PSEUDO in kinds and not self.source(LabelKind.PSEUDO).makes_labels:
            clips = self._served_by_store(clips)
        return clips

    def _served_by_store(self, clips: list[Clip]) -> list[Clip]:
        """The clips a given pseudo-label store holds the recipe's pseudo-labels of: the ones drawn from.

        A store labels some clips (an annotation loop's videos, a session's): the others cannot be
        trained on at the recipe's offsets, and drawing them failed at their first batch.
        """
        offsets = self.recipe.pseudo_offsets
        served = [  # a clip with none of the offsets' frames is served nothing (it had counted as served)
            clip
            for clip in clips
            if any(clip.has_frame(offset) for offset in offsets)
            and all(
                clip.label(offset, LabelKind.PSEUDO) is not None
                for offset in offsets
                if clip.has_frame(offset)
            )
        ]
        if not served:
            raise ConfigError(
                "data.labels.pseudo",
                f"the store holds no clip of split {self.splits.train!r} with pseudo-labels at every offset "
                f"recipe {self.recipe.name} trains on: make them with `frugalseg label propagate "
                f"--offsets={','.join(map(str, offsets))} --out STORE` (it resumes a store)",
            )
        if len(served) < len(clips):
            rank_zero_info(
                f"recipe {self.recipe.name} draws among the {len(served)} of the {len(clips)} clips of split "
                f"{self.splits.train!r} whose pseudo-labels at its offsets the store given holds"
            )
        return served

    def _draw(self, clips: list[Clip], *, quiet: bool = False) -> list[Sample]:
        """The recipe's samples from ``clips`` (the same in `prepare_data` and `setup`).

        ``quiet``: without the draw's warnings (clips capped, samples left out), which `setup` gives.
        """
        drawn = self.recipe_options
        with _muted(draw_logger) if quiet else contextlib.nullcontext():
            return draw_samples(self.recipe, clips, drawn.budget, drawn.seed)

    def setup(self, stage: str) -> None:
        """Read the splits a stage needs; for fitting, attach the recipe's labels and draw its samples."""
        fmt = self.format_reader()
        self._check_splits(fmt, stage)
        temporal = self.temporal.consistency
        if stage == "fit":
            training = self._training_format(fmt)
            clips = self._training_clips(training, self.needed_labels())
            self.samples = self._draw(clips)
            if not self.samples:
                raise ConfigError("data.recipe", self._nothing_drawn(clips))
            train = self._dataset(
                training,
                clips,
                self.samples,
                temporal=self.temporal.train_pair,
                neighbours=self.temporal.neighbours,
                same_frame=self.temporal.train_same_frame,
            )
            self.datasets["train"] = train
            self._train_clips = {clip.clip_id: clip for clip in clips}
            if self.loader.check_memory:
                self._check_memory(train)
            self._write_samples()
        if self._validates(stage):
            self.datasets["val"] = self._manual_dataset(fmt, self.splits.val, temporal)
        if stage == "test":
            split = self.splits.test or self.splits.val
            if self.splits.test is None:
                rank_zero_info(
                    f"testing on split {split!r}, the validation split (data.splits.test is not set)"
                )
            self.datasets["test"] = self._manual_dataset(fmt, split, temporal)
        if stage == "predict":
            frames = self.prediction.frames
            if self.prediction.stream:
                self._check_streaming()
            if frames:
                items = folder_items(frames, self.num_frames, stream=self.prediction.stream)
            else:
                split = self.prediction.split or self.splits.val
                items = split_items(fmt.clips(split), self.num_frames)
            predict = PredictDataset(items, scale=self.loader.load_scale)
            predict.check_frames()
            self.datasets["predict"] = predict

    def _validates(self, stage: str) -> bool:
        """Whether ``stage`` reads the validation split (fitting with ``limit_val_batches 0`` does not)."""
        return stage == "validate" or (stage == "fit" and getattr(self.trainer, "limit_val_batches", 1) != 0)

    def _check_splits(self, fmt: Format, stage: str) -> None:
        """Refuse a split ``stage`` reads that the data set lacks, naming the option that gives it."""
        wanted = [("data.splits.train", self.splits.train)] if stage == "fit" else []
        wanted += [("data.splits.val", self.splits.val)] if self._validates(stage) else []
        if stage == "test":
            wanted.append(("data.splits.test", self.splits.test or self.splits.val))
        if stage == "predict" and not self.prediction.frames:
            wanted.append(("data.predict.split", self.prediction.split or self.splits.val))
        found = fmt.splits()
        others = [] if found else formats_like(self.root, fmt.name)
        hint = (
            f" in the {fmt.name} layout; it looks like: {', '.join(others)} (data.format)" if others else ""
        )
        for option, split in wanted:
            if split not in found:
                raise ConfigError(
                    option,
                    f"no split {split!r} in {self.root}; splits found: {', '.join(found) or 'none'}{hint}",
                )

    def _nothing_drawn(self, clips: list[Clip]) -> str:
        """Why the recipe drew no sample from ``clips``, and where the labels it looks for are instead."""
        kind = self.recipe.anchor_kind
        if self.recipe_options.budget == 0:
            return "budget 0 draws no sample to train on: give data.recipe.budget N"
        elsewhere = [(clip.clip_id, o) for clip in clips for o in clip.labels if o and clip.label(o, kind)]
        where = (
            f"; the {kind.value} labels given are at other frames ({offsets_shown(elsewhere)}): a session's "
            "frame is a fine label where its objects were drawn or uploaded whole"
        )
        return (
            f"recipe {self.recipe.name} drew no sample from split {self.splits.train!r}: it trains on each "
            f"clip's {kind.value} label at its anchor frame ({ANCHOR_EXPLAINED}), and no clip has one"
            + (where if elsewhere else "")
        )

    def _dataset(
        self,
        fmt: Format,
        clips: list[Clip],
        samples: list[Sample],
        temporal: bool,
        neighbours: int = 0,
        same_frame: bool = False,
    ) -> ClipSampleDataset:
        return ClipSampleDataset(
            fmt,
            clips,
            samples,
            self.num_frames,
            scale=self.loader.load_scale,
            temporal_pair=temporal,
            neighbours=neighbours,
            neighbour_window=self.temporal.neighbour_window,
            same_frame=same_frame,
            frame_cache=cache_dir() / "frames" if self.loader.cache_frames else None,
            flow_cache=cache_dir() / "flows" if self.loader.cache_flows else None,
            min_confidence=self.min_confidence,
        )

    def _manual_dataset(self, fmt: Format, split: str, temporal: bool) -> ClipSampleDataset:
        clips = [clip for clip in fmt.clips(split) if clip.label(0, LabelKind.FINE) is not None]
        if not clips:
            quick = getattr(self.trainer, "fast_dev_run", False)  # it sets limit_val_batches 1
            hint = (
                "; --trainer.fast_dev_run validates a batch whatever limit_val_batches says" if quick else ""
            )
            raise ConfigError(
                "data.splits.val" if split == self.splits.val else "data.splits.test",
                f"split {split!r} of {self.root} has no manually labelled frame to evaluate on (scores read "
                f"the data set's ground truth, not a label store){hint}",
            )
        samples = [Sample(clip.clip_id, 0, LabelKind.FINE) for clip in clips]
        temporal = temporal and all(clip.has_frame(-1) for clip in clips)
        return self._dataset(fmt, clips, samples, temporal=temporal)

    def _check_crop(self, clips: list[Clip]) -> None:
        """Refuse frames of two sizes in batches (`check_one_size`), and a crop larger than the frames.

        A crop larger than the frames at their largest scale would be mostly fill; the frames' size is
        read from the first clip's anchor frame header (``load_scale`` applied).
        """
        check_one_size([clip.frame_path(0) for clip in clips], self.batch_size)
        crop = self.augment.crop_size
        if not crop or not clips:
            return
        path = clips[0].frame_path(0)
        width, height = image_size(path)
        largest = self.loader.load_scale * max(self.augment.scale_range)
        if crop[0] > round(height * largest) or crop[1] > round(width * largest):
            raise ConfigError(
                "data.augment.crop_size",
                f"a crop of {crop[0]}×{crop[1]} (height×width) is larger than the training frames, "
                f"{round(height * largest)}×{round(width * largest)} at their largest (frames "
                f"{height}×{width} as {path.name}, load_scale {self.loader.load_scale:g}, "
                f"scale_range up to {max(self.augment.scale_range):g}): lower data.augment.crop_size",
            )

    def _check_memory(self, dataset: ClipSampleDataset) -> None:
        """Refuse a training batch that cannot fit in the device's free memory (`batch_bytes`)."""
        if not len(dataset):
            return
        height, width = self.augment.crop_size or dataset[0]["frames"].shape[-2:]
        frames = self.num_frames + int(self.temporal.train_pair) + self.temporal.neighbours
        need = batch_bytes(self.batch_size, frames, height, width)
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        free = free_memory(device)
        if free is not None and need > free:
            raise ConfigError(
                "data.augment.crop_size",
                f"a training batch of {self.batch_size} × {frames} frames of {height}×{width} needs at least "
                f"about {need / 2**30:.1f} GiB while training, and {device} has {free / 2**30:.1f} GiB free: "
                "lower data.augment.crop_size, data.loader.batch_size or data.loader.load_scale "
                "(or set data.loader.check_memory: false)",
            )

    def _write_samples(self) -> None:
        """Write the drawn (clip, offset, kind) list and its annotation cost next to the run's logs."""
        anchors = implied_anchors(self.samples, self.recipe.anchor_kind)
        booked = self._booked_seconds([*self.samples, *anchors])
        if LabelKind.PSEUDO in booked and self.recipe.anchor_kind not in booked:
            anchors = []  # pseudo-labels whose booked seconds are their work (the semantic loop's clicks)
        priced = [*self.samples, *anchors]
        clicks, objects = self._label_counts(priced)
        cost = annotation_cost(priced, clicks=clicks, objects=objects, booked=booked)
        rank_zero_info(
            f"recipe {self.recipe.name}: {len(self.samples)} samples, {cost.manual_frames} manual frames, "
            + (f"{cost.total_hours:.1f} h" if cost.total_hours >= 0.1 else f"{cost.total_hours * 60:.1f} min")
            + " of annotation"
        )
        trainer = self.trainer
        # `fast_dev_run` (set on the Trainer by its debugging flags, not declared by its class) writes nothing
        if trainer is None or getattr(trainer, "fast_dev_run", False):
            return
        # every rank asks: `log_dir` is broadcast from rank 0, so asking on rank 0 alone deadlocks DDP
        log_dir = trainer.log_dir or trainer.default_root_dir
        if not trainer.is_global_zero:
            return
        path = Path(log_dir) / "samples.json"
        drawn = self.recipe_options
        write_samples(self.samples, path, self.recipe, cost, seed=drawn.seed, budget=drawn.budget)

    def _label_counts(self, samples: list[Sample]) -> tuple[dict[Sample, int], dict[Sample, int]]:
        """The clicks of each ``clicks`` sample, the objects of each object mask."""
        clicks, objects = {}, {}
        for sample in samples:
            clip = self._train_clips[sample.clip_id]
            ref = clip.label(sample.offset, sample.kind)
            if sample.kind is LabelKind.CLICKS and ref is not None:
                if (count := self.source(LabelKind.CLICKS).clicks(ref)) is not None:
                    clicks[sample] = count
            elif sample.kind is LabelKind.FINE and ref is not None and ref.encoding == OBJECT_MASK:
                objects[sample] = len(
                    set(np.unique(DavisFormat.read_mask(ref.path)).tolist()) - {0, IGNORE_INDEX}
                )
        return clicks, objects

    def _booked_seconds(self, samples: list[Sample]) -> dict[LabelKind, float]:
        """Per kind, the seconds a person booked on the labels of ``samples``, where its source books them."""
        booked = {}
        for kind in {sample.kind for sample in samples} & set(self.sources):
            clip_ids = {sample.clip_id for sample in samples if sample.kind is kind}
            seconds = self.sources[kind].booked_seconds(self.splits.train, clip_ids)
            if seconds is not None:
                booked[kind] = seconds
        return booked

    def _loader(self, split: str, shuffle: bool, batch_size: int) -> DataLoader:
        dataset = self.datasets[split]
        sampler = None
        if not shuffle and self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's default sampler pads evaluation sets with repeated samples, which would
            # count them twice in the metrics; this one splits the set without repeats.
            sampler = unrepeated_sampler(dataset, split, self.trainer.world_size, self.trainer.global_rank)
        if self.loader.num_workers > 0:
            # Workers are the parallelism: each decodes and computes flows with one OpenCV thread.
            # This is set here, before the workers fork: a forked worker that resizes the OpenCV
            # thread pool it inherited deadlocks destroying the pool's locks.
            cv2.setNumThreads(1)
        batches = None
        if isinstance(dataset, PredictDataset) and batch_size > 1:
            sizes = dataset.sizes()
            if len(set(sizes)) > 1:  # frames of several sizes: each batch holds frames of one size
                # (with several processes Lightning swaps in its own unrepeated sampler, which splits as ours)
                order = sampler if sampler is not None else SequentialSampler(dataset)
                batches = SameSizeBatchSampler(order, batch_size, drop_last=False, sizes=sizes)
        # A resume draws as its run did only if each epoch's training iterator draws its seeds anew
        return DataLoader(
            dataset,
            batch_size=batch_size if batches is None else 1,
            shuffle=shuffle,
            sampler=sampler if batches is None else None,
            batch_sampler=batches,
            drop_last=shuffle and self._share(dataset) > batch_size,
            num_workers=self.loader.num_workers,
            persistent_workers=self.loader.num_workers > 0 and not shuffle,
            generator=None if shuffle else torch.Generator(),  # evaluation: draws from a generator of its own
            pin_memory=torch.cuda.is_available(),
        )

    def _share(self, dataset: ClipSampleDataset | PredictDataset) -> int:
        """The samples of ``dataset`` each process sees (Lightning's distributed sampler pads the shares).

        A last short batch is dropped only when a process has more than a batch: with a batch larger than
        its share, dropping it would leave a process no batch at all.
        """
        processes = self.trainer.world_size if self.trainer is not None else 1
        return math.ceil(len(dataset) / processes)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches of the recipe's samples."""
        return self._loader("train", shuffle=True, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        """Validation batches of the manual labels."""
        return self._loader("val", shuffle=False, batch_size=self.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        """Test batches of the manual labels."""
        return self._loader("test", shuffle=False, batch_size=self.val_batch_size)

    def predict_dataloader(self) -> DataLoader:
        """Batches to segment (one frame at a time when streaming)."""
        # streaming feeds the frames of a video one at a time, in order
        batch_size = 1 if self.prediction.stream else self.val_batch_size
        return self._loader("predict", shuffle=False, batch_size=batch_size)

    def _check_streaming(self) -> None:
        """Streaming needs a folder of videos and one process (each keeps one video's memory)."""
        option = "data.predict.stream"
        if not self.prediction.frames:
            raise ConfigError(option, "needs data.predict.frames (a folder of videos to stream)")
        if self.trainer is not None and self.trainer.world_size > 1:
            processes = self.trainer.world_size
            raise ConfigError(
                option, f"runs on one device, got {processes} processes; stream each video alone"
            )

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Random clip-consistent geometry for training batches, then normalisation, on the device.

        Each process of a distributed run draws from its own generator (seeded by its rank): seeded alike,
        every rank had transformed its batch alike. Cropping first normalises only the crop's pixels (the
        padding, the mean colour, normalises to 0). Frames take a true precision's dtype (``bf16-true``).
        """
        keys = [key for key in ("frames", "neighbours") if key in batch]
        if self.geometry is not None and self.trainer is not None and self.trainer.training:
            if self.trainer.world_size > 1 and self.geometry.generator is None:  # each process draws its own
                rank_seed = torch.initial_seed() + 1_000_003 * self.trainer.global_rank
                self.geometry.generator = torch.Generator(batch["frames"].device).manual_seed(rank_seed)
            for key in keys:
                batch[key] = batch[key].float()
            batch = self.geometry.transform_batch(batch)
        normalize = self.normalize.to(batch["frames"].device)
        for key in keys:
            batch[key] = in_precision(normalize(batch[key]), self.trainer)
        return batch


class ClipGeometry(ClipRandomGeometry):
    """:class:`ClipRandomGeometry` that also moves a batch's neighbour frames and flow fields.

    Neighbours get the same scale, crop and flip as the sample's frames. A flow field is resampled
    like an image and its vectors are multiplied by the linear part of the transform (scaled, and
    dx negated by a flip), so that it still maps the transformed frames onto each other.
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        scale_range: tuple[float, float] = (0.5, 2.0),
        flip_prob: float = 0.5,
        ignore_index: int = IGNORE_INDEX,
        fill: tuple[float, float, float] = (0.0, 0.0, 0.0),
        sparse_kind: int | None = None,
    ) -> None:
        """`ClipRandomGeometry`'s arguments, and the kind of sparse labels.

        Args:
            crop_size: as `ClipRandomGeometry`.
            scale_range: as `ClipRandomGeometry`.
            flip_prob: as `ClipRandomGeometry`.
            ignore_index: as `ClipRandomGeometry`.
            fill: as `ClipRandomGeometry`.
            sparse_kind: the `LabelKind` code of sparse labels (clicks), moved point by point; None
                when the data hold none.
        """
        super().__init__(crop_size, scale_range, flip_prob, ignore_index, fill)
        self.sparse_kind = sparse_kind

    def sample_matrices(self, batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        """The matrices of `ClipRandomGeometry`, kept in ``last_matrices`` for the flows and neighbours."""
        self.last_matrices = super().sample_matrices(batch, height, width, device)
        return self.last_matrices

    def transform_batch(self, batch: dict) -> dict:
        """Transform ``frames``, ``label``, ``neighbours`` and the flows of ``FLOW_KEYS``; add ``valid``."""
        frames, neighbours = batch["frames"], batch.get("neighbours")
        count = 0 if neighbours is None else neighbours.shape[1]
        joint = frames if neighbours is None else torch.cat([neighbours, frames], dim=1)
        # Only a recipe with sparse labels pays for the check (it syncs with the device).
        sparse = batch["kind"] == self.sparse_kind if self.sparse_kind is not None else None
        joint, batch["label"] = self(joint, batch["label"], sparse)
        matrices = self.last_matrices
        batch["frames"] = joint[:, count:]
        if neighbours is not None:
            batch["neighbours"] = joint[:, :count]
        ones = frames.new_ones(frames.shape[0], 1, *frames.shape[-2:])
        inside = warp_affine(ones, matrices, dsize=self.crop_size, mode="nearest", align_corners=True)
        batch["valid"] = inside.squeeze(1) > 0.5
        for key in FLOW_KEYS:
            if key in batch:
                batch[key] = transform_flow(batch[key], matrices, self.crop_size)
        if "flow_reliable" in batch:
            moved = warp_affine(
                batch["flow_reliable"].unsqueeze(1).float(),
                matrices,
                dsize=self.crop_size,
                mode="nearest",
                align_corners=True,
            )
            batch["flow_reliable"] = (moved.squeeze(1) > 0.5) & batch["valid"]
        return batch


def transform_flow(flow: torch.Tensor, matrices: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Flows B×2×H×W or B×K×2×H×W under per-sample pixel affine maps B×2×3, cropped to ``size``.

    A pixel p with flow f maps to A·p and its match p + f to A·(p + f), so the new flow at A·p is
    L·f with L the 2×2 linear part of A; the field itself is resampled bilinearly.
    """
    stacked = flow.dim() == 5
    flows = flow if stacked else flow.unsqueeze(1)
    batch, count = flows.shape[:2]
    repeated = matrices.to(flows.dtype).repeat_interleave(count, dim=0)
    moved = warp_affine(flows.flatten(0, 1), repeated, dsize=size, mode="bilinear", align_corners=True)
    moved = torch.einsum("nij,njhw->nihw", repeated[:, :, :2], moved).view(batch, count, 2, *size)
    return moved if stacked else moved.squeeze(1)


def unrepeated_sampler(
    dataset: Sized, split: str, world_size: int, rank: int, unit: str = "samples"
) -> UnrepeatedDistributedSampler:
    """Lightning's sampler that splits an evaluation set over the processes without repeats.

    Raises `ConfigError` when the set holds fewer ``unit`` than there are processes: every process
    must run a batch, or the others wait for it.
    """
    count = len(dataset)
    if 0 < count < world_size:
        raise ConfigError(
            "trainer.devices",
            f"the {split} split holds {count} {unit} for {world_size} processes, and every process needs "
            f"one: run at most {count} processes (trainer.devices × trainer.num_nodes) or give the "
            f"{split} split more {unit}",
        )
    return UnrepeatedDistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)


#: The option groups of `VideoSegDataModule`, by argument name.
OPTION_GROUPS = {
    "recipe": RecipeOptions,
    "splits": SplitOptions,
    "augment": AugmentOptions,
    "loader": LoaderOptions,
    "labels": LabelOptions,
    "temporal": TemporalOptions,
    "predict": PredictOptions,
}


def _group(name: str, value: Any) -> Any:
    """An option group as its dataclass, given so or as a dict (from Python, or a checkpoint's hparams)."""
    if not isinstance(value, Mapping):
        return value
    try:
        return OPTION_GROUPS[name](**value)
    except TypeError as err:
        raise ConfigError(f"data.{name}", f"not options of {OPTION_GROUPS[name].__name__} ({err})") from err


def _source(value: LabelSource | str, kind: LabelKind) -> LabelSource:
    """The source an option gives: a `LabelSource`, or a label store folder read as ``kind`` labels."""
    from frugalseg.autolabel.sources import as_source

    return as_source(value, kind, f"data.labels.{SOURCE_OPTIONS[kind]}")


def _default_source(kind: LabelKind, recipe: str) -> LabelSource:
    """Flow labels for ``pseudo``, simulated clicks for ``clicks``; other kinds must be given."""
    from frugalseg.autolabel.sources import FlowLabels, SimulatedClicks

    if kind is LabelKind.PSEUDO:
        return FlowLabels()
    if kind is LabelKind.CLICKS:
        return SimulatedClicks()
    raise ConfigError(
        f"data.labels.{SOURCE_OPTIONS[kind]}",
        f"recipe {recipe} trains on {kind.value} labels: make them with `frugalseg label refine-coarse` "
        "and name the store here",
    )


@contextlib.contextmanager
def _muted(logger: logging.Logger) -> Iterator[None]:
    """``logger`` says nothing within the block."""
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled
