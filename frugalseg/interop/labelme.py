"""LabelMe's annotations read into shapes: the JSON files of the labelme program and the XML of MIT's LabelMe.

labelme JSON (one file per image: ``imagePath``, ``imageHeight``, ``imageWidth``, ``shapes``):
``polygon``, ``rectangle`` (two corners), ``point``, ``line`` and ``linestrip`` (polylines),
``circle`` (centre and a point on it, drawn as a filled disc mask) and ``mask`` (a base64 PNG of the
shape's box, placed at its first point). Shapes that share a ``group_id`` are one object, the same in
every file of the import: object ``group_id`` + 1 (labelme's group ids are whole numbers from 0, and
id 0 is the background of an instance map), so group 0 is object 1 on every frame. A shape without
a group is an object of its own: the ungrouped shapes of a file take, in file order, the ids 1, 2 …
that no group of the import takes (they have no identity across files: each file's first one
takes the same id). A ``group_id`` that is no whole number from 0 to `MAX_GROUP_ID` is refused.

MIT LabelMe XML (``Annotations/<folder>/<image>.xml``, as LabelMe's web tool saves them):
``<object>`` with a ``<polygon>`` of ``<pt><x><y>`` (a box when its ``<type>`` is
``bounding_box``), or a ``<segm>`` whose ``<mask>`` PNG lies in ``Masks/<folder>/`` (a pixel is in
the mask where any channel is non-zero). Deleted objects are left out; an object's ``<id>`` + 1 is
its instance id. The scribbles a segm was drawn from are not read: the mask is the annotation.

A path is one file or a folder whose ``*.json`` / ``*.xml`` files are read (sorted).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from frugalseg.data.io import image_size, imread
from frugalseg.errors import DataError
from frugalseg.interop.cvat import place_box
from frugalseg.interop.registry import ToolFormat, register_reader
from frugalseg.interop.shapes import Frame, Shape, ToolExport
from frugalseg.interop.tool_files import parse_xml, read_tool_json

#: The labelme program's JSON, and MIT LabelMe's XML (CVAT's LabelMe 3.0).
LABELME = ToolFormat("labelme", ".json", "3.0")

#: The largest group id: its object id (+ 1) is the largest an instance map (16 bits) holds.
MAX_GROUP_ID = 65534

_JSON_TYPES = {"polygon": "polygon", "rectangle": "box", "point": "points", "line": "polyline",
               "linestrip": "polyline", "circle": "mask", "mask": "mask"}  # fmt: skip


def _files(path: Path, suffix: str) -> list[Path]:
    if path.is_dir():
        files = sorted(path.rglob(f"*{suffix}"))
        if not files:
            raise DataError(path, f"holds no {suffix} annotation files")
        return files
    if not path.is_file():
        raise DataError(path, "file does not exist")
    return [path]


@register_reader(LABELME)
def read_labelme(path: str | Path) -> ToolExport:
    """Read labelme JSON files, or MIT LabelMe XML files (a file, or a folder of either)."""
    path = Path(path)
    xml = path.suffix == ".xml" or (path.is_dir() and not any(path.rglob("*.json")))
    files = _files(path, ".xml" if xml else ".json")
    if xml:
        frames = [_read_xml(f) for f in files]
    else:
        read = [_read_json(f) for f in files]
        frames = [frame for frame, _ in read]
        _number_ungrouped([ungrouped for _, ungrouped in read], frames)
    if path.is_dir():  # errors found when importing name the folder: each frame and shape names its file
        for file, frame in zip(files, frames, strict=True):
            frame.element = file.relative_to(path).as_posix()
            for shape in frame.shapes:
                shape.element = f"{frame.element}: {shape.element}"
    labels = dict.fromkeys(shape.label for frame in frames for shape in frame.shapes)
    return ToolExport(path, "labelme", [f for f in frames if f.shapes], tuple(labels))


def _number_ungrouped(ungrouped: list[list[Shape]], frames: list[Frame]) -> None:
    """Give each file's ungrouped shapes, in order, the ids 1, 2 … that no group of the import takes."""
    taken = {s.instance_id for frame in frames for s in frame.shapes if s.instance_id is not None}
    for shapes in ungrouped:
        free = (number for number in range(1, len(taken) + len(shapes) + 1) if number not in taken)
        for shape, number in zip(shapes, free, strict=False):
            shape.instance_id = number


def _group_object(group: Any, path: Path, element: str) -> int | None:
    """The object id of a shape's ``group_id`` (module docstring): None for none."""
    if group is None:
        return None
    if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group <= MAX_GROUP_ID:
        raise DataError(
            path, f"{element}: group_id {group!r:.40} is not a whole number from 0 to {MAX_GROUP_ID}"
        )
    return group + 1


