"""What an ML backend reads of Label Studio and answers it with (`frugalseg.app.ml_backend`).

A labeling config's brush control (`brush_control`), its labels (`brush_labels`) and the task field of its
image (`image_field`); a mask as a brush result (`brush_result`); keypoints as clicks (`keypoint_clicks`),
a rectangle as a box (`rectangle_box`); an annotation's regions as what a person made
(`annotation_regions`) and as a mask of object ids (`regions_mask`). Reading results into shapes is
`frugalseg.interop.label_studio`'s, as `label import` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import numpy as np

from frugalseg.data.clips import LabelKind
from frugalseg.errors import DataError
from frugalseg.interop.label_studio import ML_BACKEND
from frugalseg.interop.raster import box_edges, rasterize
from frugalseg.interop.rle import ls_encode
from frugalseg.interop.shapes import Frame, Shape


def brush_control(config: str) -> tuple[str, str] | None:
    """The ``BrushLabels`` control's name and the image it labels in a labeling config, None without one.

    Raises:
        DataError: the config is not XML.
    """
    brush = _brush_node(_parsed(config))
    return None if brush is None else (str(brush.get("name")), str(brush.get("toName")))


def brush_labels(config: str) -> tuple[str, ...]:
    """The ``<Label value=…>`` values of the config's ``BrushLabels`` control (`brush_control`'s), in order.

    Raises:
        DataError: the config is not XML.
    """
    brush = _brush_node(_parsed(config))
    values = () if brush is None else (label.get("value") for label in brush.iter("Label"))
    return tuple(dict.fromkeys(str(value) for value in values if value is not None))


def image_field(config: str) -> str | None:
    """The task data field the ``BrushLabels`` control's image shows (``$image`` → ``image``), or None.

    Raises:
        DataError: the config is not XML, or the control's ``toName`` names none of its elements.
    """
    root = _parsed(config)
    brush = _brush_node(root)
    if brush is None:
        return None
    image = next((node for node in root.iter() if node.get("name") == brush.get("toName")), None)
    if image is None:
        images = [f"<Image name={node.get('name')!r}>" for node in root.iter("Image") if node.get("name")]
        raise DataError(
            Path("the labeling config"),
            f"<BrushLabels toName={brush.get('toName')!r}> names no element of it"
            + (f" (its image is {', '.join(images)})" if images else ""),
        )
    value = str(image.get("value") or "")
    return value[1:] if value.startswith("$") and len(value) > 1 else None


def _parsed(config: str) -> Any:
    """A labeling config's XML root.

    Raises:
        DataError: the config is not XML, or XML defusedxml refuses.
    """
    try:
        return SafeET.fromstring(config)
    except SafeET.ParseError as err:
        raise DataError(Path("labeling config"), f"not XML ({err})") from err
    except Exception as err:  # defusedxml's refusals (entities, DTDs) are not ParseErrors
        raise DataError(Path("labeling config"), f"refused XML ({type(err).__name__}: {err})") from err


def _brush_node(root: Any) -> Any:
    """The first ``BrushLabels`` element of a labeling config (`_parsed`) with a name and a ``toName``."""
    return next((node for node in root.iter("BrushLabels") if node.get("name") and node.get("toName")), None)


def brush_result(mask: np.ndarray, label: str, obj: int, control: tuple[str, str]) -> dict[str, Any]:
    """One object's mask as a ``brushlabels`` result of ``control``; its id (`RESULT_ID`) names the object."""
    height, width = mask.shape
    return {
        "id": f"frugalseg-{obj}", "type": "brushlabels", "from_name": control[0], "to_name": control[1],
        "original_width": width, "original_height": height, "image_rotation": 0,
        "value": {"format": "rle", "rle": ls_encode(mask), "brushlabels": [label]},
    }  # fmt: skip


def keypoint_clicks(shape: Shape, result: dict[str, Any]) -> list[tuple[int, int, bool]]:
    """A keypoint result's clicks: (column, row, positive), each in the pixel its point lies in.

    Label Studio marks a negative keypoint of an interactive request ``is_positive: false``.
    """
    if shape.type != "points" or shape.points is None:
        return []
    positive = bool(result.get("is_positive", True))
    # rounded first: a point on a pixel's edge given in percent comes back a hair short of it (19.999…)
    pixels = np.floor(np.round(np.asarray(shape.points), 6)).astype(int)
    return [(x, y, positive) for x, y in pixels.tolist()]


