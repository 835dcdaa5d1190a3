"""SAM refinement of coarse labels (paper 001, sections 4 and 5.2.2), and what clicks and boxes share.

Two ways to turn a coarse map into a finer one:

* `PointRefiner`, the method of the paper: for every instance-level mask of the chosen classes
  (by default pole, traffic light, traffic sign, person, rider, car, motorcycle, bicycle), two
  random points inside it prompt SAM's image predictor, and the mask is refined for two more
  iterations by feeding SAM its own previous low-resolution logits.
* `AutoMaskRefiner`, the alternative the paper reports as failing (Table 7): SAM's automatic mask
  generator proposes masks, and a proposal takes a class when more than 90 % of the labelled
  coarse pixels under it carry that class.

An *instance-level mask* is one Cityscapes instance where an ``instanceIds`` map lies beside the
label (id ≥ 1000), and otherwise one 8-connected component of a class; coarse polygons of objects
that touch merge into one component. Regions of an instance class without an instance number
(groups such as "car group") are split into components too.

Refined masks are painted from the largest object to the smallest, so small objects in front stay
visible. By default a refined mask only fills pixels that the coarse map leaves unlabelled or gives
the object's own class: coarse polygons are drawn inside their objects, so their labels are trusted
and a SAM mask that leaks (a car mask spilling onto the road) cannot overwrite them. With
``overwrite=True`` refined masks are written over any class, the literal reading of the paper.

This module also holds what clicks and boxes reuse: the image-predictor protocol, reading instance
ids, splitting a label map into objects and `label_anchor_frames`, the resumable loop over a split.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from frugalseg.autolabel.propagate import PropagationSummary
from frugalseg.autolabel.store import LabelStore
from frugalseg.datamodules.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.datamodules.io import DataError, label_ids_to_train_ids, read_frame, read_label

REFINE_CLASSES = (
    "pole",
    "traffic light",
    "traffic sign",
    "person",
    "rider",
    "car",
    "motorcycle",
    "bicycle",
)
INSTANCE_OFFSET = 1000  # Cityscapes instance ids: label id × 1000 + instance number


class ImagePredictor(Protocol):
    """What is used of SAM 2's ``SAM2ImagePredictor``.

    ``predict`` returns C masks (C×H×W, at the image's size), C quality scores and C low-resolution
    logits (C×256×256) that can be fed back as ``mask_input`` (1×256×256); points are (x, y) pixels.
    """

    def set_image(self, image: np.ndarray) -> None: ...

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class MaskGenerator(Protocol):
    """What is used of SAM 2's ``SAM2AutomaticMaskGenerator``: dicts with a bool H×W ``segmentation``."""

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]: ...


def class_ids(names: Sequence[str], class_names: Sequence[str]) -> list[int]:
    """Train ids of the classes ``names``; an unknown name raises `ValueError` listing the valid ones."""
    unknown = [name for name in names if name not in class_names]
    if unknown:
        raise ValueError(
            f"unknown class name(s) {', '.join(map(repr, unknown))}; valid names: {', '.join(class_names)}"
        )
    if not names:
        raise ValueError(f"no class names given; valid names: {', '.join(class_names)}")
    return sorted({list(class_names).index(name) for name in names})


