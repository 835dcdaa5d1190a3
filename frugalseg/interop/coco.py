"""COCO instances and panoptic files read into shapes, and label stores written back as COCO RLE JSON.

Instances (``annotations`` with ``segmentation``): polygons and RLE (plain ``counts`` lists or
compressed strings) are decoded by pycocotools into masks (COCO's own rasterisation); an annotation
with an empty segmentation is its ``bbox`` (``[x, y, width, height]``), a ``boxes`` label; one with
``keypoints`` (``[x, y, v, …]``) gives its visible points (v > 0) as clicks. A crowd annotation
(``iscrowd`` 1: a group of objects, which COCO's evaluation ignores and whose members a file may also
annotate one by one) is drawn beneath every other annotation of its image, so that it never hides an
object of its own; its pixels keep its class, not void, as ``iscrowd`` 1 is also how tools mark an
annotation whose segmentation is an RLE mask (CVAT's exports write every mask so).
Two images of one ``id`` are refused: an annotation's ``image_id`` would name either.
Panoptic: each
annotation's PNG holds segment ids as R + 256·G + 256²·B; every segment of ``segments_info`` is a mask,
and one no pixel holds is refused; id 0 is void (unlabelled), so the pixels no segment covers stay 255
unless ``--background`` names a class for them.
Instance ids: an annotation's ``attributes.track_id`` + 1 (CVAT's COCO exports of videos number
tracks from 0, and id 0 is the background of an instance map; the CVAT XML reader adds 1 to track
ids alike, and frugalseg writes ``track_id`` = instance id − 1), else its position among its
image's annotations (a panoptic segment's likewise).
An ``attributes.frugalseg_kind`` (frugalseg's exports) sets an annotation's label kind, and an
``attributes.frugalseg_seconds`` the annotation seconds of its label (the store's cost ledger).

frugalseg writes a store's labels as RLE annotations of single objects (``iscrowd`` 0: COCO's evaluation
and detectron2's loader skip crowds; read them with masks as bitmaps), and what a person drew beside
them: each box of a ``boxes`` label as a box annotation (``bbox``, no segmentation), each click of a
``clicks`` label as an annotation of one keypoint at the clicked pixel's centre (its ``bbox`` that pixel,
not a drawn box), both of the kind they are.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from frugalseg.autolabel.boxes import Box
from frugalseg.autolabel.clicks import Click
from frugalseg.data.clips import LabelKind
from frugalseg.data.io import MAX_IMAGE_PIXELS, image_size, read_frame, write_json_atomic
from frugalseg.errors import DataError
from frugalseg.interop.registry import ToolFormat, register_reader, register_writer
from frugalseg.interop.rle import coco_counts, coco_decode, coco_encode
from frugalseg.interop.shapes import SECONDS_KEY, Frame, Shape, ToolExport, parse_seconds
from frugalseg.interop.tool_files import read_tool_json

if TYPE_CHECKING:
    from frugalseg.interop.stored_frames import Mark, StoredFrame

logger = logging.getLogger(__name__)

#: COCO 1.0 instances (polygons, RLE, boxes, keypoints) and COCO 1.0 panoptic segmentation.
COCO = ToolFormat("coco", ".json", "1.0")
COCO_PANOPTIC = ToolFormat("coco-panoptic", ".json", "1.0")

KIND_KEY = "frugalseg_kind"
#: The drawing order of a crowd annotation's shapes: beneath the others (module docstring).
CROWD_Z_ORDER = -1


def _coco_tables(data: Any, path: Path) -> tuple[dict[int, str], dict[int, dict[str, Any]]]:
    """Category id → name and image id → image record; `DataError` when the file is no COCO file."""
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise DataError(path, "expected a COCO object with 'images', 'annotations' and 'categories'")
    for key, each, fields in (("categories", "category", ("id", "name")),
                              ("images", "image", ("id", "file_name", "width", "height"))):  # fmt: skip
        if not isinstance(data[key], list):
            raise DataError(path, f"'{key}' is not a list")
        for number, entry in enumerate(data[key]):
            missing = [field for field in fields if not isinstance(entry, dict) or field not in entry]
            if missing:
                name = (
                    f"{each} {entry['id']}"
                    if isinstance(entry, dict) and "id" in entry
                    else f"{key}[{number}]"
                )
                raise DataError(path, f"{name} lacks {', '.join(missing)}")
    categories: dict[int, str] = {}
    records = []
    for category in data["categories"]:
        try:
            categories[int(category["id"])] = str(category["name"])
        except (TypeError, ValueError) as err:
            raise DataError(path, f"category {category['id']!r}: its id is not a whole number") from err
    for image in data["images"]:
        try:
            image["file_name"], image["width"], image["height"] = (
                str(image["file_name"]), int(image["width"]), int(image["height"]))  # fmt: skip
            records.append((int(image["id"]), image))
        except (TypeError, ValueError) as err:
            raise DataError(
                path, f"image {image['id']!r}: its id, width and height must be whole numbers"
            ) from err
    images: dict[int, dict[str, Any]] = {}
    for image_id, image in records:
        first = images.setdefault(image_id, image)
        if first is not image:  # an annotation's image_id would name either: refused, not guessed
            raise DataError(
                path,
                f"image {first['id']} ({first['file_name']}) and image {image['id']} ({image['file_name']}) "
                "have the same id: give each image its own",
            )
    return categories, images


def _frames(images: dict[int, dict[str, Any]]) -> dict[int, Frame]:
    return {
        image_id: Frame(
            _frame_name(image),
            (image["height"], image["width"]),
            element=f"image {image_id} ({image['file_name']})",
        )  # fmt: skip
        for image_id, image in images.items()
    }


def _frame_name(image: dict[str, Any]) -> str:
    """An image's name: its ``file_name``, or the frame its Label Studio URL ``path`` names.

    Label Studio's COCO export gives a bare file name beside that URL (``/data/local-files/?d=a/00005.jpg``).
    """
    # imported here: at the top it would register Label Studio's format before COCO's, and the registry's
    # order is the order formats are listed and their files written
    from frugalseg.interop.label_studio import image_name

    url = image.get("path")
    if isinstance(url, str) and "/data/" in url:
        named = image_name(url)
        if PurePosixPath(named).stem == PurePosixPath(str(image["file_name"])).stem:
            return named
    return str(image["file_name"])


def _id(value: Any) -> Any:
    """An annotation's ``image_id`` or ``category_id`` as a whole number when it is one (``"1"``, ``1.0``).

    The tables' ids are read with ``int``; anything else (``1.9``) is kept as is, to be named unknown.
    """
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _owner(annotation: dict[str, Any], frames: dict[int, Frame], path: Path, element: str) -> Frame:
    frame = frames.get(_id(annotation.get("image_id")))
    if frame is None:
        raise DataError(
            path, f"{element}: image_id {annotation.get('image_id')!r} is not an image of the file"
        )
    return frame


def _kind(attributes: dict[str, Any], path: Path, element: str) -> LabelKind | None:
    value = attributes.get(KIND_KEY)
    if value is None:
        return None
    try:
        return LabelKind(value)
    except ValueError as err:
        raise DataError(path, f"{element}: {KIND_KEY} {value!r} is not a label kind") from err


@register_reader(COCO)
def read_coco(path: str | Path) -> ToolExport:
    """Read a COCO instances file (polygons, RLE, boxes, keypoints) into frames keyed by ``file_name``."""
    path = Path(path)
    data = read_tool_json(path)
    categories, images = _coco_tables(data, path)
    frames = _frames(images)
    positions: dict[int, int] = {}
    for annotation in data["annotations"]:
        element = f"annotation {annotation.get('id')}"
        frame = _owner(annotation, frames, path, element)
        element += f" (image {annotation.get('image_id')})"
        positions[id(frame)] = positions.get(id(frame), 0) + 1
        frame.shapes += _annotation_shapes(annotation, categories, frame, positions[id(frame)], path, element)
    return ToolExport(path, "coco", [f for f in frames.values() if f.shapes], tuple(categories.values()))


def _annotation_shapes(
    annotation: dict[str, Any],
    categories: dict[int, str],
    frame: Frame,
    position: int,
    path: Path,
    element: str,
) -> list[Shape]:
    """The shapes of one annotation: its polygons or RLE mask, else its box; and its visible keypoints."""
    label = categories.get(_id(annotation.get("category_id")))
    if label is None:
        raise DataError(path, f"{element}: category_id {annotation.get('category_id')!r} is not a category")
    attributes = annotation.get("attributes") or {}
    instance, kind = _instance(attributes, position, path, element), _kind(attributes, path, element)
    seconds = parse_seconds(attributes.get(SECONDS_KEY), path, element)
    segmentation = annotation.get("segmentation")
    assert frame.size is not None
    shapes = []
    if isinstance(segmentation, list) and segmentation:
        for number, ring in enumerate(segmentation, start=1):
            values = _numbers(ring, path, element)
            if values.size % 2:
                raise DataError(
                    path,
                    f"{element}: polygon {number} holds {values.size} coordinates, an odd number: "
                    "not (x, y) pairs",
                )
            points = values.reshape(-1, 2)
            shapes.append(Shape("polygon", label, element, points, instance_id=instance, kind=kind))
    elif isinstance(segmentation, dict):
        # of its own size: the image's size is checked against its frame first, then the mask's
        size = _check_rle(segmentation, path, element)
        shape = Shape("mask", label, element, instance_id=instance, kind=kind, mask_size=size)
        shape.decode = partial(coco_decode, segmentation, *size)
        shapes.append(shape)
    elif segmentation not in (None, []):
        raise DataError(
            path, f"{element}: segmentation {str(segmentation)[:60]} is neither polygons (a list) nor an RLE"
        )
    elif annotation.get("bbox") and not (kind is LabelKind.CLICKS and annotation.get("keypoints")):
        bbox = _numbers(annotation["bbox"], path, element)
        if bbox.size < 4:
            raise DataError(
                path, f"{element}: bbox {str(annotation['bbox'])[:60]} is not [x, y, width, height]"
            )
        x, y, w, h = bbox[:4]
        if w < 0 or h < 0:
            raise DataError(
                path, f"{element}: bbox [{', '.join(f'{v:g}' for v in bbox)}] has a negative width or height"
            )
        corners = np.array([[x, y], [x + w, y + h]])
        shapes.append(Shape("box", label, element, corners, instance_id=instance, kind=kind))
    if annotation.get("keypoints"):
        values = _numbers(annotation["keypoints"], path, element)
        if values.size % 3:
            raise DataError(
                path, f"{element}: keypoints hold {values.size} numbers, not (x, y, visibility) triples"
            )
        triples = values.reshape(-1, 3)
        visible = triples[triples[:, 2] > 0, :2]
        if len(visible):
            shapes.append(
                Shape("points", label, f"{element} keypoints", visible, instance_id=instance, kind=kind)
            )
    if not shapes:  # it had been dropped without a word, and its frame with it when alone there
        logger.warning("%s: %s has no segmentation, bbox or visible keypoint: left out", path, element)
    for shape in shapes:
        shape.seconds = seconds
        shape.z_order = CROWD_Z_ORDER if annotation.get("iscrowd") == 1 else 0
    return shapes


def _numbers(values: Any, path: Path, element: str) -> np.ndarray:
    """A flat list of numbers as a float array; `DataError` naming ``element`` otherwise."""
    try:
        return np.asarray(values, np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise DataError(path, f"{element}: expected a list of numbers, got {str(values)[:60]}") from err


def _instance(attributes: dict[str, Any], position: int, path: Path, element: str) -> int | None:
    """An annotation's instance id: its ``attributes.track_id`` + 1 (null: none), else ``position``."""
    if "track_id" not in attributes:
        return position
    value = attributes["track_id"]
    if value is None:
        return None
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer()
    )  # 1.5 and true had been read as 1
    if not whole and not (isinstance(value, str) and value.strip().lstrip("+-").isdigit()):
        raise DataError(path, f"{element}: track_id {value!r} is not a whole number")
    track = int(value)
    if track < 0:
        raise DataError(path, f"{element}: track_id {track} is negative")
    return track + 1