def _read_json(path: Path) -> tuple[Frame, list[Shape]]:
    """A labelme file's frame, and its ungrouped shapes, whose ids `_number_ungrouped` gives."""
    data = read_tool_json(path)
    try:
        size = (int(data["imageHeight"]), int(data["imageWidth"]))
        frame = Frame(str(data["imagePath"]).replace("\\", "/").lstrip("./"), size, element=path.name)
        entries = list(data["shapes"])
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(
            path, f"not a labelme file: lacks imagePath, imageHeight, imageWidth or shapes ({err!r})"
        ) from err
    ungrouped = []
    for position, entry in enumerate(entries, start=1):
        element = f"shape {position}"
        kind = _JSON_TYPES.get(entry.get("shape_type") or "polygon")
        if kind is None:
            raise DataError(path, f"{element}: shape_type {entry.get('shape_type')!r} is not read")
        instance = _group_object(entry.get("group_id"), path, element)
        try:
            points = np.asarray(entry.get("points") or [], np.float64).reshape(-1, 2)
        except (TypeError, ValueError) as err:
            raise DataError(
                path, f"{element}: points {str(entry.get('points'))[:60]} are not a list of [x, y] pairs"
            ) from err
        shape = Shape(kind, str(entry.get("label", "")), element, points=points, instance_id=instance)
        if entry.get("shape_type") == "circle":
            if len(points) != 2:
                raise DataError(
                    path, f"{element}: a circle needs 2 points (its centre and one on it), got {len(points)}"
                )
            _check_circle(points, size, path, element)
            shape.points, shape.decode, shape.mask_size = None, partial(_disc, points, size), size
        elif kind == "mask":
            shape.decode = _placed_mask(entry.get("mask"), points, size, path, element)
            shape.points, shape.mask_size = None, size
        frame.shapes.append(shape)
        if instance is None:
            ungrouped.append(shape)
    return frame, ungrouped


def _check_circle(points: np.ndarray, size: tuple[int, int], path: Path, element: str) -> None:
    """Raise `DataError` naming ``element`` when the circle leaves the frame, as a polygon point may not."""
    (cx, cy), (px, py) = points[:2]
    radius = np.hypot(px - cx, py - cy)
    height, width = size
    if not (np.isfinite(radius) and radius <= min(cx, cy, width - cx, height - cy)):
        raise DataError(
            path,
            f"{element}: the circle of radius {radius:g} around ({cx:g}, {cy:g}) leaves the "
            f"{width}×{height} frame",
        )


def _disc(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    (cx, cy), (px, py) = points[:2]
    canvas = np.zeros(size, np.uint8)
    cv2.circle(canvas, (int(round(cx)), int(round(cy))), int(round(np.hypot(px - cx, py - cy))), 1, -1)
    return canvas.astype(bool)


def _placed_mask(
    encoded: Any, points: np.ndarray, size: tuple[int, int], path: Path, element: str
) -> Callable[[], np.ndarray]:
    """What makes a labelme ``mask`` shape: its box's base64 PNG (read now) placed at its first point."""
    from PIL import Image

    try:
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))
    except Exception as err:
        raise DataError(path, f"{element}: its mask is not a base64 PNG ({err})") from err
    box = _nonzero(pixels)
    left, top = (int(v) for v in points[0])
    if left < 0 or top < 0 or top + box.shape[0] > size[0] or left + box.shape[1] > size[1]:
        raise DataError(path, f"{element}: its mask leaves the {size[1]}×{size[0]} image")
    return partial(place_box, box, top, left, size)


def _nonzero(pixels: np.ndarray) -> np.ndarray:
    """H×W bool: where any channel of an image is non-zero."""
    return np.asarray(pixels.reshape(pixels.shape[0], pixels.shape[1], -1).max(axis=2) > 0, bool)


def _read_xml(path: Path) -> Frame:
    root = parse_xml(path)
    name, folder = root.findtext("filename", "").strip(), root.findtext("folder", "").strip()
    rows, cols = root.findtext("imagesize/nrows"), root.findtext("imagesize/ncols")
    size = (int(rows), int(cols)) if rows and cols else None
    frame = Frame(f"{folder}/{name}" if folder else name, size, element=path.name)
    for obj in root.iter("object"):
        if (obj.findtext("deleted") or "0").strip() == "1":
            continue
        object_id = int(obj.findtext("id", "0") or 0)
        element = f"object {object_id}"
        label = (obj.findtext("name") or "").strip()
        shape = Shape("polygon", label, element, instance_id=object_id + 1)
        mask_name = obj.findtext("segm/mask")
        if mask_name:
            mask_path, shape.mask_size = _xml_mask(path, folder, mask_name.strip(), size, element)
            shape.type, shape.decode = "mask", partial(_read_nonzero, mask_path)
        else:
            pts = [(float(pt.findtext("x", "nan")), float(pt.findtext("y", "nan"))) for pt in obj.iter("pt")]
            if not pts:
                raise DataError(path, f"{element}: neither a polygon nor a mask")
            shape.points = np.asarray(pts, np.float64)
            if (obj.findtext("type") or "").strip() == "bounding_box":
                shape.type, shape.points = "box", np.stack([shape.points.min(0), shape.points.max(0)])
        frame.shapes.append(shape)
    return frame


def _xml_mask(
    path: Path, folder: str, name: str, size: tuple[int, int] | None, element: str
) -> tuple[Path, tuple[int, int]]:
    """The mask PNG of a segm object (``Masks/<folder>/<name>`` beside ``Annotations/``), and its size."""
    base = path.parent.parent if path.parent.name == folder else path.parent
    mask_path = base.parent / "Masks" / folder / name
    if not mask_path.is_file():
        raise DataError(path, f"{element}: its mask {mask_path} does not exist")
    width, height = image_size(mask_path)
    if size is not None and (height, width) != size:
        raise DataError(
            mask_path, f"{element}: mask of {width}×{height} does not fit the {size[1]}×{size[0]} image"
        )
    return mask_path, (height, width)


def _read_nonzero(path: Path) -> np.ndarray:
    """Where any channel of the image ``path`` is non-zero."""
    image = imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    return _nonzero(image)