def read_instance_ids(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a Cityscapes ``*_instanceIds.png`` (16-bit) as an H×W int32 array.

    Raises:
        DataError: missing, undecodable or not single-channel, or not of ``shape`` when given.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file does not exist")
    ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if ids is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    if ids.ndim != 2:
        raise DataError(path, f"instance ids must be a single-channel image, got {ids.shape[2]} channels")
    if shape is not None and ids.shape != tuple(shape):
        raise DataError(
            path, f"instance ids of size {ids.shape} do not match the label's size {tuple(shape)}"
        )
    return ids.astype(np.int32)


def instance_train_id(instance_id: int) -> int:
    """The train id of a Cityscapes instance id (label id × 1000 + number, or a bare label id)."""
    label_id = instance_id // INSTANCE_OFFSET if instance_id >= INSTANCE_OFFSET else instance_id
    if not 0 <= label_id < 256:
        return IGNORE_INDEX
    return int(label_ids_to_train_ids(np.array([label_id], np.uint8))[0])


@dataclass(frozen=True)
class LabelObject:
    """One object of a label map: its class, its pixels and its instance id (None for a component)."""

    train_id: int
    mask: np.ndarray  # H×W bool
    instance_id: int | None = None

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def components(mask: np.ndarray, min_area: int = 1) -> list[np.ndarray]:
    """The 8-connected components of a bool mask with at least ``min_area`` pixels, in raster order."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return [labels == index for index in range(1, count) if stats[index, cv2.CC_STAT_AREA] >= min_area]


def split_objects(
    label: np.ndarray,
    train_ids: Sequence[int],
    instance_ids: np.ndarray | None = None,
    *,
    min_component_area: int = 1,
) -> list[LabelObject]:
    """The objects of the classes ``train_ids`` in ``label``: instances first, then components.

    With ``instance_ids``, every instance (id ≥ 1000) of those classes is one object; the remaining
    pixels of those classes (no instance ids, or group regions) become one object per 8-connected
    component of at least ``min_component_area`` pixels.
    """
    wanted = set(int(t) for t in train_ids)
    objects: list[LabelObject] = []
    covered = np.zeros(label.shape, bool)
    if instance_ids is not None:
        for instance_id in np.unique(instance_ids[instance_ids >= INSTANCE_OFFSET]).tolist():
            train_id = instance_train_id(instance_id)
            if train_id in wanted:
                mask = instance_ids == instance_id
                objects.append(LabelObject(train_id, mask, int(instance_id)))
                covered |= mask
    for train_id in sorted(wanted):
        rest = (label == train_id) & ~covered
        objects.extend(LabelObject(train_id, mask) for mask in components(rest, min_component_area))
    return objects


def paint(
    label: np.ndarray, masks: Sequence[tuple[int, np.ndarray]], *, overwrite: bool = False
) -> np.ndarray:
    """``label`` with each (train id, mask) painted on, largest mask first, so small objects stay on top.

    Without ``overwrite`` a mask only paints pixels that ``label`` leaves unlabelled (255) or gives
    one of the painted classes, so labels of all other classes are kept.
    """
    out = label.copy()
    painted = {train_id for train_id, _ in masks}
    writable = (
        np.ones(label.shape, bool) if overwrite else (label == IGNORE_INDEX) | np.isin(label, list(painted))
    )
    for train_id, mask in sorted(masks, key=lambda item: -int(item[1].sum())):
        out[mask & writable] = train_id
    return out


def image_rng(seed: int, clip_id: str, offset: int = 0) -> np.random.Generator:
    """A generator for one image, so that results do not depend on the order images are done in."""
    return np.random.default_rng([seed, zlib.crc32(clip_id.encode()), offset + 2**16])  # seeds must be ≥ 0


def _best(scores: np.ndarray) -> int:
    """Index of the best-scored of SAM's candidate masks."""
    return int(np.argmax(scores)) if len(scores) else 0


class PointRefiner:
    """Refine the coarse masks of some classes with point-prompted SAM (paper 001, section 4).

    For each object: ``num_points`` distinct random pixels inside it (positive points) prompt SAM
    with three candidate masks, of which the best-scored is kept; then ``iterations`` more calls
    with the same points and the previous call's low-resolution logits as ``mask_input`` (single
    mask) refine it. The last mask is painted with `paint`.

    Args:
        predictor: a SAM 2 image predictor (`ImagePredictor`).
        train_ids: the classes to refine (`class_ids` of `REFINE_CLASSES` by default in the CLI).
        num_points, iterations: 2 and 2 in the paper.
        overwrite: let refined masks overwrite the coarse labels of other classes.
        model: what the predictor is (SAM 2 config, checkpoint), recorded with the settings.
    """

    name = "sam_points"

    def __init__(
        self,
        predictor: ImagePredictor,
        train_ids: Sequence[int],
        *,
        num_points: int = 2,
        iterations: int = 2,
        overwrite: bool = False,
        model: dict[str, Any] | None = None,
    ) -> None:
        if num_points < 1 or iterations < 0:
            raise ValueError(f"need num_points ≥ 1 and iterations ≥ 0, got {num_points} and {iterations}")
        self.predictor = predictor
        self.train_ids = sorted(set(int(t) for t in train_ids))
        self.num_points = num_points
        self.iterations = iterations
        self.overwrite = overwrite
        self.model = model or {}

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "train_ids": self.train_ids,
            "num_points": self.num_points,
            "iterations": self.iterations,
            "overwrite": self.overwrite,
            "model": self.model,
        }

    def refine_mask(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """SAM's refined version of one object mask (the image must be set on the predictor)."""
        rows, cols = np.nonzero(mask)
        chosen = rng.choice(len(rows), size=min(self.num_points, len(rows)), replace=False)
        points = np.stack([cols[chosen], rows[chosen]], axis=1).astype(np.float32)
        labels = np.ones(len(points), np.int32)
        masks, scores, logits = self.predictor.predict(
            point_coords=points, point_labels=labels, multimask_output=True
        )
        best = _best(scores)
        for _ in range(self.iterations):
            masks, scores, logits = self.predictor.predict(
                point_coords=points,
                point_labels=labels,
                mask_input=logits[best][None],
                multimask_output=False,
            )
            best = _best(scores)
        return np.asarray(masks[best]) > 0.5

    def refine(
        self,
        image: np.ndarray,
        coarse: np.ndarray,
        instance_ids: np.ndarray | None,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The refined label map of one image (uint8, 255 = ignore)."""
        objects = split_objects(coarse, self.train_ids, instance_ids)
        if not objects:
            return coarse.copy()
        self.predictor.set_image(image)
        refined = [(obj.train_id, self.refine_mask(obj.mask, rng)) for obj in objects]
        return paint(coarse, refined, overwrite=self.overwrite)


def assign_generated_masks(
    coarse: np.ndarray,
    masks: Sequence[np.ndarray],
    train_ids: Sequence[int],
    *,
    agreement: float = 0.9,
) -> list[tuple[int, np.ndarray]]:
    """The (train id, mask) of every generated mask that a class of ``train_ids`` claims.

    A mask takes class c when strictly more than ``agreement`` of the labelled (≠ 255) coarse
    pixels under it are c; a mask over no labelled pixel takes no class.
    """
    wanted = set(int(t) for t in train_ids)
    claimed: list[tuple[int, np.ndarray]] = []
    for mask in masks:
        under = coarse[mask]
        under = under[under != IGNORE_INDEX]
        if under.size == 0:
            continue
        values, counts = np.unique(under, return_counts=True)
        top = int(np.argmax(counts))
        if int(values[top]) in wanted and counts[top] > agreement * under.size:
            claimed.append((int(values[top]), mask))
    return claimed


class AutoMaskRefiner:
    """The failed alternative of paper 001 (Table 7): classify SAM's automatic masks by the coarse map.

    Args:
        generator: a SAM 2 automatic mask generator (`MaskGenerator`).
        train_ids: the classes a generated mask may take.
        agreement: a mask takes a class when more than this fraction of its labelled coarse pixels agree.
        overwrite, model: as in `PointRefiner`.
    """

    name = "sam_auto_masks"

    def __init__(
        self,
        generator: MaskGenerator,
        train_ids: Sequence[int],
        *,
        agreement: float = 0.9,
        overwrite: bool = False,
        model: dict[str, Any] | None = None,
    ) -> None:
        if not 0.0 <= agreement < 1.0:
            raise ValueError(f"agreement must lie in [0, 1), got {agreement}")
        self.generator = generator
        self.train_ids = sorted(set(int(t) for t in train_ids))
        self.agreement = agreement
        self.overwrite = overwrite
        self.model = model or {}

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "train_ids": self.train_ids,
            "agreement": self.agreement,
            "overwrite": self.overwrite,
            "model": self.model,
        }

    def refine(
        self,
        image: np.ndarray,
        coarse: np.ndarray,
        instance_ids: np.ndarray | None,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The refined label map of one image; ``instance_ids`` and ``rng`` are not needed here."""
        masks = [np.asarray(found["segmentation"], bool) for found in self.generator.generate(image)]
        bad = [m.shape for m in masks if m.shape != coarse.shape]
        if bad:
            raise ValueError(
                f"generated masks of shape {bad[0]} do not match the coarse map's {coarse.shape}"
            )
        claimed = assign_generated_masks(coarse, masks, self.train_ids, agreement=self.agreement)
        return paint(coarse, claimed, overwrite=self.overwrite)


def instance_ids_for(fmt: Any, clip: Clip, kind: LabelKind, shape: tuple[int, int]) -> np.ndarray | None:
    """The instance ids beside the clip's ``kind`` label, when the format knows where they are."""
    locate = getattr(fmt, "instance_ids_path", None)
    path = locate(clip, kind) if locate is not None else None
    return read_instance_ids(path, shape) if path is not None else None


def label_anchor_frames(
    fmt: Any,
    split: str,
    store: LabelStore,
    *,
    source: LabelKind,
    kind: LabelKind,
    engine: str,
    settings: dict[str, Any],
    make_label: Callable[[Clip], np.ndarray],
    progress: bool = True,
    verb: str = "labelling",
) -> PropagationSummary:
    """Write a ``kind`` label for the anchor frame (offset 0) of every clip with a ``source`` label.

    ``make_label(clip)`` computes one label map; clips already recorded in ``store`` are skipped,
    so a killed run resumes where it stopped. The anchor frame and ``source`` label of every clip
    are checked to exist before anything is written.
    """
    clips = [clip for clip in fmt.clips(split) if clip.label(0, source) is not None]
    for clip in clips:
        for path in (clip.frame_path(0), clip.label(0, source).path):
            if not path.is_file():
                raise DataError(path, f"file of clip {clip.clip_id} ({clip.split}) does not exist")
    store.open_run(
        {
            "engine": engine,
            "settings": settings,
            "split": split,
            "format": getattr(fmt, "name", type(fmt).__name__),
            "root": str(getattr(fmt, "root", "")),
        }
    )
    start = time.perf_counter()
    written = skipped = 0
    columns = (
        TextColumn(f"{verb} {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(split, total=len(clips))
        for clip in clips:
            if store.has(clip.clip_id, 0, kind, split=clip.split):
                skipped += 1
            else:
                began = time.perf_counter()
                label = make_label(clip)
                store.write(
                    clip,
                    0,
                    kind,
                    label,
                    engine=engine,
                    settings=settings,
                    source_offset=0,
                    seconds=time.perf_counter() - began,
                )
                written += 1
            bar.advance(task)
    return PropagationSummary(
        clips=len(clips), written=written, skipped=skipped, seconds=time.perf_counter() - start
    )


def refine_split(
    fmt: Any,
    split: str,
    store: LabelStore,
    refiner: PointRefiner | AutoMaskRefiner,
    *,
    seed: int = 0,
    progress: bool = True,
) -> PropagationSummary:
    """Write ``refined_coarse`` labels for the anchor frame of every clip of ``split`` with a coarse label.

    Resumable like `frugalseg.autolabel.propagate.propagate_split`; the points of each image are
    drawn from `image_rng` (``seed``, clip id), so a resumed run gives the same labels.
    """
    num_classes = getattr(fmt, "num_classes", None)

    def make_label(clip: Clip) -> np.ndarray:
        coarse = read_label(clip.label(0, LabelKind.COARSE).path, num_classes)
        image = read_frame(clip.frame_path(0))
        if image.shape[:2] != coarse.shape:
            raise DataError(
                clip.label(0, LabelKind.COARSE).path,
                f"coarse label of size {coarse.shape} does not match its frame's {image.shape[:2]}",
            )
        instance_ids = instance_ids_for(fmt, clip, LabelKind.COARSE, coarse.shape)
        return refiner.refine(image, coarse, instance_ids, image_rng(seed, clip.clip_id))

    return label_anchor_frames(
        fmt,
        split,
        store,
        source=LabelKind.COARSE,
        kind=LabelKind.REFINED_COARSE,
        engine=refiner.name,
        settings={**refiner.settings, "seed": seed},
        make_label=make_label,
        progress=progress,
        verb="refining",
    )