def _check_rle(segmentation: dict[str, Any], path: Path, element: str) -> tuple[int, int]:
    """The (H, W) an RLE gives itself; `DataError` naming ``element`` when it is no RLE of that size.

    Its size against the image's is checked where the image is found (`frugalseg.interop.stores`):
    first the size the file gives the image against the frame's, then the mask's against the frame's.
    """
    rle_size, counts = segmentation.get("size"), segmentation.get("counts")
    try:
        height, width = (int(v) for v in rle_size)  # type: ignore[union-attr]
    except (TypeError, ValueError) as err:
        raise DataError(path, f"{element}: RLE size {str(rle_size)[:40]} is not [height, width]") from err
    if not (0 < height and 0 < width and height * width <= MAX_IMAGE_PIXELS):
        raise DataError(path, f"{element}: RLE size {[height, width]} (H, W) is no image frugalseg reads")
    if isinstance(counts, str):
        # pycocotools raises on some damaged strings and decodes others into memory it never wrote
        try:
            counts = coco_counts(counts)
        except ValueError as err:
            raise DataError(
                path, f"{element}: RLE counts {counts!r:.40} are not COCO's compressed RLE ({err})"
            ) from err
    elif not isinstance(counts, list):
        raise DataError(path, f"{element}: RLE counts are neither a list nor a compressed string")
    runs = np.asarray(counts, np.int64)
    if (runs < 0).any() or int(runs.sum()) != height * width:
        raise DataError(
            path, f"{element}: RLE counts add up to {int(runs.sum())} pixels, not {height}×{width}"
        )
    return height, width


