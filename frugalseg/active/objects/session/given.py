"""What a person gives an annotation session, validated once where it enters, and what it books.

A `GivenAnnotation` is built at every entry (``annotate add``'s files, the annotation page's and
Label Studio's requests) and holds a mask of object ids (or of one object), or clicks, with the
boxes the page's box tool drew and the objects' names; it is checked when made, so a session
takes it as it is. `annotation_result` is what it makes of a frame's current mask, with its human
seconds; `book` enters that in a video's loop state.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.active.objects.simulation.annotation_types import (
    VOID,
    AnnotationResult,
    GivenClick,
    annotate_given_clicks,
)
from frugalseg.active.objects.state import Annotation, IterationRecord, VideoState
from frugalseg.active.objects.tools.click_models import ClickToMask
from frugalseg.active.objects.tools.grabcut import Click
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.autolabel.store import RUN_FILE, frame_stem
from frugalseg.data.clips import LabelKind
from frugalseg.data.costs import AnnotationCosts
from frugalseg.data.formats.davis import OBJECTS, DavisFormat
from frugalseg.data.io import read_json
from frugalseg.errors import ConfigError, DataError

#: The ids a person may give objects: 0 is the background and 255 void in every mask.
OBJECT_IDS = range(1, 255)
#: The most objects a video holds.
MAX_OBJECTS = len(OBJECT_IDS)
#: The longest class name of an object, in characters.
MAX_NAME_LENGTH = 64
#: The most clicks of one annotation.
MAX_CLICKS = 1000

#: The fewest pixels a box has a side (corners included): the page takes a smaller drag for a click.
MIN_BOX_SIDE = 5
#: The most corrective clicks a box may be booked with (the page's box tool takes a few).
MAX_BOX_CLICKS = 100
#: The class of an object data set's pixels of no object: no object's name.
BACKGROUND = OBJECTS.names[0]
CLICKS_FORM = '{"clicks": [{"object": 1, "x": column, "y": row, "positive": true}, …]}'


def is_object_id(value: Any) -> bool:
    """True for a whole number (not a bool) in `OBJECT_IDS`."""
    return isinstance(value, int) and not isinstance(value, bool) and value in OBJECT_IDS


def object_name(obj: int, name: Any) -> str:
    """Object ``obj``'s class name trimmed; `ConfigError` unless 1…64 printable characters.

    Control characters are refused: every tool file the name is written to (CVAT's XML first) must parse.
    So is "background" in any case: a tool's file read back maps it to that class, not to an object.
    """
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_LENGTH:
        raise ConfigError(
            "name", f"the name of object {obj} must have 1…{MAX_NAME_LENGTH} characters, got {name!r}"
        )
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in name):
        raise ConfigError("name", f"the name of object {obj} holds control characters: {name!r}")
    if name.strip().casefold() == BACKGROUND:
        raise ConfigError(
            "name",
            f"object {obj} cannot be named {name.strip()!r}: it is the class of the pixels of no object, and "
            "a tool's file would give the object back as background; name what it is (a person, a car)",
        )
    return name.strip()


def check_drawn_box(box: tuple[int, int, int, int], clicks: Sequence[Click]) -> None:
    """Refuse a typed or tool-drawn box (corners included) under `MIN_BOX_SIDE` a side, or clicks outside it.

    A box's mask replaces its object and stays inside the box: a 1-pixel box (a typo) would erase the
    object, and a click outside it could not be kept.

    Raises:
        ConfigError: of ``box`` or ``clicks``, naming the box.
    """
    x0, y0, x1, y1 = box
    corners = ",".join(map(str, box))
    if min(x1 - x0, y1 - y0) + 1 < MIN_BOX_SIDE:
        raise ConfigError(
            "box",
            f"{corners} is {x1 - x0 + 1}×{y1 - y0 + 1} px: a box is drawn around an object, at least "
            f"{MIN_BOX_SIDE} px a side (a smaller drag on the page is a click)",
        )
    outside = [click for click in clicks if not (x0 <= click.x <= x1 and y0 <= click.y <= y1)]
    if outside:
        raise ConfigError(
            "clicks",
            f"the click at x {outside[0].x}, y {outside[0].y} lies outside the box {corners}: a box's mask "
            "stays inside it, so its clicks are in it too",
        )


@dataclass(frozen=True)
class DrawnBox:
    """The box a person dragged around an object and the corrective clicks made after it.

    Corners in pixel edges: ``x1`` and ``y1`` are exclusive, as `frugalseg.autolabel.boxes.Box`'s.
    ``points`` are the clicks as (x, y, positive) where they are known (the page's, ``annotate add``'s):
    they are booked and exported with the object, as clicks are.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    clicks: int = 0
    points: tuple[tuple[int, int, bool], ...] = ()

    @property
    def corners(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1)."""
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class GivenAnnotation:
    """A person's annotation of one frame, checked when made (`DataError` naming ``source``).

    Give either ``ids`` or ``clicks``.

    Attributes:
        source: what errors call it (the file, or "the submitted mask").
        shape: the frame's (height, width).
        ids: an H×W uint8 map of object ids (0 background, 255 void → 0), or of one object with
            ``object_id`` (every non-zero pixel).
        clicks: the person's clicks, on any objects (ids in `OBJECT_IDS`, on the frame).
        object_id: the object a one-object ``ids`` map shows.
        boxes: object → its box, for the objects of ``ids`` the page's box tool made: each is booked
            as a box instead of a drawn mask, and exported with its box.
        clicked: object → the clicks that made it, for the objects of ``ids`` the page made with clicks
            alone while another object of the frame was drawn: each is booked (and exported) as its
            clicks, not a drawn mask.
        names: object → its class name (1…64 printable characters), for objects it holds.
        new_objects: the ids not annotated before are objects that first appear on this frame.
        white_on_black: the mask came as a black-and-white image with no ``object_id`` (object 1 by
            DAVIS's reading): in a video of several objects, which one it shows is not known.
    """

    source: Path
    shape: tuple[int, int]
    ids: np.ndarray | None = None
    clicks: tuple[GivenClick, ...] = ()
    object_id: int | None = None
    boxes: Mapping[int, DrawnBox] = field(default_factory=dict)
    clicked: Mapping[int, tuple[GivenClick, ...]] = field(default_factory=dict)
    names: Mapping[int, str] = field(default_factory=dict)
    new_objects: bool = False
    white_on_black: bool = False

    def __post_init__(self) -> None:
        if (self.ids is None) == (not self.clicks):
            raise ConfigError("mask", "give either a mask or clicks")
        if self.object_id is not None and self.ids is None:
            raise ConfigError("object", "names the object of a one-object mask; clicks name their objects")
        if self.ids is not None:
            object.__setattr__(self, "ids", self._checked_ids(self.ids))
        else:
            object.__setattr__(self, "clicks", tuple(self._checked_clicks(self.clicks)))
        self._check_boxes()
        named = {}
        for obj, name in self.names.items():
            if obj not in self.objects:
                raise ConfigError("name", f"object {obj} is not in this annotation (it holds {self.objects})")
            named[int(obj)] = object_name(obj, name)
        object.__setattr__(self, "names", named)
        object.__setattr__(self, "boxes", dict(self.boxes))
        object.__setattr__(self, "clicked", {obj: tuple(made) for obj, made in self.clicked.items()})

    @classmethod
    def read(
        cls,
        frame_path: Path,
        shape: tuple[int, int],
        *,
        mask: str | Path | None = None,
        clicks: str | Path | None = None,
        object_id: int | None = None,
        names: Mapping[int, str] | None = None,
        new_objects: bool = False,
    ) -> GivenAnnotation:
        """A person's mask PNG or clicks JSON for the frame ``frame_path`` of ``shape`` (``annotate add``)."""
        if (mask is None) == (clicks is None):
            raise ConfigError("mask", "give either a mask PNG or a clicks JSON file")
        if mask is not None:
            ids, binary = _read_mask(Path(mask), shape, frame_path)
            white = object_id is None and binary
            return cls(
                Path(mask),
                shape,
                ids,
                (),
                object_id,
                names=names or {},
                new_objects=new_objects,
                white_on_black=white,
            )
        path = Path(str(clicks))
        _check_store_frame(path, frame_path)
        given = tuple(read_clicks(path, shape, object_id))
        return cls(path, shape, None, given, names=names or {}, new_objects=new_objects)

    @property
    def objects(self) -> list[int]:
        """The objects it holds: the mask's ids (or ``object_id``), or the objects clicked."""
        if self.ids is None:
            return sorted({c.object for c in self.clicks})
        if self.object_id is not None:
            return [self.object_id]
        return [int(v) for v in np.unique(self.ids) if v != 0]

    def _checked_ids(self, ids: np.ndarray) -> np.ndarray:
        if ids.dtype != np.uint8 or ids.shape != self.shape:
            raise DataError(
                self.source,
                f"mask is {ids.dtype} of shape {ids.shape} but the frame needs uint8 of shape {self.shape}",
            )
        ids = np.where(ids == VOID, 0, ids).astype(np.uint8)
        if self.object_id is not None:
            if not is_object_id(self.object_id):
                raise ConfigError("object", f"object ids are 1…{MAX_OBJECTS}, got {self.object_id}")
            values = [int(v) for v in np.unique(ids) if v != 0]
            if len(values) > 1:
                raise DataError(
                    self.source,
                    f"holds several objects ({', '.join(map(str, values))}), not one object's mask for "
                    f"object {self.object_id}",
                )
        return ids

    def _checked_clicks(self, clicks: Sequence[GivenClick]) -> list[GivenClick]:
        height, width = self.shape
        if len(clicks) > MAX_CLICKS:
            raise DataError(self.source, f"{len(clicks)} clicks; one annotation takes at most {MAX_CLICKS}")
        for number, click in enumerate(clicks):
            if not is_object_id(click.object):
                raise DataError(
                    self.source, f"click {number}: object must be an id 1…{MAX_OBJECTS}, got {click.object!r}"
                )
            if not (0 <= click.x < width and 0 <= click.y < height):
                where = f"click {number} at x {click.x}, y {click.y}"
                raise DataError(self.source, f"{where} is off the {width}×{height} frame")
        return list(clicks)

    def _check_boxes(self) -> None:
        if (self.boxes or self.clicked) and self.ids is None:
            raise DataError(self.source, "boxes describe how a mask was made; clicks take none")
        for obj, made in self.clicked.items():
            if obj not in self.objects or obj in self.boxes:
                where = (
                    "a box's object" if obj in self.boxes else f"not in the mask, which holds {self.objects}"
                )
                raise DataError(self.source, f"object {obj} made with clicks is {where}")
            if not 1 <= len(made) <= MAX_BOX_CLICKS:
                raise DataError(
                    self.source, f"object {obj} made with {len(made)} clicks, not 1…{MAX_BOX_CLICKS}"
                )
            others = sorted({click.object for click in made} - {obj})
            if others:
                raise DataError(
                    self.source, f"clicks of object {others[0]} among those that made object {obj}"
                )
            self._checked_clicks(made)
        height, width = self.shape
        for obj, box in self.boxes.items():
            if obj not in self.objects:
                raise DataError(self.source, f"a box names object {obj}; the mask holds {self.objects}")
            if not 0 <= box.clicks <= MAX_BOX_CLICKS:
                raise DataError(
                    self.source, f"the box of object {obj}: {box.clicks} clicks, not 0…{MAX_BOX_CLICKS}"
                )
            if box.points and len(box.points) != box.clicks:
                raise DataError(
                    self.source, f"the box of object {obj}: {box.clicks} clicks, {len(box.points)} points"
                )
            self._checked_clicks([GivenClick(obj, x, y, positive) for x, y, positive in box.points])
            if not (0 <= box.x0 < box.x1 <= width and 0 <= box.y0 < box.y1 <= height):
                raise DataError(
                    self.source,
                    f"the box of object {obj}, {list(box.corners)}, is empty or off the "
                    f"{width}×{height} frame",
                )


def annotation_result(
    given: GivenAnnotation,
    frame: np.ndarray,
    current: np.ndarray,
    costs: AnnotationCosts,
    click_model: ClickToMask,
    known: Mapping[int, ObjectPrior] | None = None,
) -> tuple[AnnotationResult, dict[int, str]]:
    """What ``given`` makes of the frame's ``current`` mask, with its human seconds and each object's type.

    Clicks correct the current masks with the session's click model (`annotate_given_clicks`, with
    ``known``: object id → what the video knows of it, `video_priors`); a
    one-object mask replaces that object; a whole mask books each object by how it was made
    (`_given_mask`).
    """
    if given.ids is None:
        result = annotate_given_clicks(frame, current, given.clicks, costs, model=click_model, known=known)
        return result, dict.fromkeys(given.objects, "clicks")
    if given.object_id is not None:
        drawn = np.where(current == VOID, 0, current).astype(np.uint8)
        drawn[drawn == given.object_id] = 0
        drawn[given.ids != 0] = given.object_id
        seconds = {given.object_id: costs.vos_mask_seconds}
        return AnnotationResult("mask", drawn, seconds, {}), {given.object_id: "mask"}
    return _given_mask(given, current, costs)


def _given_mask(
    given: GivenAnnotation, current: np.ndarray, costs: AnnotationCosts
) -> tuple[AnnotationResult, dict[int, str]]:
    """A mask of every object of a frame, each object booked by how the person made it.

    An object the page's box tool made is a ``box`` (``box_seconds`` and ``click_seconds`` a
    corrective click, as the loop's box type books it), one its clicks made is a ``clicks`` annotation
    (``click_seconds`` a click); an object whose mask is the ``current`` one,
    but for pixels another object of the frame took (`accepted`), was looked at and accepted: a
    ``clicks`` annotation with no click, free but for the frame's look; any other object was drawn: a
    ``mask``, ``vos_mask_seconds``. A frame with an
    object not drawn costs its ``clicked_frame_seconds`` once. The frame's type is ``mask`` when an
    object was drawn, else ``box`` when one was boxed, else ``clicks``.
    """
    assert given.ids is not None
    if not given.objects:
        return AnnotationResult("mask", given.ids, {0: costs.clicked_frame_seconds}, {}), {}
    kinds: dict[int, str] = {}
    seconds: dict[int, float] = {}
    clicks: dict[int, int] = {}
    for obj in given.objects:
        if obj in given.boxes:
            kinds[obj], clicks[obj] = "box", given.boxes[obj].clicks
            seconds[obj] = costs.box_seconds + costs.click_seconds * clicks[obj]
        elif obj in given.clicked:
            kinds[obj], clicks[obj] = "clicks", len(given.clicked[obj])
            seconds[obj] = costs.click_seconds * clicks[obj]
        elif accepted(given.ids, current, obj):
            kinds[obj], seconds[obj] = "clicks", 0.0
        else:
            kinds[obj], seconds[obj] = "mask", costs.vos_mask_seconds
    if set(kinds.values()) != {"mask"}:
        seconds[min(given.objects)] += costs.clicked_frame_seconds
    kind = next(k for k in ("mask", "box", "clicks") if k in kinds.values())
    return AnnotationResult(kind, given.ids, seconds, clicks), kinds


def accepted(ids: np.ndarray, current: np.ndarray, obj: int) -> bool:
    """True when object ``obj`` of ``ids`` is its ``current`` mask, less pixels that another object took.

    A box or mask drawn for one object over another's edge takes those pixels; the other object was
    not drawn for that.
    """
    given, held = ids == obj, current == obj
    return not np.any(given & ~held) and not np.any(held & ~given & (ids == 0))


def book(
    state: VideoState, t: int, result: AnnotationResult, kinds: Mapping[int, str], given: GivenAnnotation
) -> IterationRecord:
    """Enter an annotation of loop frame ``t`` in ``state`` (its objects, annotations, annotated mask).

    Each object is booked with its own type (``kinds``; the frame's type where it has none) and what
    the person gave for it: its clicks and its box.

    Returns:
        The iteration's record (no quality: a person's session has no ground truth).
    """
    for obj in (int(v) for v in np.unique(result.mask) if v != 0):
        state.objects[obj] = min(t, state.objects.get(obj, t))
    iteration = state.iteration
    made = given.clicks or tuple(click for clicks in given.clicked.values() for click in clicks)
    state.annotations.extend(
        Annotation(
            t,
            obj,
            kinds.get(obj, result.kind),
            round(s, 6),
            result.clicks.get(obj, 0),
            iteration,
            points=tuple((c.x, c.y, c.positive) for c in made if c.object == obj)
            or (given.boxes[obj].points if obj in given.boxes else ()),
            box=given.boxes[obj].corners if obj in given.boxes else None,
        )
        for obj, s in sorted(result.seconds.items())
    )
    state.annotated[t] = result.mask
    state.names.update(given.names)
    return IterationRecord(
        iteration=iteration,
        frame=t,
        kind=result.kind,
        seconds=round(result.total_seconds, 6),
        total_seconds=round(state.seconds, 6),
        jf=None,
        j=None,
        f=None,
    )


def read_mask(path: Path, shape: tuple[int, int], frame_path: Path) -> np.ndarray:
    """The object ids of a person's mask PNG (void → 0), checked to be of the frame's size.

    A label store's clicks or boxes label (``*_clicks_instanceIds.png``, as `label import` writes a tool's
    points) holds the marked pixels only, not the objects: it is refused.
    """
    return _read_mask(path, shape, frame_path)[0]


def _read_mask(path: Path, shape: tuple[int, int], frame_path: Path) -> tuple[np.ndarray, bool]:
    """`read_mask`'s ids, and whether the file was a black-and-white (0/255) image."""
    if not path.is_file():
        raise DataError(path, "file does not exist")
    sparse = [kind.value for kind in (LabelKind.CLICKS, LabelKind.BOXES)]
    if any(path.name.endswith(f"_{kind}_instanceIds.png") for kind in sparse):
        raise DataError(
            path,
            "a label store's clicks or boxes label (the marked pixels only), not a mask of the objects: "
            "give the mask the tool drew, the clicks as --clicks, or a box as --box X0,Y0,X1,Y1 --object ID "
            "(corners included: its *_boxes.json gives them, x1 and y1 one past)",
        )
    _check_store_frame(path, frame_path)
    ids, binary = DavisFormat.decode_mask(path)
    if ids.shape != shape:
        raise DataError(
            path,
            f"mask is {ids.shape[1]}×{ids.shape[0]} px but the frame {frame_path.name} is "
            f"{shape[1]}×{shape[0]}",
        )
    return np.where(ids == VOID, 0, ids).astype(np.uint8), binary


#: A label store's file of a frame (`label import` writes them): ``<frame>_<kind>_instanceIds.png``, and
#: ``<frame>_clicks.json``.
_KINDS = "|".join(kind.value for kind in LabelKind)
_STORE_FILE = re.compile(rf"(?P<frame>.+)_(?:(?:{_KINDS})_instanceIds\.png|clicks\.json)")


def _check_store_frame(path: Path, frame_path: Path) -> None:
    """Refuse a label store's file of another frame: frame_0009's label had gone onto frame 9 (frame_0010).

    Only a file inside a store (``<store>/<split>/<clip>/``, under its ``run.json``) is named after its
    frame; a person names their own files freely. A store drops a Cityscapes frame's ``_leftImg8bit``.
    """
    named = _STORE_FILE.fullmatch(path.name)
    frame = frame_stem(frame_path)
    in_store = any((folder / RUN_FILE).is_file() for folder in path.resolve().parents[1:3])
    if named is not None and in_store and named["frame"] != frame:
        raise DataError(
            path,
            f"a label store's file of frame {named['frame']}, not of this frame ({frame_path.name}): give "
            f"the --frame whose file is {named['frame']} (counted from 0), or this frame's file",
        )


def check_objects(path: Path, named: list[int], known: dict[int, int], video: str, *, mask: bool) -> None:
    """Refuse the ids of ``named`` that are not in ``known``.

    ``mask``: ``named`` are the ids of a mask (not given as one object's), where a tool that redraws an
    object numbers it anew; for a mask of one such id the message says how to name the known object.
    """
    unknown = [obj for obj in named if obj not in known]
    if unknown:
        listed = ", ".join(map(str, sorted(known))) or "none"
        which = str(next(iter(known))) if len(known) == 1 else "ID"
        renamed = (
            f"if it is a known object numbered anew by the tool that drew it, name it with --object {which}; "
            if mask and named == unknown and len(unknown) == 1 and known
            else ""
        )
        raise DataError(
            path,
            f"object {', '.join(map(str, unknown))} unknown in video {video!r} (known: {listed}); {renamed}"
            "allow new objects (--new-objects) if they first appear on this frame",
        )


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _coordinate(value: Any) -> bool:
    """A finite JSON number (annotation tools write pixel coordinates as floats)."""
    return _integer(value) or (isinstance(value, float) and math.isfinite(value))


def _box_options(boxes: list[Any]) -> str:
    """``annotate add``'s box options for each box of a boxes JSON (whose x1, y1 lie one past its corners)."""
    try:
        corners = [(box["x0"], box["y0"], int(box["x1"]) - 1, int(box["y1"]) - 1) for box in boxes]
        objects = [box["instance_id"] for box in boxes]
    except (KeyError, TypeError, ValueError):
        corners = []
    if not corners:
        return "--box X0,Y0,X1,Y1 --object ID (corners included)"
    return " / ".join(
        f"--box {','.join(map(str, box))} --object {object_id}"
        for box, object_id in zip(corners, objects, strict=True)
    )


def read_clicks(path: str | Path, shape: tuple[int, int], object_id: int | None = None) -> list[GivenClick]:
    """The clicks of a JSON file ``{"clicks": [{"object": id, "x": column, "y": row, "positive": bool}, …]}``.

    A label store's clicks file (``*_clicks.json``, what `label import` makes of a tool's points:
    ``{"x", "y", "train_id", "instance_id"}``) is read too (`_store_clicks`).

    Args:
        path: the JSON file (other keys of an entry are ignored).
        shape: the frame's (height, width): every click must lie on it.
        object_id: the object of a store's clicks that name none (``annotate add --object``), or None.

    Raises:
        DataError: naming the file and the first problem: missing, not JSON, no ``clicks`` list, an
            empty list, or an entry without an object id 1…254 (`OBJECT_IDS`), pixel coordinates on the frame
            (numbers; a float is the pixel it lies in), or a true/false ``positive``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file does not exist")
    data = read_json(path, CLICKS_FORM)  # a byte-order mark (Notepad's UTF-8) is dropped
    if isinstance(data, dict) and isinstance(data.get("boxes"), list):
        raise DataError(
            path, f"a label store's boxes, not clicks: give each as {_box_options(data['boxes'])}"
        )
    if not isinstance(data, dict) or not isinstance(data.get("clicks"), list):
        raise DataError(path, f"no list of clicks; expected {CLICKS_FORM}")
    if not data["clicks"]:
        raise DataError(path, "the list of clicks is empty")
    height, width = shape
    out = []
    entries = data["clicks"]
    if any(isinstance(e, dict) and "train_id" in e and "object" not in e for e in entries):
        entries = _store_clicks(entries, path, object_id)
    elif object_id is not None:
        raise ConfigError(
            "object", f"{path}'s clicks name their objects; --object goes with a one-object mask"
        )
    for number, entry in enumerate(entries):
        where = f"click {number}"
        if not isinstance(entry, dict):
            raise DataError(path, f"{where} is not an object; expected {CLICKS_FORM}")
        missing = [key for key in ("object", "x", "y", "positive") if key not in entry]
        if missing:
            raise DataError(path, f"{where} lacks {', '.join(missing)}; expected {CLICKS_FORM}")
        obj, x, y, positive = entry["object"], entry["x"], entry["y"], entry["positive"]
        if not is_object_id(obj):
            raise DataError(path, f"{where}: object must be an id 1…{MAX_OBJECTS}, got {obj!r}")
        if not (_coordinate(x) and _coordinate(y)):
            raise DataError(path, f"{where}: x and y must be pixel coordinates (numbers), got {x!r}, {y!r}")
        x, y = math.floor(x), math.floor(y)  # tools write 10.0 or sub-pixel 10.4: the pixel it lies in
        if not (0 <= x < width and 0 <= y < height):
            raise DataError(path, f"{where} at x {x}, y {y} is off the {width}×{height} frame")
        if not isinstance(positive, bool):
            raise DataError(path, f"{where}: positive must be true or false, got {positive!r}")
        out.append(GivenClick(obj, x, y, positive))
    return out


def _store_clicks(entries: list[Any], path: Path, object_id: int | None) -> list[dict[str, Any]]:
    """A label store's clicks (``train_id``, ``instance_id``) as a person's object clicks.

    A click of the background class (train id 0) is negative, of any other class positive. Its object is
    its ``instance_id`` (a tool's track), else ``object_id``, else for a negative click the only object
    the file's positive clicks name.

    Raises:
        DataError: naming the click: one not of that form, or one whose object is not known.
    """
    form = '{"clicks": [{"x": column, "y": row, "train_id": class, "instance_id": object}, …]}'
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or not (
            entry.get("instance_id") is None or is_object_id(entry["instance_id"])
        ):
            raise DataError(path, f"click {number}: not a store's click {form}")
        train_id = entry.get("train_id")
        if not isinstance(train_id, int) or isinstance(train_id, bool):
            raise DataError(path, f"click {number}: train_id must be a class number, got {train_id!r}")
    named = {e["instance_id"] for e in entries if e["train_id"] != 0 and e.get("instance_id") is not None}
    clicks = []
    for number, entry in enumerate(entries):
        positive = entry["train_id"] != 0
        obj = entry.get("instance_id") or object_id
        if obj is None and not positive and len(named) == 1:
            obj = next(iter(named))
        if obj is None:
            raise DataError(
                path,
                f"click {number} ({'positive' if positive else 'negative'}) names no object (instance_id): "
                "give --object ID",
            )
        clicks.append({**entry, "object": obj, "positive": positive})
    return clicks
