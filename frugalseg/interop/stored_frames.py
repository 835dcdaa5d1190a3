"""A label store → the objects and marks a tool file holds (`stored_frames`), for the tool writers.

Every label of a store becomes one object per (kind, class, instance) present in it,
a mask; the tool writers turn them into their own records. What a person drew goes with them: the
boxes of a ``boxes`` label (its ``_boxes.json``) and the clicks of a ``clicks`` label whose every
labelled pixel is a click (its ``_clicks.json``), which the writers write as the tool's boxes and
points and the readers give back as the ``boxes`` and ``clicks`` labels they were. So does each
label's annotation seconds (the store's cost ledger): COCO, Label Studio and CVAT for video record
them with every object and mark of the label (`frugalseg.interop.shapes.SECONDS_KEY`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from frugalseg.autolabel.boxes import Box, boxes_json_path, read_boxes_json
from frugalseg.autolabel.clicks import Click, clicks_json_path, read_clicks_json
from frugalseg.autolabel.store import LabelStore, instances_path
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.data.formats import Format
from frugalseg.data.io import imread, read_json_object, read_label
from frugalseg.errors import DataError
from frugalseg.interop.raster import BACKGROUND_KINDS, polyline_pixels

#: One object of an exported label: (kind, class name, instance id or None, H×W bool mask).
ExportObject = tuple[LabelKind, str, "int | None", np.ndarray]
#: A click or box a person gave, as a tool file holds it: (its object's or class's name, the click or box).
Mark = tuple[str, "Click | Box"]


@dataclass(frozen=True)
class Scribble:
    """A line a person drew on a ``clicks`` label (a tool's polyline): (x, y) vertices, class, object."""

    points: tuple[tuple[float, float], ...]
    train_id: int
    instance_id: int | None = None


def regions(label: np.ndarray, instances: np.ndarray | None) -> list[tuple[int, int | None, np.ndarray]]:
    """(train id, instance id or None, mask) of every labelled region, sorted by class then instance."""
    ids = instances.astype(np.int64) if instances is not None else np.zeros(label.shape, np.int64)
    keys = label.astype(np.int64) * 65536 + ids
    found = []
    for key in np.unique(keys[label != IGNORE_INDEX]).tolist():
        train_id, instance = divmod(key, 65536)
        found.append((train_id, instance or None, keys == key))
    return found


@dataclass
class StoredFrame:
    """One frame of a store with its labelled objects, ready for a tool writer.

    Attributes:
        clip: the frame's clip.
        offset: its offset in the clip.
        name: its path relative to the data set folder (what a tool file names it by).
        size: (H, W).
        objects: (kind, class name, instance id or None, mask) of every region of every label kind.
        clicks: the clicks of its ``clicks`` label with their class names, when they and `scribbles`
            draw all of that label (every labelled pixel a click or on a line): writers write them as the
            tool's points instead of the label's masks (`tool_objects`).
        scribbles: the lines of that label with their class names, on the same terms: a writer whose tool
            has polylines writes them as such, others the label's masks.
        boxes: the boxes of its ``boxes`` label with their class names: writers write them as the
            tool's boxes beside the label's masks.
        seconds: the annotation seconds of each of its labels (the store's ledger): writers record
            them with each object and mark of that kind (`SECONDS_KEY`) where the tool's file can.
    """

    clip: Clip
    offset: int
    name: str
    size: tuple[int, int]
    objects: list[ExportObject]
    clicks: list[tuple[str, Click]] = field(default_factory=list)
    boxes: list[tuple[str, Box]] = field(default_factory=list)
    seconds: dict[LabelKind, float] = field(default_factory=dict)
    scribbles: list[tuple[str, Scribble]] = field(default_factory=list)

    def _clicks_drawn(self, polylines: bool) -> bool:
        """Whether a writer draws the ``clicks`` label by its marks (lines only if it writes polylines)."""
        return bool(self.clicks or self.scribbles) and (polylines or not self.scribbles)

    def tool_objects(self, *, polylines: bool = False) -> list[ExportObject]:
        """The objects a writer writes as masks: all but a ``clicks`` label's when its marks draw it.

        Args:
            polylines: whether the writer writes `scribbles` as the tool's polylines.
        """
        drawn = self._clicks_drawn(polylines)
        return [o for o in self.objects if not (drawn and o[0] is LabelKind.CLICKS)]

    def marks(self, *, polylines: bool = False) -> list[Mark]:
        """The frame's clicks (where its marks draw the label: `tool_objects`), then its boxes, named."""
        clicks = self.clicks if self._clicks_drawn(polylines) else []
        drawn: list[tuple[str, Click | Box]] = [*clicks, *self.boxes]
        return [(self.name_of(mark.instance_id, name), mark) for name, mark in drawn]

    def lines(self) -> list[tuple[str, Scribble]]:
        """The frame's `scribbles`, each under the name `name_of` gives it (for a writer of polylines)."""
        return [(self.name_of(line.instance_id, name), line) for name, line in self.scribbles]

    def name_of(self, instance: int | None, class_name: str) -> str:
        """What a tool calls ``instance``: the name of the frame's object of that id, else ``class_name``.

        A store's objects are named by class; the annotation page names them as the person did, and a
        click or box of an object goes under the object's name. A mark of the ``background`` class (an
        object's negative click, under its id) keeps it: under the object's name it came back positive.
        """
        if instance is None or class_name.lower() == "background":
            return class_name
        return next((name for _, name, i, _ in self.objects if i == instance), class_name)


def with_object_names(frames: list[StoredFrame], names: dict[str, dict[str, str]]) -> list[StoredFrame]:
    """``frames`` with each object under the name ``names`` give it: clip → object id → name.

    A store names its objects by class; an annotation session's export also records the names the person
    gave (``object_names`` of its ``run.json``), so a tool file made from the store shows them as the
    page's own Export does.
    """
    named = []
    for frame in frames:
        own = names.get(frame.clip.clip_id, {})
        objects = [
            (kind, own.get(str(instance), name) if instance is not None else name, instance, mask)
            for kind, name, instance, mask in frame.objects
        ]
        named.append(replace(frame, objects=objects))
    return named


def stored_frames(store: LabelStore, fmt: Format) -> list[StoredFrame]:
    """Every labelled frame of ``store`` (whose data set ``fmt`` is) with its objects, in store order.

    Only the data set's frames are read, never its own labels: a store made from a person's frames
    exports without them.
    """
    records = store.records()
    if not records:
        raise DataError(store.manifest_path, "the store holds no labels to export")
    clips = {
        (c.split, c.clip_id): c
        for split in sorted({r["split"] for r in records})
        for c in fmt.clips(split, labelled=False)
    }
    frames: dict[tuple[str, str, int], StoredFrame] = {}
    for record in records:
        clip = clips.get((record["split"], record["clip_id"]))
        if clip is None:
            raise DataError(store.manifest_path, f"clip {record['clip_id']} is not a clip of {fmt.root}")
        key = (record["split"], record["clip_id"], int(record["offset"]))
        path = store.root / record["path"]
        label = read_label(path, fmt.num_classes)
        side = instances_path(path)
        instances = _read_instances(side, label.shape) if side.is_file() else None
        if key not in frames:
            frame_path = clip.frame_path(key[2])
            name = frame_name(frame_path, fmt.root)
            frames[key] = StoredFrame(clip, key[2], name, (label.shape[0], label.shape[1]), [])
        kind = LabelKind(record["kind"])
        frames[key].seconds[kind] = float(record.get("seconds") or 0)
        objects = frame_objects(label, instances, fmt.class_names, kind)
        frames[key].objects += undrawn_background(objects, label)
        if kind is LabelKind.CLICKS:
            frames[key].clicks, frames[key].scribbles = _given_marks(path, label, instances, fmt.class_names)
        elif kind is LabelKind.BOXES and boxes_json_path(path).is_file():
            boxes = read_boxes_json(boxes_json_path(path), (label.shape[0], label.shape[1]))
            frames[key].boxes = [(fmt.class_names[box.train_id], box) for box in boxes]
    return list(frames.values())


def _given_marks(
    path: Path, label: np.ndarray, instances: np.ndarray | None, classes: Sequence[str]
) -> tuple[list[tuple[str, Click]], list[tuple[str, Scribble]]]:
    """The clicks and lines of a stored ``clicks`` label, by class, when they draw its pixels and objects.

    Lines are drawn first and clicks over them, as the CVAT writer orders them (``z_order``). A label
    drawn otherwise (clicks with a radius, masks imported as clicks) has none.
    """
    side = clicks_json_path(path)
    if not side.is_file():
        return [], []
    shape = (label.shape[0], label.shape[1])
    clicks = read_clicks_json(side, shape)
    lines = [
        _scribble(item, side) for item in read_json_object(side, "a clicks JSON object").get("scribbles", [])
    ]
    drawn = np.full(label.shape, IGNORE_INDEX, np.uint8)
    objects = np.zeros(label.shape, np.int64)
    for line in lines:
        pixels, (top, left) = polyline_pixels(np.asarray(line.points, np.float64), shape)
        window = np.s_[top : top + pixels.shape[0], left : left + pixels.shape[1]]
        drawn[window][pixels] = line.train_id
        objects[window][pixels] = line.instance_id or 0
    for click in clicks:
        drawn[click.y, click.x], objects[click.y, click.x] = click.train_id, click.instance_id or 0
    # objects are compared where the store keeps them (`label clicks` writes no instance map)
    same_objects = instances is None or np.array_equal(objects, instances.astype(np.int64))
    if not (clicks or lines) or not np.array_equal(drawn, label) or not same_objects:
        return [], []
    return [(classes[c.train_id], c) for c in clicks], [(classes[line.train_id], line) for line in lines]


def _scribble(item: object, path: Path) -> Scribble:
    """One line of a clicks JSON's ``scribbles`` (`DataError` naming ``path`` when it is not one).

    A line has at least 2 finite vertices and a class below 255 (ignore).
    """
    form = '{"points": [[x, y], …] (2 or more), "train_id": 0…254, "instance_id": int | null}'
    try:
        if not isinstance(item, dict):
            raise TypeError(item)
        points = tuple((float(x), float(y)) for x, y in item["points"])
        train_id, instance = int(item["train_id"]), item.get("instance_id")
        if len(points) < 2 or not np.isfinite(points).all() or not 0 <= train_id < IGNORE_INDEX:
            raise ValueError(item)
        return Scribble(points, train_id, None if instance is None else int(instance))
    except (KeyError, TypeError, ValueError, OverflowError):
        raise DataError(path, f"a scribble must be {form}, got {item!r}") from None


def _read_instances(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The instance ids beside a stored label; `DataError` when not a single-channel map of its size."""
    ids = imread(path, cv2.IMREAD_UNCHANGED)
    if ids is None or ids.shape != shape:
        raise DataError(path, f"instance ids must be a single-channel PNG of the label's size {shape}")
    return ids


def frame_objects(
    label: np.ndarray, instances: np.ndarray | None, classes: Sequence[str], kind: LabelKind
) -> list[ExportObject]:
    """The objects a tool file holds for one label: a mask per (class, instance) present in it."""
    return [(kind, classes[t], i, m) for t, i, m in regions(label, instances)]


def undrawn_background(objects: list[ExportObject], label: np.ndarray) -> list[ExportObject]:
    """``objects`` less a ``fine`` or ``pseudo`` label's background, where an import gives it back.

    An import fills the pixels no shape of such a label covers with the data set's ``background`` class,
    unless the file draws that class (`frugalseg.interop.stores`). Drawn, a pixel a person erased in the
    tool came back unlabelled; so it is written only where the label has unlabelled pixels to keep, or
    nothing else (a frame holding nothing).
    """
    background = [o for o in objects if o[1].lower() == "background"]
    if not background or objects[0][0] not in BACKGROUND_KINDS or (label == IGNORE_INDEX).any():
        return objects
    return [o for o in objects if o[1].lower() != "background"] or objects


def frame_name(path: Path, root: Path) -> str:
    """A frame's name in a tool file: its path in the data set (``car-shadow.mp4/00005`` in a video).

    Paths are compared as written, not resolved, so a clip folder linked in from elsewhere keeps
    its place; a frame outside the data set folder is named by its clip folder and file
    (``car-shadow/00005.jpg``), so the frames of several clips never share a name.
    """
    base = Path(os.path.abspath(root if root.is_dir() else root.parent))
    absolute = Path(os.path.abspath(path))
    if absolute.is_relative_to(base):
        return absolute.relative_to(base).as_posix()
    return PurePosixPath(absolute.parent.name, absolute.name).as_posix()