@register_reader(COCO_PANOPTIC)
def read_coco_panoptic(path: str | Path, masks: str | Path | None = None) -> ToolExport:
    """Read a COCO panoptic file; its PNGs are in ``masks`` (default: the folder named like the file)."""
    path = Path(path)
    data = read_tool_json(path)
    categories, images = _coco_tables(data, path)
    folder = Path(masks) if masks is not None else path.with_suffix("")
    frames = _frames(images)
    for annotation in data["annotations"]:
        element = f"the annotation of image {annotation.get('image_id')}"
        frame = _owner(annotation, frames, path, element)
        if not isinstance(annotation.get("file_name"), str) or "segments_info" not in annotation:
            raise DataError(
                path,
                f"{element} has no PNG file_name or no segments_info: not a COCO panoptic file "
                "(an instances file is --tool coco)",
            )
        element = frame.element
        png = folder / annotation["file_name"]
        width, height = image_size(png)
        assert frame.size is not None
        if (height, width) != frame.size:
            raise DataError(
                png,
                f"panoptic PNG of {width}×{height} does not fit {element} of "
                f"{frame.size[1]}×{frame.size[0]} (in {path.name})",
            )
        segments = annotation.get("segments_info", [])
        present = set(np.unique(_segment_ids(png)).tolist()) if segments else set()
        for position, segment in enumerate(segments, start=1):
            label = categories.get(_id(segment.get("category_id")))
            if label is None:
                raise DataError(path, f"{element} segment {segment.get('id')}: unknown category_id")
            if int(segment["id"]) not in present:  # an object said to be there, with no pixel
                raise DataError(
                    png,
                    f"{element} segment {segment['id']}: no pixel of the PNG holds id {segment['id']} "
                    f"(listed in {path.name})",
                )
            shape = Shape("mask", label, f"{element} segment {segment['id']}", instance_id=position)
            shape.decode, shape.mask_size = partial(_segment, png, int(segment["id"])), frame.size
            frame.shapes.append(shape)
    return ToolExport(
        path,
        "coco-panoptic",
        [f for f in frames.values() if f.shapes],
        tuple(categories.values()),
        uncovered_void=True,
    )