def rectangle_box(shape: Shape) -> tuple[int, int, int, int]:
    """A rectangle's pixels as (x0, y0, x1, y1), corners included: the pixels `regions_mask` fills."""
    assert shape.type == "box" and shape.points is not None
    x0, y0, x1, y1 = box_edges(shape.points)
    return x0, y0, x1 - 1, y1 - 1


@dataclass
class AnnotationRegions:
    """What an annotation's regions say (`annotation_regions`): the regions that are objects, and how made.

    Attributes:
        shapes, results, objects: the regions left, each with its result and object.
        box: the object a rectangle alone (with its keypoints) draws with the box tool, else None.
        rectangles: painted object → the rectangle beside its region (corners included): the box it was
            drawn in.
        clicked: painted object → the clicks of the keypoints beside its region, which made it
            (`keypoint_clicks`).
        stray: objects of keypoints beside the regions of other objects only.
    """

    shapes: list[Shape]
    results: list[dict[str, Any]]
    objects: list[int]
    box: int | None = None
    rectangles: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    clicked: dict[int, list[tuple[int, int, bool]]] = field(default_factory=dict)
    stray: list[int] = field(default_factory=list)


def annotation_regions(
    shapes: Sequence[Shape], results: Sequence[dict[str, Any]], objects: Sequence[int]
) -> AnnotationRegions:
    """An annotation's regions (each with its result and object) as what a person made (`AnnotationRegions`).

    A rectangle beside a drawn region of its object is the box the region was drawn in (frugalseg's exports
    hold both): the region is the object, not the box's pixels. One rectangle and keypoints alone are the
    box tool's, keypoints without a label the box's. Keypoints beside drawn regions are the smart keypoints
    Label Studio's editor keeps beside the brush their answer became: they made it (a keypoint without a
    label, the one object with a region's).
    """
    painted = {o for o, s in zip(objects, shapes, strict=True) if s.type not in ("box", "points")}
    rectangles = {
        o: rectangle_box(s) for o, s in zip(objects, shapes, strict=True) if s.type == "box" and o in painted
    }
    kept = [k for k, s in enumerate(shapes) if not (s.type == "box" and objects[k] in painted)]
    found = AnnotationRegions(
        [shapes[k] for k in kept],
        [results[k] for k in kept],
        [objects[k] for k in kept],
        rectangles=rectangles,
    )
    types = [shape.type for shape in found.shapes]
    if types.count("box") == 1 and set(types) <= {"box", "points"}:
        found.box = found.objects[types.index("box")]
    regioned = {o for o, s in zip(found.objects, found.shapes, strict=True) if s.type != "points"}
    lone = found.box if found.box is not None else next(iter(regioned)) if len(regioned) == 1 else None
    if lone is not None:
        found.objects = [
            lone if s.type == "points" and not s.label else o
            for o, s in zip(found.objects, found.shapes, strict=True)
        ]
    if "points" in types and found.box is None and set(types) != {"points"}:
        for obj, shape, result in zip(found.objects, found.shapes, found.results, strict=True):
            if shape.type == "points":
                found.clicked.setdefault(obj, []).extend(keypoint_clicks(shape, result))
        found.stray = sorted(set(found.clicked) - regioned)
        kept = [k for k, kind in enumerate(types) if kind != "points"]
        found.shapes = [found.shapes[k] for k in kept]
        found.results = [found.results[k] for k in kept]
        found.objects = [found.objects[k] for k in kept]
    return found


def regions_mask(frame: Frame, size: tuple[int, int], objects: Sequence[int]) -> np.ndarray:
    """The drawn regions of ``frame`` as an H×W map of ``objects`` (one per shape; each its whole mask).

    Brushes as drawn, polygons filled as pycocotools fills them, rectangles as the box's pixels.
    """
    for shape in frame.shapes:
        shape.kind = LabelKind.FINE
    ids: np.ndarray = rasterize(frame, size, list(objects), background=0)[LabelKind.FINE].label
    return ids


def negatives_object(
    objects: Sequence[int], negatives: Sequence[tuple[int, int]], element: str, background: str
) -> int:
    """The object the regions draw (0: none): its ``background`` keypoints are its negative clicks.

    Raises:
        DataError: such keypoints beside regions of several objects.
    """
    drawn = sorted(set(objects))
    if negatives and len(drawn) > 1:
        raise DataError(
            ML_BACKEND,
            f"{element}: {background!r} keypoints beside regions of objects {', '.join(map(str, drawn))}: "
            "which one they correct is not known; submit each object's clicks apart",
        )
    return drawn[0] if len(drawn) == 1 else 0
