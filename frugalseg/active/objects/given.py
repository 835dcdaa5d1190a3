"""What a person hands to an annotation session, read and checked before anything changes.

A mask PNG of object ids (or of one object), or clicks from a JSON file or held in memory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.active.objects.annotation_types import (
    VOID,
    GivenClick,
)
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.errors import ConfigError, DataError

#: The most corrective clicks a box may be booked with (the page's box tool takes a few).
MAX_BOX_CLICKS = 100
CLICKS_FORM = '{"clicks": [{"object": 1, "x": column, "y": row, "positive": true}, …]}'


@dataclass(frozen=True)
class DrawnBox:
    """The box a person dragged around an object and the corrective clicks made after it.

    Corners in pixel edges: ``x1`` and ``y1`` are exclusive, as `frugalseg.autolabel.boxes.Box`'s.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    clicks: int = 0

    @property
    def corners(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1)."""
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class Made:
    """A person's file for one frame: object ids (all objects, or one) or clicks, and the objects named.

    ``boxes``: object → its box, for the objects of ``ids`` a box drag made (the page's box tool:
    GrabCut from the rectangle, then corrective clicks), booked as boxes instead of drawn masks.
    """

    path: Path
    ids: np.ndarray | None
    clicks: list[GivenClick]
    objects: list[int]
    object_id: int | None
    boxes: dict[int, DrawnBox] = field(default_factory=dict)


def read_made(
    mask: str | Path | None,
    clicks: str | Path | None,
    object_id: int | None,
    shape: tuple[int, int],
    frame_path: Path,
) -> Made:
    """Read a person's mask PNG or clicks JSON for a frame of ``shape`` (checked before anything changes)."""
    if mask is not None:
        ids = read_mask(Path(mask), shape, frame_path)
        return Made(Path(mask), ids, [], mask_objects(Path(mask), ids, object_id), object_id)
    given = read_clicks(Path(str(clicks)), shape)
    return Made(Path(str(clicks)), None, given, sorted({c.object for c in given}), None)


def given_made(
    name: Path,
    ids: np.ndarray | None,
    clicks: Sequence[GivenClick] | None,
    object_id: int | None,
    shape: tuple[int, int],
    frame_path: Path,
    boxes: Mapping[int, DrawnBox] | None = None,
) -> Made:
    """A mask or clicks held in memory, checked as `read_made` checks a file (``name`` names it).

    ``boxes`` (with ``ids`` only): object → the box of each object a box drag made.
    """
    if boxes and ids is None:
        raise DataError(name, "boxes describe how a mask was made; clicks take none")
    if ids is not None:
        if ids.dtype != np.uint8 or ids.shape != shape:
            raise DataError(
                name,
                f"mask is {ids.dtype} of shape {ids.shape} but the frame {frame_path.name} needs uint8 "
                f"of shape {shape}",
            )
        ids = np.where(ids == VOID, 0, ids).astype(np.uint8)
        objects = mask_objects(name, ids, object_id)
        for obj, box in (boxes or {}).items():
            if obj not in objects:
                raise DataError(name, f"a box names object {obj}; the mask holds {objects}")
            if not 0 <= box.clicks <= MAX_BOX_CLICKS:
                raise DataError(name, f"the box of object {obj}: {box.clicks} clicks, not 0…{MAX_BOX_CLICKS}")
            if not (0 <= box.x0 < box.x1 <= shape[1] and 0 <= box.y0 < box.y1 <= shape[0]):
                raise DataError(
                    name,
                    f"the box of object {obj}, {list(box.corners)}, is empty or off the "
                    f"{shape[1]}×{shape[0]} frame",
                )
        return Made(name, ids, [], objects, object_id, dict(boxes or {}))
    given = list(clicks or [])
    if not given:
        raise DataError(name, "the list of clicks is empty")
    height, width = shape
    for number, click in enumerate(given):
        if not 1 <= click.object <= 254:
            raise DataError(name, f"click {number}: object must be an id 1…254, got {click.object!r}")
        if not (0 <= click.x < width and 0 <= click.y < height):
            where = f"click {number} at x {click.x}, y {click.y}"
            raise DataError(name, f"{where} is off the {width}×{height} frame")
    return Made(name, None, given, sorted({c.object for c in given}), None)