def _segment_ids(png: Path) -> np.ndarray:
    """The segment id of each pixel of a panoptic PNG (R + 256·G + 256²·B)."""
    rgb = read_frame(png).astype(np.int64)
    return np.asarray(rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2])


def _segment(png: Path, segment_id: int) -> np.ndarray:
    """The mask of one segment of a panoptic PNG."""
    return np.asarray(_segment_ids(png) == segment_id)


def write_coco(
    path: str | Path,
    frames: list[tuple[str, tuple[int, int], list[tuple[LabelKind, str, int | None, np.ndarray]]]],
    classes: list[str],
    marks: list[list[Mark]] | None = None,
    seconds: list[dict[LabelKind, float]] | None = None,
) -> None:
    """Write COCO instances JSON: one compressed-RLE annotation per (kind, class, instance) of each image.

    ``frames`` holds (file name, (H, W), objects) with objects (kind, class name, instance id, mask);
    categories are the data set's classes (id = train id + 1), then any other name a mark has. Each
    annotation records its label kind and instance (``track_id``, counted from 0 as CVAT does) in
    ``attributes`` so that reading the file back gives the same labels. ``marks`` holds each image's
    clicks and boxes (module docstring), ``seconds`` the annotation seconds of each image's labels by
    kind, recorded in the ``attributes`` of each annotation of that kind.
    """
    from pycocotools import mask as coco_mask

    marks = marks or [[] for _ in frames]
    seconds = seconds or [{} for _ in frames]
    names = list(dict.fromkeys([*classes, *(name for drawn in marks for name, _ in drawn)]))
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, ((name, (height, width), objects), drawn, cost) in enumerate(
        zip(frames, marks, seconds, strict=True), 1
    ):
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for kind, label, instance, mask in objects:
            rle = coco_encode(mask)
            x, y, w, h = coco_mask.toBbox({**rle, "counts": rle["counts"].encode()}).tolist()
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": names.index(label) + 1,
                "segmentation": rle, "area": int(mask.sum()), "bbox": [x, y, w, h], "iscrowd": 0,
                "attributes": _attributes(kind, instance, cost),
            })  # fmt: skip
        for label, mark in drawn:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": names.index(label) + 1,
                 **_mark_annotation(mark, cost)}
            )  # fmt: skip
    categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(names)]
    write_json_atomic(
        path, {"images": images, "annotations": annotations, "categories": categories}, indent=0
    )


