"""What every tool reader gives: the shapes drawn on each frame, in the tool's own words.

A reader turns one export file into a `ToolExport`: one `Frame` per annotated frame (a video frame
number or an image name) holding its `Shape` records, each with the tool's label name and the
element of the file it came from, so that an error can name it ("track 3", "annotation 17").
Coordinates are in pixels of the frame, x to the right and y down, pixel edges at integers (the
convention of CVAT, COCO, Label Studio and LabelMe alike); masks are H×W bool arrays of the frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from frugalseg.data.clips import LabelKind
from frugalseg.errors import DataError

#: The shape types a reader may give.
SHAPE_TYPES = ("mask", "polygon", "polyline", "box", "points")
#: The key (COCO attribute, Label Studio result meta, CVAT attribute) under which frugalseg's exports
#: record the annotation seconds of each shape's label, so that an import keeps the store's cost ledger.
SECONDS_KEY = "frugalseg_seconds"


@dataclass(eq=False)
class Shape:
    """One shape drawn by a person (or exported by frugalseg) on one frame.

    Attributes:
        type: one of `SHAPE_TYPES`.
        label: the tool's label name.
        element: what names it in the file ("track 2", "annotation 5"), for errors.
        points: N×2 float (x, y) vertices of a polygon, polyline or points; a box's two corners
            (x0, y0), (x1, y1).
        mask: H×W bool mask of a ``mask`` shape (the whole frame), or None while ``decode`` holds it.
        decode: makes the mask when it is drawn, so that a reader keeps masks compact (an RLE, a
            file name) and an import holds one frame's masks at a time.
        mask_size: (H, W) of a mask that ``decode`` makes, known without decoding it.
        window: (left, top, width, height) of the box a mask is given in (CVAT's ``<mask>``), checked
            inside the frame after the size the file gives the frame is (`check_mask_size`), so that a
            wrong size is named as such, not as a mask leaving the frame.
        place: makes the frame-sized mask of a mask given in its ``window`` for a frame of a size
            (H, W); `fit_frame` uses it for a file that does not give the frame's size (CVAT's job
            exports, and its image tasks exported as video), with the size of the frame found on disk.
        instance_id: the object it belongs to, the same on every frame (a CVAT track, a DAVIS object).
        z_order: drawing order; higher is drawn later (on top).
        kind: the label kind the file records for it (frugalseg's own exports), else None: the kind
            follows the shape type.
        seconds: the annotation seconds the file records for the label of its kind on its frame
            (frugalseg's own exports: the store's ledger, `SECONDS_KEY`), else None.
        ignored: a region the file marks as ignored (a MOTS map's 10000): its pixels are 255 (ignore)
            whatever its label, as a shape mapped to ignore is, and it is no object.
        negative: points a person placed on what is not their object (Label Studio's negative smart
            keypoints, ``is_positive: false``): clicks of the background class that keep the object's id.
    """

    type: str
    label: str
    element: str
    points: np.ndarray | None = None
    mask: np.ndarray | None = None
    instance_id: int | None = None
    z_order: int = 0
    kind: LabelKind | None = None
    decode: Callable[[], np.ndarray] | None = None
    mask_size: tuple[int, int] | None = None
    seconds: float | None = None
    window: tuple[int, int, int, int] | None = None
    place: Callable[[tuple[int, int]], np.ndarray] | None = None
    ignored: bool = False
    negative: bool = False

    def get_mask(self) -> np.ndarray:
        """The H×W bool mask of a ``mask`` shape, decoded now when the reader kept it compact."""
        if self.mask is not None:
            return self.mask
        assert self.decode is not None, f"{self.element}: a mask shape without a mask"
        return self.decode()

    def fit_frame(self, size: tuple[int, int]) -> None:
        """Make a mask the file gives without its frame's size (``place``, no ``mask_size``) of ``size``."""
        if self.type == "mask" and self.mask is None and self.mask_size is None and self.place is not None:
            self.decode, self.mask_size = partial(self.place, size), size

    def size_of_mask(self) -> tuple[int, int]:
        """(H, W) of a ``mask`` shape's mask, without decoding it."""
        if self.mask is not None:
            return (self.mask.shape[0], self.mask.shape[1])
        assert self.mask_size is not None, f"{self.element}: a lazy mask without its size"
        return self.mask_size


@dataclass
class Frame:
    """The shapes of one annotated frame.

    Attributes:
        key: the frame's number in the video (CVAT for video) or its image file name.
        size: (height, width) the file gives the frame, or None when it says nothing.
        shapes: the shapes, in file order.
        element: what names the frame in the file, for errors.
        video: the video a numbered frame is of when the file names one per frame (Label Studio
            video tasks), else None: the export's ``video``.
        percent: the shapes' coordinates are percent of the frame's width and height, scaled to
            pixels once the frame is found (Label Studio video results do not give the frame's size).
        held: the frame only holds boxes that tracks keep after their last keyframe (Label Studio
            draws them to the video's end): left out, not refused, past the clip's end.
        lead_time: the seconds a person took to draw the frame's shapes, all kinds together (a Label
            Studio annotation's ``lead_time``), else None.
        empty: a person's annotation of the frame that holds no shape (a Label Studio annotation whose
            every region was deleted): no object of any class is there, an all-background label.
    """

    key: int | str
    size: tuple[int, int] | None
    shapes: list[Shape] = field(default_factory=list)
    element: str = ""
    video: str | None = None
    percent: bool = False
    held: bool = False
    lead_time: float | None = None
    empty: bool = False


@dataclass
class ToolExport:
    """One annotation tool's export, read.

    Attributes:
        path: the file read.
        tool: the reader's name (``cvat-video``, ``coco`` …).
        frames: the annotated frames.
        labels: the label names the file declares (its label set), in file order.
        video: the name of the video a CVAT for video task was made from, if the file gives one.
        numbers: the frame numbers of a CVAT for video task (``start_frame + k · step``), else None.
        uncovered_void: the pixels no shape covers are void (unlabelled) in the format itself, as COCO
            panoptic's segment id 0 is: they stay 255 unless ``--background`` names a class.
    """

    path: Path
    tool: str
    frames: list[Frame]
    labels: tuple[str, ...] = ()
    video: str | None = None
    numbers: range | None = None
    uncovered_void: bool = False

    def shape_count(self) -> int:
        """How many shapes all frames hold."""
        return sum(len(frame.shapes) for frame in self.frames)


def parse_seconds(value: object, path: Path, element: str, name: str = SECONDS_KEY) -> float | None:
    """A recorded ``name`` value as seconds (None or empty: none); `DataError` unless a number ≥ 0."""
    if value is None or value == "":
        return None
    seconds = math.nan
    if not isinstance(value, bool):
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            pass
    if not math.isfinite(seconds) or seconds < 0:
        raise DataError(path, f"{element}: {name} {value!r:.40} is not a number of seconds ≥ 0")
    return seconds


def parse_points(text: str, path: Path, element: str) -> np.ndarray:
    """CVAT's ``"x1,y1;x2,y2;…"`` as an N×2 float array; `DataError` naming ``element`` when malformed."""
    try:
        pairs = [[float(value) for value in pair.split(",")] for pair in text.strip().split(";") if pair]
        points = np.asarray(pairs, np.float64)
    except ValueError as err:
        raise DataError(path, f"{element}: points {text!r} are not 'x,y;x,y;…' numbers ({err})") from err
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise DataError(path, f"{element}: points {text!r} are not 'x,y;x,y;…' pairs")
    return points


def check_inside(points: np.ndarray, size: tuple[int, int], path: Path, element: str) -> None:
    """Raise `DataError` naming ``element`` when a point lies outside a frame of ``size`` (H, W).

    Points may lie on the frame's far edges (x = W, y = H): polygon and box corners do.
    """
    height, width = size
    bad = ~np.isfinite(points).all(axis=1) | (points[:, 0] < 0) | (points[:, 0] > width)
    bad |= (points[:, 1] < 0) | (points[:, 1] > height)
    if bad.any():
        x, y = points[int(np.argmax(bad))]
        raise DataError(path, f"{element}: point ({x:g}, {y:g}) lies outside the {width}×{height} frame")


def check_mask_size(shape: Shape, size: tuple[int, int] | None, path: Path) -> None:
    """Raise `DataError` naming the shape when its mask is not of its frame's size, or its box leaves it."""
    height, width = shape.size_of_mask()
    if size is not None and (height, width) != tuple(size):
        raise DataError(
            path, f"{shape.element}: mask of {width}×{height} does not fit the {size[1]}×{size[0]} frame"
        )
    if shape.window is not None:
        left, top, box_width, box_height = shape.window
        if left < 0 or top < 0 or left + box_width > width or top + box_height > height:
            raise DataError(
                path,
                f"{shape.element}: mask box ({left}, {top}) {box_width}×{box_height} leaves the "
                f"{width}×{height} frame",
            )
