"""SAM refinement of coarse labels (paper 001, sections 4 and 5.2.2), and what clicks and boxes share.

Two ways to turn a coarse map into a finer one:

* `PointRefiner`, the method of the paper: for every instance-level mask of the chosen classes
  (by default pole, traffic light, traffic sign, person, rider, car, motorcycle, bicycle), two
  random points inside it prompt SAM's image predictor, and the mask is refined for two more
  iterations by feeding SAM its own previous low-resolution logits.
* `AutoMaskRefiner`, the alternative the paper reports as failing (Table 7): SAM's automatic mask
  generator proposes masks, and a proposal takes a class when more than 90 % of the labelled
  coarse pixels under it carry that class.

An *instance-level mask* is one Cityscapes instance (its pixels that carry its class) where an
``instanceIds`` map lies beside the label (id ≥ 1000), and otherwise one 8-connected component of
a class; coarse polygons of objects that touch merge into one component. Regions of an instance
class without an instance number (groups such as "car group") are split into components too.

Refined masks are painted from the largest object to the smallest, so small objects in front stay
visible. By default a refined mask only fills pixels that the coarse map leaves unlabelled or gives
the object's own class: coarse polygons are drawn inside their objects, so their labels are trusted
and a SAM mask that leaks (a car mask spilling onto the road) cannot overwrite them. With
``overwrite=True`` refined masks are written over any class, the literal reading of the paper.

Objects come from `frugalseg.autolabel.objects.split_objects`; the loop over a split is
`frugalseg.autolabel.anchor_frames.label_anchor_frames`. The image-predictor protocol here serves boxes too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from frugalseg.autolabel.anchor_frames import label_anchor_frames
from frugalseg.autolabel.objects import split_objects
from frugalseg.autolabel.runs import (
    LabellingSummary,
    TrainerOptions,
    anchor_instance_ids,
    image_rng,
    read_anchor,
)
from frugalseg.autolabel.store import LabelStore
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.data.formats import Format
from frugalseg.errors import ConfigError

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


class ImagePredictor(Protocol):
    """What is used of SAM 2's ``SAM2ImagePredictor``.

    ``predict`` returns C masks (C×H×W, at the image's size), C quality scores and C low-resolution
    logits (C×256×256) that can be fed back as ``mask_input`` (1×256×256); points are (x, y) pixels.
    """

    def set_image(self, image: np.ndarray) -> None:
        """Compute the image embedding that the next `predict` calls prompt."""

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks, scores and low-resolution logits for the prompts (``SAM2ImagePredictor.predict``)."""


class MaskGenerator(Protocol):
    """What is used of SAM 2's ``SAM2AutomaticMaskGenerator``: dicts with a bool H×W ``segmentation``."""

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Every mask of ``image``, as dicts with ``segmentation`` and scores (SAM 2's records)."""


def class_ids(names: Sequence[str], class_names: Sequence[str]) -> list[int]:
    """Train ids of the classes ``names``; an unknown name raises `ValueError` listing the valid ones."""
    unknown = [name for name in names if name not in class_names]
    if unknown:
        raise ConfigError(
            "classes",
            f"unknown class name(s) {', '.join(map(repr, unknown))}; valid names: {', '.join(class_names)}",
        )
    if not names:
        raise ConfigError("classes", f"no class names given; valid names: {', '.join(class_names)}")
    return sorted({list(class_names).index(name) for name in names})


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
    result: np.ndarray = out
    return result


def _best(scores: np.ndarray) -> int:
    """Index of the best-scored of SAM's candidate masks."""
    return int(np.argmax(scores)) if len(scores) else 0


class _Refiner:
    """What both refiners hold: the classes refined, ``overwrite`` (see `paint`) and the model used."""

    def __init__(self, train_ids: Sequence[int], overwrite: bool, model: dict[str, Any] | None) -> None:
        self.train_ids = sorted({int(t) for t in train_ids})
        self.overwrite = overwrite
        self.model = model or {}

    @property
    def settings(self) -> dict[str, Any]:
        return {"train_ids": self.train_ids, "overwrite": self.overwrite, "model": self.model}


class PointRefiner(_Refiner):
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
            raise ConfigError(
                "num_points", f"need num_points ≥ 1 and iterations ≥ 0, got {num_points} and {iterations}"
            )
        super().__init__(train_ids, overwrite, model)
        self.predictor = predictor
        self.num_points = num_points
        self.iterations = iterations

    @property
    def settings(self) -> dict[str, Any]:
        """The settings recorded in the manifest and ``run.json``."""
        return {**super().settings, "num_points": self.num_points, "iterations": self.iterations}

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
        objects = split_objects(coarse, instance_ids, train_ids=self.train_ids)
        if not objects:
            result: np.ndarray = coarse.copy()
            return result
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


class AutoMaskRefiner(_Refiner):
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
            raise ConfigError("agreement", f"must lie in [0, 1), got {agreement}")
        super().__init__(train_ids, overwrite, model)
        self.generator = generator
        self.agreement = agreement

    @property
    def settings(self) -> dict[str, Any]:
        """The settings recorded in the manifest and ``run.json``."""
        return {**super().settings, "agreement": self.agreement}

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


def refine_split(
    fmt: Format,
    split: str,
    store: LabelStore,
    refiner: PointRefiner | AutoMaskRefiner,
    *,
    seed: int = 0,
    progress: bool = True,
    trainer: TrainerOptions | None = None,
) -> LabellingSummary:
    """Write ``refined_coarse`` labels for the anchor frame of every clip of ``split`` with a coarse label.

    Resumable like `frugalseg.autolabel.propagate.propagate_split`; the points of each image are
    drawn from `image_rng` (``seed``, clip id), so a resumed run gives the same labels.
    With ``trainer`` the images are shared out among Lightning's processes (`label_anchor_frames`).
    """
    # the SAM predictor to move to each process's device (a mask generator holds one)
    predictor: ImagePredictor | None
    if isinstance(refiner, PointRefiner):
        predictor = refiner.predictor
    else:
        predictor = getattr(refiner.generator, "predictor", None)

    def make_label(clip: Clip) -> np.ndarray:
        image, coarse = read_anchor(fmt, clip, LabelKind.COARSE)
        instance_ids = anchor_instance_ids(fmt, clip, LabelKind.COARSE, coarse.shape)
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
        trainer=trainer,
        movable=[predictor],
    )
