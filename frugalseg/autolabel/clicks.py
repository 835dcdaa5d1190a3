"""Simulated click annotations (paper 004, section 4.2) written as sparse labels plus the points as JSON.

The protocol: every instance of an instance class gets one click; every other class gets one click
per 8-connected component of at least ``min_stuff_area`` (512) pixels at the data set's own
resolution (a label resized by s before clicking gets the area scaled by s², `scaled_min_area`).
The click is the object's centroid (rounded to the nearest pixel) when that pixel lies inside the
object, else a random pixel of the object drawn from a generator seeded by (seed, clip id), so a
resumed run gives the same clicks.

Where instance ids exist, regions of an instance class without an instance number (groups such as
"car group") are treated like stuff (components of at least ``min_stuff_area`` pixels). Without
instance ids (CamVid) nothing tells an instance from a fragment, so the minimum area applies to
every class: a click per 8-connected fragment of any size put 44% of CamVid's clicks on the thin,
broken-up Pole class, and a model trained on them predicted Pole everywhere.

The label map is 255 (ignore) everywhere except the clicked pixels and, with ``radius`` r > 0, the
pixels within Euclidean distance r of a click that carry the click's class in the ground truth (a
disc never labels another class). The points go to JSON beside the label in the store:
``{split}/{folder}/{stem}_clicks.json`` next to ``{stem}_clicks_labelTrainIds.png``::

    {"image_size": [H, W], "radius": r,
     "clicks": [{"x": 12, "y": 40, "train_id": 13, "instance_id": 26001, "source": "centroid"}, …]}

``x`` is the column and ``y`` the row of the clicked pixel; ``source`` is ``centroid``, ``random``
or ``given``; ``instance_id`` is null for components.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.autolabel.anchor_frames import label_anchor_frames
from frugalseg.autolabel.objects import LabelObject, split_objects
from frugalseg.autolabel.runs import (
    LabellingSummary,
    TrainerOptions,
    anchor_instance_ids,
    image_rng,
)
from frugalseg.autolabel.store import LabelStore, read_json_list, side_json_path
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.data.formats import Format
from frugalseg.data.io import write_json_atomic
from frugalseg.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Click:
    """One click: pixel column ``x``, row ``y``, its class and where it came from."""

    x: int
    y: int
    train_id: int
    instance_id: int | None = None
    source: str = "given"


def object_click(obj: LabelObject, rng: np.random.Generator) -> Click:
    """The click on one object: its rounded centroid if inside, else a random pixel of it."""
    rows, cols = np.nonzero(obj.mask)
    if rows.size == 0:
        raise ValueError("cannot click on an empty object")
    y, x = int(np.floor(rows.mean() + 0.5)), int(np.floor(cols.mean() + 0.5))
    if obj.mask[y, x]:
        return Click(x, y, obj.train_id, obj.instance_id, "centroid")
    pick = int(rng.integers(rows.size))
    return Click(int(cols[pick]), int(rows[pick]), obj.train_id, obj.instance_id, "random")


def simulate_clicks(
    label: np.ndarray,
    instance_ids: np.ndarray | None,
    instance_train_ids: Sequence[int],
    rng: np.random.Generator,
    *,
    min_stuff_area: int = 512,
    label_scale: float = 1.0,
) -> list[Click]:
    """The clicks of paper 004 on one ground-truth label map (train ids, 255 ignored).

    Instances (by instance id) each get a click; every other region — stuff, instance-class pixels
    outside an instance, and every class when ``instance_ids`` is None — gets one click per
    8-connected component of at least ``min_stuff_area`` pixels at the original resolution, i.e.
    `scaled_min_area` (``min_stuff_area``, ``label_scale``) pixels of ``label`` when it was resized by
    ``label_scale`` before clicking. Instances come first, then components of instance classes, then
    stuff classes by train id; components go in `split_objects` order. Random points are drawn in that
    order.
    """
    things = sorted(set(int(t) for t in instance_train_ids))
    present = [int(t) for t in np.unique(label) if t != IGNORE_INDEX]
    stuff = [t for t in present if t not in things]
    min_area = scaled_min_area(min_stuff_area, label_scale)
    objects = [
        *split_objects(label, instance_ids, train_ids=things, min_component_area=min_area),
        *split_objects(label, None, train_ids=stuff, min_component_area=min_area),
    ]
    return [object_click(obj, rng) for obj in objects]


def scaled_min_area(min_area: int, label_scale: float = 1.0) -> int:
    """The smallest region that gets a click, in pixels of a label resized by ``label_scale``.

    ``min_area`` is meant at the original resolution; the result is ``round(min_area · scale²)``, at least 1.
    """
    if label_scale <= 0:
        raise ValueError(f"label_scale must be positive, got {label_scale}")
    return max(1, int(round(min_area * label_scale * label_scale)))


def clicks_per_class(clicks: Sequence[Click], num_classes: int) -> list[int]:
    """How many of ``clicks`` fall on each train id 0…num_classes − 1."""
    counts = [0] * num_classes
    for click in clicks:
        if 0 <= click.train_id < num_classes:
            counts[click.train_id] += 1
    return counts


def _outside(clicks: Sequence[Click], shape: tuple[int, int]) -> str | None:
    """What is wrong with the first click outside an image of ``shape`` (H, W), or None."""
    height, width = shape
    for number, click in enumerate(clicks, start=1):
        if not (0 <= click.x < width and 0 <= click.y < height):
            return f"click {number} at (x={click.x}, y={click.y}) lies outside the {width}×{height} image"
    return None


def render_clicks(
    clicks: Sequence[Click],
    shape: tuple[int, int],
    *,
    radius: float = 0,
    support: np.ndarray | None = None,
) -> np.ndarray:
    """The sparse label map of ``clicks``: 255 except within ``radius`` of a click.

    A pixel takes the class of its nearest click within ``radius`` (the first click on a tie); with
    ``support`` (a label map) a disc only covers pixels whose ``support`` value is the click's class.

    Raises:
        ValueError: a click outside the image, or a negative radius.
    """
    if radius < 0:
        raise ValueError(f"click radius must be ≥ 0, got {radius}")
    problem = _outside(clicks, shape)
    if problem is not None:
        raise ValueError(problem)
    out = np.full(shape, IGNORE_INDEX, np.uint8)
    nearest = np.full(shape, np.inf)
    reach = int(np.floor(radius))
    for click in clicks:
        top, left = max(click.y - reach, 0), max(click.x - reach, 0)
        bottom, right = min(click.y + reach + 1, shape[0]), min(click.x + reach + 1, shape[1])
        rows, cols = np.ogrid[top:bottom, left:right]
        dist2 = (rows - click.y) ** 2 + (cols - click.x) ** 2
        take = (dist2 <= radius * radius) & (dist2 < nearest[top:bottom, left:right])
        if support is not None:
            take &= support[top:bottom, left:right] == click.train_id
        out[top:bottom, left:right][take] = click.train_id
        nearest[top:bottom, left:right][take] = dist2[take]
    return out


def clicks_json_path(label_path: str | Path) -> Path:
    """Where the points of a stored clicks label live: ``{stem}_clicks.json`` beside its PNG."""
    return side_json_path(label_path, LabelKind.CLICKS.value)


def clicks_json(clicks: Sequence[Click], shape: tuple[int, ...], radius: float) -> dict[str, Any]:
    """The points of one image as ``{stem}_clicks.json`` holds them (format in the module docstring)."""
    return {"image_size": list(shape), "radius": radius, "clicks": [asdict(click) for click in clicks]}


def write_clicks_json(
    path: str | Path, clicks: Sequence[Click], shape: tuple[int, int], radius: float
) -> None:
    """Write the points of one image (`clicks_json`)."""
    write_json_atomic(path, clicks_json(clicks, shape, radius))


def read_clicks_json(path: str | Path, shape: tuple[int, int] | None = None) -> list[Click]:
    """Read the points of one image; with ``shape`` (H, W) every click must lie inside it.

    Raises:
        DataError: the file is missing, not JSON of the expected form, or a click lies outside.
    """
    clicks = read_json_list(
        path,
        "clicks",
        lambda item: Click(
            int(item["x"]),
            int(item["y"]),
            int(item["train_id"]),
            None if item.get("instance_id") is None else int(item["instance_id"]),
            str(item.get("source", "given")),
        ),
        '{"clicks": [{"x": int, "y": int, "train_id": int}, …]}',
    )
    problem = None if shape is None else _outside(clicks, shape)
    if problem is not None:
        raise DataError(path, problem)
    return clicks


def click_split(
    fmt: Format,
    split: str,
    store: LabelStore,
    *,
    radius: float = 0,
    min_stuff_area: int = 512,
    seed: int = 0,
    progress: bool = True,
    trainer: TrainerOptions | None = None,
    label_scale: float = 1.0,
) -> LabellingSummary:
    """Write ``clicks`` labels for the anchor frame (offset 0) of every clip of ``split`` with a fine label.

    The clicks are simulated from the fine label (and its instance ids where the format has them)
    with `simulate_clicks`; the label map is `render_clicks` of them (discs limited to the clicked
    class) and the points go to `clicks_json_path` of the label. Labels already in ``store`` are
    skipped, so a killed run resumes where it stopped and gives the same clicks.
    With ``trainer`` the images are shared out among Lightning's processes (`label_anchor_frames`).
    ``label_scale`` is the factor the stored labels were resized by from the original resolution at
    which ``min_stuff_area`` is meant (`scaled_min_area`).
    The clicks of the split per class (every label of the split in the store, written now or
    before) go to `clicks_per_class_path` (`store_clicks_per_class`) and to the log.
    """
    if radius < 0 or min_stuff_area < 1 or label_scale <= 0:
        raise ConfigError(
            "radius",
            f"need radius ≥ 0, min_stuff_area ≥ 1 and label_scale > 0, got {radius}, {min_stuff_area} "
            f"and {label_scale}",
        )
    things = list(fmt.classes.instance_classes)

    def make_label(clip: Clip) -> np.ndarray:
        label = fmt.read_label(clip.require_label(0, LabelKind.FINE))
        instance_ids = anchor_instance_ids(fmt, clip, LabelKind.FINE, label.shape)
        clicks = simulate_clicks(
            label,
            instance_ids,
            things,
            image_rng(seed, clip.clip_id),
            min_stuff_area=min_stuff_area,
            label_scale=label_scale,
        )
        points = clicks_json_path(store.label_path(clip, 0, LabelKind.CLICKS))
        write_clicks_json(points, clicks, label.shape, radius)
        return render_clicks(clicks, label.shape, radius=radius, support=label)

    settings: dict[str, object] = {
        "radius": radius,
        "min_stuff_area": min_stuff_area,
        "seed": seed,
        "instance_train_ids": things,
    }
    if label_scale != 1.0:  # recorded only when used, so stores made before keep matching
        settings["label_scale"] = label_scale
    summary = label_anchor_frames(
        fmt,
        split,
        store,
        source=LabelKind.FINE,
        kind=LabelKind.CLICKS,
        engine="simulated_clicks",
        settings=settings,
        make_label=make_label,
        progress=progress,
        verb="clicking",
        trainer=trainer,
    )
    if summary.rank == 0:
        counts = store_clicks_per_class(store, split, fmt.classes.names)
        write_json_atomic(clicks_per_class_path(store, split), counts, indent=2)
        logger.info(
            "clicks of %s per class (%d in all): %s",
            split,
            counts["total"],
            ", ".join(f"{name} {n}" for name, n in zip(counts["classes"], counts["clicks"], strict=True)),
        )
    return summary


def clicks_per_class_path(store: LabelStore, split: str) -> Path:
    """Where `click_split` writes the clicks of ``split`` per class: ``clicks_per_class_{split}.json``."""
    return store.root / f"clicks_per_class_{split}.json"


def store_clicks_per_class(store: LabelStore, split: str, class_names: Sequence[str]) -> dict[str, Any]:
    """The clicks per class of every ``clicks`` label of ``split`` in ``store`` (read from their JSON).

    Returns ``{"split": split, "images": n, "classes": [name, …], "clicks": [clicks, …], "total": clicks}``
    with classes in train-id order.
    """
    counts = [0] * len(class_names)
    images = 0
    for record in store.records():
        if record["kind"] != LabelKind.CLICKS.value or record["split"] != split:
            continue
        images += 1
        for train_id, n in enumerate(
            clicks_per_class(read_clicks_json(clicks_json_path(store.root / record["path"])), len(counts))
        ):
            counts[train_id] += n
    return {
        "split": split,
        "images": images,
        "classes": list(class_names),
        "clicks": counts,
        "total": sum(counts),
    }