def read_mask(path: Path, shape: tuple[int, int], frame_path: Path) -> np.ndarray:
    """The object ids of a person's mask PNG (void → 0), checked to be of the frame's size."""
    if not path.is_file():
        raise DataError(path, "file does not exist")
    ids = DavisFormat.read_mask(path)
    if ids.shape != shape:
        raise DataError(
            path,
            f"mask is {ids.shape[1]}×{ids.shape[0]} px but the frame {frame_path.name} is "
            f"{shape[1]}×{shape[0]}",
        )
    return np.where(ids == VOID, 0, ids).astype(np.uint8)


def mask_objects(path: Path, ids: np.ndarray, object_id: int | None) -> list[int]:
    """The objects a mask shows: its ids, or ``object_id`` for a one-object mask (one non-zero value)."""
    values = [int(v) for v in np.unique(ids) if v != 0]
    if object_id is None:
        return values
    if not 1 <= object_id <= 254:
        raise ConfigError("object", f"object ids are 1…254, got {object_id}")
    if len(values) > 1:
        raise DataError(
            path,
            f"holds several objects ({', '.join(map(str, values))}), not one object's mask for object "
            f"{object_id}",
        )
    return [object_id]


def check_objects(path: Path, named: list[int], known: dict[int, int], video: str) -> None:
    """Refuse the ids of ``named`` that are not in ``known``."""
    unknown = [obj for obj in named if obj not in known]
    if unknown:
        listed = ", ".join(map(str, sorted(known))) or "none"
        raise DataError(
            path,
            f"object {', '.join(map(str, unknown))} unknown in video {video!r} (known: {listed}); "
            "allow new objects (--new-objects) if they first appear on this frame",
        )


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _coordinate(value: Any) -> bool:
    """A finite JSON number (annotation tools write pixel coordinates as floats)."""
    return (_integer(value) or isinstance(value, float)) and math.isfinite(value)


def read_clicks(path: str | Path, shape: tuple[int, int]) -> list[GivenClick]:
    """The clicks of a JSON file ``{"clicks": [{"object": id, "x": column, "y": row, "positive": bool}, …]}``.

    Args:
        path: the JSON file (other keys of an entry are ignored).
        shape: the frame's (height, width): every click must lie on it.

    Raises:
        DataError: naming the file and the first problem: missing, not JSON, no ``clicks`` list, an
            empty list, or an entry without an object id 1…254, pixel coordinates on the frame
            (numbers; a float is the pixel it lies in), or a true/false ``positive``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file does not exist")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, f"not valid JSON ({err}); expected {CLICKS_FORM}") from err
    if not isinstance(data, dict) or not isinstance(data.get("clicks"), list):
        raise DataError(path, f"no list of clicks; expected {CLICKS_FORM}")
    if not data["clicks"]:
        raise DataError(path, "the list of clicks is empty")
    height, width = shape
    out = []
    for number, entry in enumerate(data["clicks"]):
        where = f"click {number}"
        if not isinstance(entry, dict):
            raise DataError(path, f"{where} is not an object; expected {CLICKS_FORM}")
        missing = [key for key in ("object", "x", "y", "positive") if key not in entry]
        if missing:
            raise DataError(path, f"{where} lacks {', '.join(missing)}; expected {CLICKS_FORM}")
        obj, x, y, positive = entry["object"], entry["x"], entry["y"], entry["positive"]
        if not (_integer(obj) and 1 <= obj <= 254):
            raise DataError(path, f"{where}: object must be an id 1…254, got {obj!r}")
        if not (_coordinate(x) and _coordinate(y)):
            raise DataError(path, f"{where}: x and y must be pixel coordinates (numbers), got {x!r}, {y!r}")
        x, y = math.floor(x), math.floor(y)  # tools write 10.0 or sub-pixel 10.4: the pixel it lies in
        if not (0 <= x < width and 0 <= y < height):
            raise DataError(path, f"{where} at x {x}, y {y} is off the {width}×{height} frame")
        if not isinstance(positive, bool):
            raise DataError(path, f"{where}: positive must be true or false, got {positive!r}")
        out.append(GivenClick(obj, x, y, positive))
    return out