def _attributes(kind: LabelKind, instance: int | None, seconds: dict[LabelKind, float]) -> dict[str, Any]:
    """An annotation's ``attributes``: kind, ``track_id`` (instance − 1, or null), its label's seconds.

    The seconds are left out where ``seconds`` lacks the kind.
    """
    attributes = {KIND_KEY: kind.value, "track_id": None if instance is None else instance - 1}
    return attributes | ({SECONDS_KEY: seconds[kind]} if kind in seconds else {})


def _mark_annotation(mark: Click | Box, seconds: dict[LabelKind, float]) -> dict[str, Any]:
    """The fields of a click's keypoint annotation or a box's box annotation (module docstring)."""
    if isinstance(mark, Click):
        return {
            "segmentation": [], "area": 0, "bbox": [mark.x, mark.y, 1, 1], "iscrowd": 0,
            "keypoints": [mark.x + 0.5, mark.y + 0.5, 2], "num_keypoints": 1,
            "attributes": _attributes(LabelKind.CLICKS, mark.instance_id, seconds),
        }  # fmt: skip
    width, height = mark.x1 - mark.x0, mark.y1 - mark.y0
    return {
        "segmentation": [], "area": width * height, "bbox": [mark.x0, mark.y0, width, height], "iscrowd": 0,
        "attributes": _attributes(LabelKind.BOXES, mark.instance_id, seconds),
    }  # fmt: skip


@register_writer(COCO)
def write_coco_frames(path: Path, frames: list[StoredFrame], classes: list[str]) -> None:
    """Write a label store's ``frames`` as one COCO instances file (`write_coco`), clicks and boxes too."""
    objects = [(f.name, f.size, f.tool_objects()) for f in frames]
    write_coco(path, objects, classes, [f.marks() for f in frames], [f.seconds for f in frames])
