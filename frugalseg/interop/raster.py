"""Shapes → label maps of frugalseg's label kinds, with the tool's label names mapped to classes.

Each shape becomes the label kind it is: masks and polygons a dense label (``fine``, or the kind
the user asks for: ``coarse``, ``pseudo``), boxes ``boxes`` (the box's pixels take its class; the
boxes themselves go beside the label), points ``clicks`` (one labelled pixel per point) and
polylines ``clicks`` too (the line's pixels: a scribble). Pixels no shape covers are 255 (ignore),
or the ``background`` class of the dense labels of the kinds asked. Shapes are drawn in ``z_order``,
then file order, so a later shape covers an earlier one. Instance ids go into a map of their own;
a shape of the ``background`` class is no object: its pixels have instance id 0, as the background
pixels no shape covers do, whatever id the file gives it (a COCO panoptic segment's position, a
CVAT track's).

A box covers the pixels it touches; an edge within `EDGE_TOLERANCE` of a pixel edge is that edge,
so a box drawn on whole pixels comes back whole whatever a tool's percent arithmetic left of it
(Label Studio's 250 px is 250 · 100 / 854 % of an 854 px frame, read back as 249.99999999999997 px).
A box of kind ``boxes`` on a frame that also holds masks or polygons of kind
``boxes`` is the box that made them (frugalseg's exports write a ``boxes`` label's pixels as masks
and the drawn box beside them): it is recorded with the label, not drawn.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from frugalseg.autolabel.boxes import Box
from frugalseg.autolabel.clicks import Click
from frugalseg.data.classes import CITYSCAPES
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats.davis import OBJECTS
from frugalseg.data.io import read_json_object, read_text
from frugalseg.errors import ConfigError, DataError
from frugalseg.interop.rle import polygon_mask
from frugalseg.interop.shapes import SHAPE_TYPES, Frame, Shape, check_inside, check_mask_size

#: The label kind of each shape type (dense shapes take the kind the user chose).
SPARSE_KINDS = {"box": LabelKind.BOXES, "points": LabelKind.CLICKS, "polyline": LabelKind.CLICKS}
IGNORE = "ignore"
DENSE_KINDS = (LabelKind.FINE, LabelKind.COARSE, LabelKind.PSEUDO, LabelKind.REFINED_COARSE)
#: The kinds whose uncovered pixels are the data set's background class unless ``--background`` is given.
BACKGROUND_KINDS = (LabelKind.FINE, LabelKind.PSEUDO)
#: How far (in pixels) a box edge may lie from a pixel edge and still be it: far above the error of
#: percent arithmetic in doubles (1e-13 px) or floats (1e-4 px on a 4K frame), far below what a person draws.
EDGE_TOLERANCE = 1e-3
#: An object data set's classes (`frugalseg.data.formats.davis.OBJECTS`): any tool label names an object.
OBJECT_CLASSES = OBJECTS.names


class ClassMapping:
    """Tool label names → the data set's train ids.

    A name maps through ``names`` (tool name → class name, or ``ignore``: its pixels stay unlabelled),
    else to the class of the same name (exactly, then ignoring case); on Cityscapes' 19 classes its labels of
    no class (``ego vehicle``, ``static`` …) are unlabelled. On an object data set (its classes
    `OBJECT_CLASSES`: DAVIS, MOSE, a folder of frames, a video file) any other name is an object's (the
    page's Rename, a tool's class of it): it maps to ``object``, its object id kept apart.

    Args:
        classes: the data set's class names in train-id order.
        names: tool label name → class name.
    """

    def __init__(self, classes: Sequence[str], names: Mapping[str, str] | None = None) -> None:
        self.classes = tuple(classes)
        self.names = dict(names or {})
        self.void = _cityscapes_void(self.classes)
        lower = {name.lower(): i for i, name in enumerate(self.classes)}
        for tool_name, class_name in self.names.items():
            if class_name not in self.classes and class_name.lower() not in {*lower, IGNORE}:
                raise ConfigError(
                    "--map", f"{tool_name!r} maps to {class_name!r}, not a class: {', '.join(self.classes)}"
                )

    def train_id(
        self, name: str, path: Path, element: str, known: Sequence[str] = (), *, shape: bool = True
    ) -> int:
        """The train id of tool label ``name``; `DataError` naming ``element`` when it maps to none.

        ``known``: the labels the file's shapes use, listed in the error. ``shape``: ``name`` labels a
        shape (an object's, on an object data set); False for a class named by an option (``--background``).
        """
        target = self.names.get(name, name)
        if name in self.names and target.lower() == IGNORE:
            return IGNORE_INDEX
        if target in self.classes:
            return self.classes.index(target)
        for i, class_name in enumerate(self.classes):
            if class_name.lower() == target.lower():
                return i
        if shape and name and self.classes == OBJECT_CLASSES:
            return self.classes.index("object")
        if target in self.void:  # Cityscapes' own labels of no class (``ego vehicle``, ``static`` …)
            return IGNORE_INDEX
        if not name:
            raise DataError(
                path,
                f"{element}: the shape has no label: label it in the tool, or map shapes without one with "
                "--map '=CLASS'",
            )
        tool_names = ", ".join(repr(n) for n in dict.fromkeys(known)) or "none"
        raise DataError(
            path,
            f"{element}: label {name!r} maps to no class; the classes are {', '.join(self.classes)}; "
            f"the file's labels are {tool_names}: map it with --map {_word(name + '=CLASS')} or a "
            "--mapping file",
        )

    def describe(self) -> dict[str, str]:
        """The explicit mapping, for the store's ``run.json``."""
        return dict(sorted(self.names.items()))


def _cityscapes_void(classes: Sequence[str]) -> frozenset[str]:
    """Cityscapes' label names without a train id where ``classes`` are its 19 (else none).

    A tool set up with Cityscapes' own label list draws them, and each had needed ``--map NAME=ignore``.
    """
    from cityscapesscripts.helpers.labels import labels

    if tuple(classes) != CITYSCAPES.names:
        return frozenset()
    return frozenset(label.name for label in labels if label.name not in CITYSCAPES.names)


def read_mapping(path: str | Path) -> dict[str, str]:
    """A mapping file: a JSON object of tool name → class name, or lines ``tool name = class name``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "mapping file does not exist")
    text = read_text(path)
    if text.lstrip().startswith("{"):
        data = read_json_object(path, "a JSON object of tool label name → class name")
        if not all(isinstance(v, str) for v in data.values()):
            raise DataError(path, "expected a JSON object of tool label name → class name")
        return data
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "=" not in line:
            raise DataError(path, f"line {number}: expected 'tool name = class name', got {line!r}")
        tool_name, class_name = line.rsplit("=", 1)
        mapping[tool_name.strip()] = class_name.strip()
    return mapping


@dataclass
class FrameLabel:
    """The label of one kind that one frame's shapes make.

    Attributes:
        label: H×W uint8 train ids, 255 ignore.
        instances: H×W uint16 instance ids (0: none), or None when no shape has one.
        clicks: the points of a ``clicks`` label.
        scribbles: the polylines of a ``clicks`` label (vertices, train id, instance id).
        boxes: the boxes of a ``boxes`` label.
    """

    label: np.ndarray
    instances: np.ndarray | None = None
    clicks: list[Click] = field(default_factory=list)
    scribbles: list[dict[str, object]] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)

    def paint(
        self, where: np.ndarray, train_id: int, instance_id: int | None, origin: tuple[int, int] = (0, 0)
    ) -> None:
        """Give the pixels ``where`` the class ``train_id`` (and ``instance_id``), within their box.

        ``where`` is a window of the frame whose top-left pixel is ``origin`` (row, column).
        """
        rows, cols = np.flatnonzero(where.any(axis=1)), np.flatnonzero(where.any(axis=0))
        if rows.size == 0:
            return
        inside = where[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        top, left = origin[0] + rows[0], origin[1] + cols[0]
        box = slice(top, top + inside.shape[0]), slice(left, left + inside.shape[1])
        self.label[box][inside] = train_id
        if instance_id is not None and self.instances is None:
            self.instances = np.zeros(self.label.shape, np.uint16)
        if self.instances is not None:
            self.instances[box][inside] = instance_id or 0


def shape_kind(shape: Shape, dense_kind: LabelKind) -> LabelKind:
    """The label kind ``shape`` makes: the one its file records, else by its type."""
    return shape.kind or SPARSE_KINDS.get(shape.type, dense_kind)


#: The largest object id an instance map (uint16) holds.
MAX_INSTANCE_ID = 65535


def check_shape(shape: Shape, size: tuple[int, int], path: Path) -> None:
    """Raise `DataError` naming the shape when it leaves a frame of ``size`` (H, W) or is malformed.

    Its object id must fit the 16-bit instance map it is written to (an id over 65,535 had overflowed).
    """
    if shape.instance_id is not None and shape.instance_id > MAX_INSTANCE_ID:
        raise DataError(
            path,
            f"{shape.element}: object id {shape.instance_id} is over {MAX_INSTANCE_ID}, the most an instance "
            "map (16 bits) holds: number the file's objects (tracks, instances) lower",
        )
    if shape.type not in SHAPE_TYPES:
        raise DataError(path, f"{shape.element}: a {shape.type!r} shape is none of {', '.join(SHAPE_TYPES)}")
    if shape.type == "mask":
        check_mask_size(shape, size, path)
        return
    assert shape.points is not None
    check_inside(shape.points, size, path, shape.element)
    height, width = size
    if shape.type == "points" and ((shape.points[:, 0] >= width) | (shape.points[:, 1] >= height)).any():
        x, y = shape.points[int(np.argmax((shape.points[:, 0] >= width) | (shape.points[:, 1] >= height)))]
        raise DataError(
            path, f"{shape.element}: point ({x:g}, {y:g}) lies outside the {width}×{height} frame"
        )
    if shape.type == "polygon" and len(shape.points) < 3:
        raise DataError(path, f"{shape.element}: a polygon needs 3 points, got {len(shape.points)}")
    if shape.type == "polygon" and on_one_line(shape.points):
        raise DataError(
            path, f"{shape.element}: a polygon of no area (its {len(shape.points)} points lie on one line)"
        )
    if shape.type == "polyline" and len(shape.points) < 2:
        raise DataError(path, f"{shape.element}: a polyline needs 2 points, got {len(shape.points)}")
    if shape.type == "box" and (np.array(box_edges(shape.points)[:2]) >= box_edges(shape.points)[2:]).any():
        raise DataError(path, f"{shape.element}: the box {shape.points.reshape(-1).tolist()} is empty")


def on_one_line(points: np.ndarray) -> bool:
    """Whether the N×2 ``points`` lie on one straight line, to `EDGE_TOLERANCE`: a polygon of no area.

    Not a zero signed area: a bow tie's two halves cancel, and it covers pixels.
    """
    offsets = points - points[0]
    lengths = np.hypot(offsets[:, 0], offsets[:, 1])
    far = int(np.argmax(lengths))
    if lengths[far] <= EDGE_TOLERANCE:
        return True
    (dx, dy), length = offsets[far], lengths[far]
    return bool((np.abs(offsets[:, 0] * dy - offsets[:, 1] * dx) <= EDGE_TOLERANCE * length).all())


def box_edges(points: np.ndarray) -> tuple[int, int, int, int]:
    """The edges (x0, y0, x1, y1) of the pixels a box of two corners touches (module docstring)."""
    low, high = snap_to_pixel_edges(points.min(0)), snap_to_pixel_edges(points.max(0))
    (x0, y0), (x1, y1) = np.floor(low).astype(int), np.ceil(high).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def snap_to_pixel_edges(values: np.ndarray) -> np.ndarray:
    """``values`` with those within `EDGE_TOLERANCE` of a whole number set to it."""
    whole = np.rint(values)
    return np.where(np.abs(values - whole) <= EDGE_TOLERANCE, whole, values)


def rasterize(
    frame: Frame,
    size: tuple[int, int],
    train_ids: Sequence[int],
    *,
    dense_kind: LabelKind = LabelKind.FINE,
    background: int | None = None,
    background_kinds: Collection[LabelKind] = DENSE_KINDS,
) -> dict[LabelKind, FrameLabel]:
    """The label of each kind that ``frame``'s shapes make on a frame of ``size`` (H, W).

    ``train_ids`` holds each shape's class (`ClassMapping.train_id` of its label); the shapes must have
    passed `check_shape`. Pixels no shape covers are ``background`` in the labels of
    ``background_kinds`` (dense kinds only), 255 elsewhere; shapes of the ``background`` class have
    instance id 0 (module docstring).
    """
    out: dict[LabelKind, FrameLabel] = {}
    kinds = [shape_kind(shape, dense_kind) for shape in frame.shapes]
    boxed = {LabelKind.BOXES} if any(
        kind is LabelKind.BOXES and shape.type in ("mask", "polygon")
        for shape, kind in zip(frame.shapes, kinds, strict=True)
    ) else set()  # fmt: skip
    order = sorted(range(len(frame.shapes)), key=lambda i: frame.shapes[i].z_order)
    for i in order:
        shape, train_id, kind = frame.shapes[i], train_ids[i], kinds[i]
        if kind not in out:
            filled = background is not None and kind in DENSE_KINDS and kind in background_kinds
            out[kind] = FrameLabel(np.full(size, background if filled else IGNORE_INDEX, np.uint8))
        drawn = not (shape.kind in boxed and shape.type == "box")
        no_object = train_id == background and not shape.negative
        _draw(out[kind], shape, train_id, size, drawn=drawn, no_object=no_object)
    return out


def _draw(
    target: FrameLabel,
    shape: Shape,
    train_id: int,
    size: tuple[int, int],
    *,
    drawn: bool = True,
    no_object: bool = False,
) -> None:
    """Draw one shape into ``target`` and record its points or box (not for shapes mapped to ignore).

    A box not ``drawn`` is only recorded (the box that made the frame's ``boxes`` masks); a shape that
    is ``no_object`` (of the background class) has no instance id.
    """
    kept = train_id != IGNORE_INDEX
    instance = shape.instance_id if kept and not no_object else None
    if shape.type == "mask":
        target.paint(shape.get_mask(), train_id, instance)
        return
    assert shape.points is not None
    if shape.type == "polygon":
        mask, origin = _polygon_within_its_box(shape.points, size)
        target.paint(mask, train_id, instance, origin)
    elif shape.type == "box":
        box = Box(*box_edges(shape.points), train_id, instance)
        if drawn:
            target.paint(
                np.ones((box.y1 - box.y0, box.x1 - box.x0), bool), train_id, instance, (box.y0, box.x0)
            )
        target.boxes += [box] if kept else []
    elif shape.type == "points":
        for x, y in np.floor(shape.points).astype(int).tolist():
            target.paint(np.ones((1, 1), bool), train_id, instance, (y, x))
            target.clicks += [Click(x, y, train_id, instance)] if kept else []
    else:  # polyline: the pixels the line crosses
        line, origin = polyline_pixels(shape.points, size)
        target.paint(line, train_id, instance, origin)
        scribble = {"points": shape.points.tolist(), "train_id": train_id, "instance_id": instance}
        target.scribbles += [scribble] if kept else []


def polyline_pixels(points: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels a polyline of N×2 (x, y) ``points`` crosses on a frame of ``size`` (H, W), within its box.

    Returns:
        The line's bool mask over its box, and the box's top-left pixel (row, column).
    """
    vertices = np.floor(points).astype(np.int32).clip(0, [size[1] - 1, size[0] - 1])
    left, top = vertices.min(0)
    width, height = vertices.max(0) - (left, top) + 1
    canvas = np.zeros((height, width), np.uint8)
    local = (vertices - (left, top)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [local], isClosed=False, color=1, thickness=1)
    return canvas.astype(bool), (int(top), int(left))


def _polygon_within_its_box(points: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """A polygon's mask drawn within its box on a frame of ``size`` (H, W), and the box's top-left pixel.

    Shifting the points by whole pixels that keep them non-negative moves COCO's rasterisation
    pixel for pixel, so the mask is the full-frame one's window, at a fraction of its memory.
    """
    height, width = size
    left, top = np.floor(points.min(0)).clip(0).astype(int)
    right, bottom = np.ceil(points.max(0)).astype(int) + 2
    box_width, box_height = min(int(right), width) - left, min(int(bottom), height) - top
    return polygon_mask(points - (left, top), box_height, box_width), (int(top), int(left))


def _word(text: str) -> str:
    """``text`` as one word of a command line: in single quotes, escaped (`shlex.quote`) if it holds one."""
    return shlex.quote(text) if "'" in text else f"'{text}'"
