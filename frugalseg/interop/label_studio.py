"""Label Studio's JSON export read into shapes, and label stores written as its pre-annotations.

An export is a list of tasks (``{"id", "data": {"image": …}, "annotations": […], "predictions": […]}``);
a task's shapes are the results of its last annotation that was not cancelled, or of its last
prediction when no one annotated it (Label Studio 1.23's export lists a task's predictions by their
ids: none is read then; its JSON-MIN export, data without its ``data``, is refused; so is its brush
PNG export, a zip or folder of PNGs). A prediction is a model's guess that no person reviewed: its
brushes and polygons are ``pseudo`` labels (`LabelKind.PSEUDO`), kept apart from people's, unless
its results record their kind (``meta.frugalseg_kind``: frugalseg's own pre-annotations, which
import as the labels they were); its rectangles and keypoints are ``boxes`` and ``clicks`` as ever.
An annotation whose person deleted every region (``result: []``, not cancelled) says "nothing here":
its frame is read without shapes, `Frame.empty`, an all-background label once imported
(`frugalseg.interop.stores.import_export`). Results hold
coordinates in percent of the image (``original_width``/``original_height`` give the pixels):
``polygonlabels`` (closed polygons), ``rectanglelabels`` (boxes; rotated ones are refused),
``keypointlabels`` (points) and ``brushlabels`` with ``format: rle`` (Label Studio's brush RLE,
`frugalseg.interop.rle.ls_decode`).
A kept annotation's ``lead_time`` (the seconds the person took) is the annotation seconds of the
one label its results record no seconds for (`frugalseg.interop.stores.label_seconds`).
An annotation with a brush or polygon that its ``origin`` says a person edited or drew (`EDITED_ORIGINS`:
Label Studio turns ``prediction`` into ``prediction-changed`` at the first edit) is the person's mask of
the frame: the kind and seconds the ``meta`` of its brushes and polygons kept from the prediction
(*Create annotations from predictions* keeps it) are left out, so they make one label.
A result's object (instance id) is the one its ``meta.instance_id`` records, else the one its id
names (`result_object`: ``frugalseg-<object>-<k>`` as `write_label_studio` writes, ``frugalseg-<object>``
as the ML backend does; ``frugalseg-class-<k>``, a class region such as the background, names none):
Label Studio's editor drops a prediction's ``meta`` when a person accepts or edits it, but keeps
its region ids. A result that names nothing (a region a person drew) is the smallest object id
that no result of the task names and no earlier such result took; keypoints, a person's clicks, are
read as the ML backend reads them: those of one label are the object of the task's one region of that
label (the rectangle or brush they correct), else one new object together, and a keypoint marked
``is_positive: false`` (a negative smart keypoint) is a negative click of its object (`Shape.negative`).
The image is found by its path: an uploaded file's ``/data/upload/<project>/<8 hex>-<name>`` by
``<name>``, a local file's ``/data/local-files/?d=<path>`` by ``<path>``.

Video tasks (``data.video``, results of type ``videorectangle``) are found the same way, by the
video's file name (the clip named like it, or ``--clip``); each result is a track of keyframes
(``sequence`` items: ``frame`` counted from 1, ``x``/``y``/``width``/``height`` in percent of the
frame, ``enabled``), read as one object's ``boxes`` labels on every frame Label Studio's editor
draws it (``VideoRectangleRegion.getShape`` and ``VideoRegion.isInLifespan`` in its frontend): on
a keyframe; between an enabled keyframe and the next, each property moved linearly; after the last
keyframe, if enabled, the same box to the video's end (``framesCount``; frames past the clip's end
are left out). A disabled keyframe ends the object's lifespan after its own frame, until the next
keyframe. Label Studio's frame f is frame f − 1 of the clip, as its own ML backends count.

An ML backend (`frugalseg.app.ml_backend`) reads results here too: an annotation's or an interactive
context's results as checked shapes of a frame (`annotation_shapes`), with the objects `label import`
gives them, and the object a result id names (`result_object`); the rest of its side (configs, brush
results, keypoints as clicks, regions as objects) is `frugalseg.interop.label_studio_regions`.

Pre-annotations (``label export --tool label-studio``) are tasks whose ``predictions`` hold one
brush RLE per (kind, class, instance), with ``meta`` recording the label kind, instance and the label's
annotation seconds (``frugalseg_seconds``, the store's cost ledger) so that importing them gives the
store back; each result's id names its object too (``frugalseg-<instance>-<k>``, a class region's
``frugalseg-class-<k>``), so a person's accepted or edited regions keep their objects; the image
is ``/data/local-files/?d=<path in the data set>`` (serve the data set folder as Label Studio's local
files root), and the results name the
``BrushLabels`` control ``label`` on the ``Image`` ``image``, as the project's labeling config must.
What a person drew goes beside them: each box of a ``boxes`` label as a ``rectanglelabels`` result
of the ``RectangleLabels`` control ``box``, each click of a ``clicks`` label as a ``keypointlabels``
result (the clicked pixel's centre) of the ``KeyPointLabels`` control ``click``. Pixels become
percent as Label Studio's editor makes them (``px · 100 / size``) and percent pixels as it reads
them back (``percent · size / 100``); a box's whole-pixel edges survive that
(`frugalseg.interop.raster.EDGE_TOLERANCE`).
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Sequence
from functools import partial
from itertools import count
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlparse
from xml.sax.saxutils import quoteattr

import numpy as np

from frugalseg.autolabel.boxes import Box
from frugalseg.autolabel.clicks import Click
from frugalseg.data.clips import LabelKind
from frugalseg.data.files import write_bytes_atomic
from frugalseg.data.io import MAX_IMAGE_PIXELS, write_json_atomic
from frugalseg.errors import DataError
from frugalseg.interop.raster import check_shape
from frugalseg.interop.registry import ToolFormat, register_reader, register_writer
from frugalseg.interop.rle import ls_decode, ls_encode
from frugalseg.interop.shapes import SECONDS_KEY, Frame, Shape, ToolExport, parse_seconds
from frugalseg.interop.tool_files import is_png_file, read_tool_json

if TYPE_CHECKING:
    from frugalseg.interop.stored_frames import Mark, StoredFrame

logger = logging.getLogger(__name__)

#: Label Studio 1.x's JSON export (the format has no version of its own): tasks with their results.
LABEL_STUDIO = ToolFormat("label-studio", ".json", "1.x")

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")
_LABEL_KEYS = {"polygonlabels": "polygon", "rectanglelabels": "box", "keypointlabels": "points",
               "brushlabels": "mask"}  # fmt: skip
FROM_NAME, TO_NAME = "label", "image"
#: A result's ``origin`` once a person edited a prediction's region, or drew it (Label Studio's editor).
EDITED_ORIGINS = ("prediction-changed", "manual")
#: The result types of a dense label (masks).
_DENSE_KEYS = ("brushlabels", "polygonlabels")
#: The controls of the results that hold a person's boxes and clicks.
BOX_FROM_NAME, CLICK_FROM_NAME = "box", "click"
#: The id of a result that holds one object's mask: ``frugalseg-<object id>`` (the ML backend's).
RESULT_ID = re.compile(r"frugalseg-(\d{1,3})")
#: The id of a result `write_label_studio` writes: ``frugalseg-<instance>-<k>`` of an object's,
#: ``frugalseg-class-<k>`` of a region of a class without an object (the background).
WRITTEN_ID = re.compile(r"frugalseg-(?:(\d{1,9})|class)-\d{1,9}")
#: What an ML backend's errors say the results came from.
ML_BACKEND = Path("label studio")


def image_name(url: str) -> str:
    """The data set path a task's image URL names (upload hash prefix and local-files query removed)."""
    parsed = urlparse(url)
    local = parse_qs(parsed.query).get("d")  # decoded
    path = local[0] if local else unquote(parsed.path)
    if "/upload/" in path:
        return _UPLOAD_PREFIX.sub("", PurePosixPath(path).name)
    return path.lstrip("/")


def local_file_url(name: str) -> str:
    """The URL of a frame in Label Studio's local files (``name``: its path there), encoded as it does.

    A name's spaces, ``#``, ``&``, ``%`` and ``+`` would otherwise end or change the query.
    """
    return f"/data/local-files/?d={quote(name, safe='/')}"


@register_reader(LABEL_STUDIO)
def read_label_studio(path: str | Path) -> ToolExport:
    """Read a Label Studio JSON export (a list of tasks) into one frame per task."""
    path = Path(path)
    _refuse_brush_exports(path)
    try:
        tasks = read_tool_json(path)
    except DataError as err:
        with path.open("rb") as file:
            start = file.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        if not err.problem.startswith("not valid JSON") or start[:1] in (b"[", b"{", b"<"):
            raise
        # a table (CSV, TSV) or other text: another of Label Studio's export formats
        hint = "export the project as JSON (not CSV, TSV or JSON-MIN)"
        raise DataError(path, f"{err.problem}: {hint}") from err
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise DataError(path, "expected a JSON list of Label Studio tasks")
    frames: list[Frame] = []
    labels: dict[str, None] = {}
    for task in tasks:
        element = f"task {task.get('id')}"
        results, predicted = _results(task)
        data = task.get("data") or {}
        urls = [v for v in data.values() if isinstance(v, str)]
        if not urls:
            minimal = not {"data", "annotations", "predictions"} & task.keys()  # JSON-MIN: data on top
            hint = "; this looks like Label Studio's JSON-MIN export: export the project as JSON"
            raise DataError(
                path,
                f"{element}: its data names no image or video (a task holds data.image or data.video)"
                + (hint if minimal else ""),
            )
        tracks = [r for r in results if str(r.get("type", "")).lower() == "videorectangle"]
        if tracks:
            video = data["video"] if isinstance(data.get("video"), str) else urls[0]
            drawn = _video_frames(tracks, image_name(video), path, element)
            labels.update(dict.fromkeys(shape.label for frame in drawn for shape in frame.shapes))
            frames += drawn
            continue
        frame = Frame(image_name(urls[0]), None, element=element, lead_time=_lead_time(task, path, element))
        edited = not predicted and _edited(results)
        for position, (result, fallback) in enumerate(zip(results, _fallbacks(results), strict=True), 1):
            where = f"{element} result {result.get('id', position)}"
            shape = result_shape(result, frame, fallback, path, where, predicted=predicted, edited=edited)
            if shape is not None:
                frame.shapes.append(shape)
                labels[shape.label] = None
        frame.empty = not results and bool(_kept(task.get("annotations")))
        frames.append(frame)
    _warn_of_predictions_by_id(path, tasks)
    return ToolExport(path, "label-studio", [f for f in frames if f.shapes or f.empty], tuple(labels))


def _warn_of_predictions_by_id(path: Path, tasks: list[dict[str, Any]]) -> None:
    """Warn of the tasks no one annotated whose predictions the file lists by id alone (left out).

    Label Studio 1.23's JSON export does so: a prediction no one accepted is not in it.
    """
    unread = [
        task
        for task in tasks
        if not _kept(task.get("annotations"))
        and not _kept(task.get("predictions"))
        and any(not isinstance(p, dict) for p in (task.get("predictions") or []))
    ]
    skipped = [task.get("id") for task in unread if task.get("annotations")]  # every annotation cancelled
    unopened = [task.get("id") for task in unread if not task.get("annotations")]
    if skipped:
        logger.warning(
            "%s: %s a person skipped left out (%s): a skip says nothing of the frame",
            path, _tasks(skipped), _listed(skipped),
        )  # fmt: skip
    if unopened:
        logger.warning(
            "%s: %s no one annotated left out (%s): Label Studio's JSON export lists their predictions "
            "by id alone; submit a prediction in Label Studio to export it as the person's",
            path, _tasks(unopened), _listed(unopened),
        )  # fmt: skip


def _tasks(ids: list[Any]) -> str:
    """``1 task``, ``2 tasks``."""
    return f"{len(ids)} task{'' if len(ids) == 1 else 's'}"


def _listed(ids: list[Any]) -> str:
    """The first five ids, and an ellipsis after them when there are more."""
    return ", ".join(map(str, ids[:5])) + (" …" if len(ids) > 5 else "")


def _refuse_brush_exports(path: Path) -> None:
    """Refuse Label Studio's brush exports that are no JSON (a PNG, a zip or folder of them) at once.

    ``BRUSH_TO_PNG`` and ``BRUSH_TO_NUMPY`` are a zip of one image or array per region, whose names say no
    frame or object; ``BRUSH_TO_COCO`` is a zip of a COCO file, which ``--tool coco`` reads once unzipped.
    """
    if path.is_dir():
        what, names = "a folder", [p.name for p in path.iterdir()]
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            what, names = "a zip", archive.namelist()
    elif is_png_file(path):
        what, names = "a PNG image", [path.name]
    else:
        return
    if any(name.endswith(".json") for name in names):
        unzip = " (unzip it)" if what == "a zip" else ""
        raise DataError(
            path,
            f"{what} holding a COCO file: Label Studio's brush COCO export (BRUSH_TO_COCO) is read by "
            f"--tool coco from its JSON file{unzip}; or export the project as JSON",
        )
    numpy = any(name.endswith(".npy") for name in names)
    kind, export, held = ("NumPy", "BRUSH_TO_NUMPY", "arrays") if numpy else ("PNG", "BRUSH_TO_PNG", "PNGs")
    raise DataError(
        path,
        f"{what}, not a JSON file: Label Studio's brush {kind} export ({export}) is not read (its {held} "
        "name no frame or object); export the project as JSON",
    )


def _lead_time(task: dict[str, Any], path: Path, element: str) -> float | None:
    """The ``lead_time`` of the task's last kept annotation (None without one, or for a prediction)."""
    kept = _kept(task.get("annotations"))
    if not kept:
        return None
    last = kept[-1]
    return parse_seconds(last.get("lead_time"), path, f"{element} annotation {last.get('id')}", "lead_time")


def _kept(items: Any) -> list[dict[str, Any]]:
    """A task's annotations or predictions that are objects and were not cancelled.

    Label Studio 1.23's JSON export lists a task's ``predictions`` by their ids alone (ints): nothing
    to read there.
    """
    items = items if isinstance(items, list) else []
    return [a for a in items if isinstance(a, dict) and not a.get("was_cancelled")]


def _results(task: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The results of the task's last kept annotation, else of its last prediction; whether predicted."""
    annotations = _kept(task.get("annotations"))
    source = annotations or _kept(task.get("predictions"))
    return (list(source[-1].get("result") or []) if source else []), not annotations


def _edited(results: list[Any]) -> bool:
    """Whether an annotation's person edited or drew a brush or polygon (`EDITED_ORIGINS`).

    Then every brush and polygon of it is theirs: one dense label of the frame, the objects they kept
    as predicted with it, as the annotation page books a frame (`frugalseg.active.objects.labels`).
    """
    return any(
        isinstance(r, dict)
        and r.get("origin") in EDITED_ORIGINS
        and any(key in (r.get("value") or {}) for key in _DENSE_KEYS)
        for r in results
    )


def _named(result: Any) -> tuple[bool, int | None]:
    """Whether a result names its object, and which: its ``meta.instance_id``, else its id (None: no object).

    Raises:
        TypeError, ValueError, OverflowError, AttributeError: a recorded instance that is no integer.
    """
    meta = result.get("meta") or {}
    if "instance_id" in meta:
        instance = meta["instance_id"]
        return True, None if instance is None else int(instance)
    text = str(result.get("id", ""))
    if RESULT_ID.fullmatch(text) or WRITTEN_ID.fullmatch(text):
        return True, result_object(result)
    return False, None


def _fallbacks(results: Sequence[Any]) -> list[int]:
    """The object of each result that names none: the smallest id no result of the task names, in order.

    A region a person drew from scratch is a new object, never one a prediction's region kept (whose
    ``meta`` Label Studio drops, but not its id), but for a rectangle beside the one kept region of its
    label: the box that object was drawn in, as the ML backend reads it. Results that name an object
    get 0 (unused). Keypoints are clicks on an object, as the ML backend reads them: those of one label
    are the object of the task's one other region of that label (the rectangle or brush they correct),
    else one new object together.
    """
    drawn: list[bool] = []  # results that name no object: a person drew them
    instances: list[int] = []  # the object each result names (0: none, or one refused when read)
    for result in results:
        try:
            names, instance = _named(result)
        except (AttributeError, TypeError, ValueError, OverflowError):
            names, instance = True, None  # refused when its shape is read
        drawn.append(not names)
        instances.append(instance or 0)
    free = (i for i in count(1) if i not in instances)
    keypoints = [_keypoint_label(result) for result in results]  # None for other results
    kept: dict[str, set[int]] = {}  # a label → the objects its regions that name one name
    for result, kp, new, named in zip(results, keypoints, drawn, instances, strict=True):
        if kp is None and not new and named:
            kept.setdefault(_region_label(result), set()).add(named)
    objects = []
    for result, new, kp in zip(results, drawn, keypoints, strict=True):
        same = kept.get(_region_label(result), set()) if new and kp is None else set()
        if len(same) == 1 and isinstance(result, dict) and result.get("type") == "rectanglelabels":
            objects.append(next(iter(same)))  # the box the one kept region of its label was drawn in
        else:
            objects.append(next(free) if new and kp is None else 0)
    regions: dict[str, set[int]] = {}  # a label → the objects of the regions drawn with it
    for result, kp, new, obj, named in zip(results, keypoints, drawn, objects, instances, strict=True):
        if kp is None:
            regions.setdefault(_region_label(result), set()).add(obj if new else named)
    clicked: dict[str, int] = {}  # a keypoint label → the object of those keypoints
    for k, (kp, new) in enumerate(zip(keypoints, drawn, strict=True)):
        if kp is not None and new:
            if kp not in clicked:
                region = regions.get(kp, set()) - {0}
                clicked[kp] = next(iter(region)) if len(region) == 1 else next(free)
            objects[k] = clicked[kp]
    return objects


def _keypoint_label(result: Any) -> str | None:
    """A keypoint result's label ("" without one), or None for other results."""
    value = result.get("value") if isinstance(result, dict) else None
    if not isinstance(value, dict) or "keypointlabels" not in value:
        return None
    return _region_label(result)


def _region_label(result: Any) -> str:
    """A result's first label, or "" (none, or not of the structure: refused when its shape is read)."""
    value = result.get("value") or {}
    key = next((k for k in _LABEL_KEYS if k in value), None)
    names = value.get(key) if key is not None else None
    return str(names[0]) if isinstance(names, list) and names else ""


def result_shape(
    result: Any,
    frame: Frame,
    fallback: int,
    path: Path,
    element: str,
    *,
    predicted: bool = False,
    edited: bool = False,
) -> Shape | None:
    """One result as a `Shape` (None for results of other types: choices, text …); sets ``frame.size``.

    Its object is the one it names (`_named`), else ``fallback`` (`_fallbacks`). A ``predicted``
    brush or polygon that records no kind is a ``pseudo`` label's (module docstring); in an ``edited``
    annotation (`_edited`) a brush or polygon is the person's, whatever kind its ``meta`` records.
    A result of the wrong structure (a field missing, not a number, one beyond a float, a damaged
    brush RLE) or of another size than ``frame.size`` when that is known is a `DataError` naming
    it, refused before its brush is decoded.
    """
    try:
        return _result_shape(result, frame, fallback, path, element, predicted, edited)
    except DataError:
        raise
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, OverflowError) as err:
        raise DataError(
            path, f"{element}: not a Label Studio result of its type ({type(err).__name__}: {err})"
        ) from err


def _result_shape(
    result: dict[str, Any],
    frame: Frame,
    fallback: int,
    path: Path,
    element: str,
    predicted: bool,
    edited: bool,
) -> Shape | None:
    value = result.get("value") or {}
    key = next((k for k in _LABEL_KEYS if k in value), None)
    if key is None and result.get("type") in _LABEL_KEYS:  # a region of a labels control, damaged
        raise DataError(path, f"{element}: a {result['type']} result without its value's {result['type']}")
    if key is None:
        return None
    try:
        width, height = int(result["original_width"]), int(result["original_height"])
        names = value[key]
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise DataError(
            path, f"{element}: lacks original_width/original_height or its labels ({err!r})"
        ) from err
    if not (0 < width and 0 < height and width * height <= MAX_IMAGE_PIXELS):
        raise DataError(path, f"{element}: original size {width}×{height} is no image frugalseg reads")
    if frame.size is not None and frame.size != (height, width):
        raise DataError(
            path,
            f"{element}: drawn on an image of {width}×{height}, the task's image is "
            f"{frame.size[1]}×{frame.size[0]}",
        )
    frame.size = (height, width)
    meta = result.get("meta") or {}
    if edited and key in _DENSE_KEYS:
        meta = {}  # the person's mask of the frame: not the prediction's kind and seconds
    names_object, instance = _named(result)
    instance = instance if names_object else fallback
    shape = Shape(_LABEL_KEYS[key], str(names[0]) if names else "", element, instance_id=instance)
    shape.negative = key == "keypointlabels" and not bool(result.get("is_positive", True))
    if meta.get("frugalseg_kind"):
        shape.kind = LabelKind(meta["frugalseg_kind"])
    elif predicted and key in _DENSE_KEYS:
        shape.kind = LabelKind.PSEUDO  # a model's guess, not a person's
    shape.seconds = parse_seconds(meta.get(SECONDS_KEY), path, element)
    size = np.array([width, height], np.float64)  # percent · size / 100, as the video boxes are scaled
    if key == "brushlabels":
        try:
            rle = [int(v) for v in value["rle"]]
            ls_decode(rle, height, width)  # decoded once now, so that a damaged RLE is refused before a write
            shape.decode, shape.mask_size = partial(ls_decode, rle, height, width), (height, width)
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(
                path, f"{element}: brush rle does not fit the {width}×{height} image ({err})"
            ) from err
    elif key == "polygonlabels":
        shape.points = np.asarray(value["points"], np.float64).reshape(-1, 2) * size / 100
    elif key == "keypointlabels":
        shape.points = np.array([[value["x"], value["y"]]], np.float64) * size / 100
    else:
        if value.get("rotation"):
            raise DataError(path, f"{element}: a rotated rectangle ({value['rotation']}°) is not a box")
        corner = np.array([value["x"], value["y"]], np.float64)
        extent = _extent(value["width"], value["height"], path, element)
        shape.points = np.stack([corner, corner + extent]) * size / 100
    return shape


def _extent(width: Any, height: Any, path: Path, element: str) -> np.ndarray:
    """A rectangle's [width, height] in percent; `DataError` when negative (Label Studio's never are).

    Label Studio keeps them positive whichever way a box is drawn, and turns a box by its ``rotation``.
    """
    extent = np.array([width, height], np.float64)
    if (extent < 0).any():
        raise DataError(
            path, f"{element}: a rectangle of negative size ({extent[0]:g}% × {extent[1]:g}% of the image)"
        )
    return extent


def _video_frames(tracks: list[dict[str, Any]], video: str, path: Path, element: str) -> list[Frame]:
    """The frames a video task's tracks draw boxes on, each box in percent of the frame (module docstring)."""
    frames: dict[int, Frame] = {}
    for position, result in enumerate(tracks, start=1):
        where = f"{element} result {result.get('id', position)}"
        value = result.get("value") or {}
        names = value.get("labels") or []
        label = str(names[0]) if names else ""
        for number, box, held in _track_boxes(value, path, where):
            if number not in frames:
                name = f"{element} frame {number + 1}"
                frames[number] = Frame(number, None, element=name, video=video, percent=True, held=True)
            frame = frames[number]
            frame.held &= held
            corners = np.array([box[:2], box[:2] + box[2:]])
            frame.shapes.append(
                Shape("box", label, f"{where} (frame {number + 1})", corners, instance_id=position)
            )
    return [frames[number] for number in sorted(frames)]


def _track_boxes(value: dict[str, Any], path: Path, element: str) -> list[tuple[int, np.ndarray, bool]]:
    """(clip frame, [x, y, width, height] in percent, held after the last keyframe) where a track draws."""
    keyframes: dict[int, tuple[np.ndarray, bool]] = {}
    try:
        for item in value["sequence"]:
            if item.get("rotation"):
                raise DataError(path, f"{element}: a rotated rectangle ({item['rotation']}°) is not a box")
            extent = _extent(item["width"], item["height"], path, element)
            box = np.array([item["x"], item["y"], *extent], np.float64)
            keyframes.setdefault(int(item["frame"]), (box, bool(item.get("enabled", True))))
        end = int(value.get("framesCount") or 0)
    except DataError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(
            path, f"{element}: a videorectangle holds a sequence of frame, x, y, width, height ({err!r})"
        ) from err
    numbers = sorted(keyframes)
    if numbers and numbers[0] < 1:
        raise DataError(path, f"{element}: keyframe {numbers[0]}: Label Studio counts frames from 1")
    drawn = []
    for k, start in enumerate(numbers):
        box, enabled = keyframes[start]
        drawn.append((start - 1, box, False))
        if not enabled:
            continue
        if k + 1 == len(numbers):
            drawn += [(f - 1, box, True) for f in range(start + 1, end + 1)]
            continue
        stop = numbers[k + 1]
        following = keyframes[stop][0]
        drawn += [(f - 1, box + (following - box) * ((f - start) / (stop - start)), False)
                  for f in range(start + 1, stop)]  # fmt: skip
    return drawn


def write_label_studio(
    path: str | Path,
    frames: list[tuple[str, tuple[int, int], list[tuple[LabelKind, str, int | None, np.ndarray]]]],
    marks: list[list[Mark]] | None = None,
    seconds: list[dict[LabelKind, float]] | None = None,
) -> None:
    """Write Label Studio tasks, each predicting a brush RLE per object of its frame (module docstring).

    ``marks`` holds each frame's clicks and boxes, written as keypoint and rectangle results;
    ``seconds`` the annotation seconds of each frame's labels by kind, in the ``meta`` of their results.
    """
    tasks, results = [], []
    marks = marks or [[] for _ in frames]
    seconds = seconds or [{} for _ in frames]
    for task_id, ((name, (height, width), objects), drawn, cost) in enumerate(
        zip(frames, marks, seconds, strict=True), 1
    ):
        result = [
            {
                "id": written_id(instance, k), "type": "brushlabels", "from_name": FROM_NAME,
                "to_name": TO_NAME, "original_width": width, "original_height": height, "image_rotation": 0,
                "value": {"format": "rle", "rle": ls_encode(mask), "brushlabels": [label]},
                "meta": _meta(kind, instance, cost),
            }
            for k, (kind, label, instance, mask) in enumerate(objects, start=1)
        ]  # fmt: skip
        result += [
            {"id": written_id(mark.instance_id, k), "to_name": TO_NAME, "original_width": width,
             "original_height": height, "image_rotation": 0,
             **_mark_result(label, mark, (height, width), cost)}
            for k, (label, mark) in enumerate(drawn, start=len(objects) + 1)
        ]  # fmt: skip
        tasks.append({
            "id": task_id, "data": {"image": local_file_url(name)},
            "predictions": [{"model_version": "frugalseg", "result": result}],
        })  # fmt: skip
        results += result
    write_json_atomic(path, tasks, indent=0)
    write_bytes_atomic(config_path(path), labeling_config(results).encode("utf-8"))


def config_path(tasks: str | Path) -> Path:
    """The labeling config beside a tasks file: ``label-studio.json`` → ``label-studio-config.xml``."""
    tasks = Path(tasks)
    return tasks.with_name(f"{tasks.stem}-config.xml")


def labeling_config(results: Sequence[dict[str, Any]]) -> str:
    """A labeling config (XML) for the tasks `write_label_studio` writes, with every label of ``results``.

    Each of its controls holds them all: the brushes' ``BrushLabels`` ``label``, the boxes'
    ``RectangleLabels`` ``box`` and the clicks' ``KeyPointLabels`` ``click``, on the ``Image`` ``image``;
    boxes and keypoints are smart, so that Label Studio sends them to an ML backend's interactive mode.
    The keypoints' labels carry ``model_index`` (their order), without which Label Studio's COCO export of
    a project with keypoints fails.
    """
    keys = ("brushlabels", "rectanglelabels", "keypointlabels")
    used = dict.fromkeys(label for r in results for key in keys for label in r["value"].get(key, ()))
    values = [quoteattr(label) for label in used or ("object",)]
    labels = "".join(f"\n    <Label value={value}/>" for value in values)
    ordered = "".join(f'\n    <Label value={value} model_index="{k}"/>' for k, value in enumerate(values))
    smart = ' smart="true"'
    controls = (("BrushLabels", FROM_NAME, "", labels), ("RectangleLabels", BOX_FROM_NAME, smart, labels),
                ("KeyPointLabels", CLICK_FROM_NAME, smart, ordered))  # fmt: skip
    tags = [
        f'  <{tag} name="{name}" toName="{TO_NAME}"{attrs}>{held}\n  </{tag}>'
        for tag, name, attrs, held in controls
    ]
    return "\n".join([f'<View>\n  <Image name="{TO_NAME}" value="$image" zoom="true"/>', *tags, "</View>\n"])


def written_id(instance: int | None, k: int) -> str:
    """The id of a task's ``k``-th result: it names its object (`WRITTEN_ID`), as ``meta`` may not stay."""
    return f"frugalseg-{instance}-{k}" if instance is not None else f"frugalseg-class-{k}"


def percent(pixels: float, size: int) -> float:
    """``pixels`` in percent of ``size``, as Label Studio's editor computes it (``px · 100 / size``)."""
    return pixels * 100 / size


def _meta(kind: LabelKind, instance: int | None, seconds: dict[LabelKind, float]) -> dict[str, Any]:
    """A result's ``meta``: its label kind, instance and its label's seconds (where ``seconds`` has them)."""
    meta = {"frugalseg_kind": kind.value, "instance_id": instance}
    return meta | ({SECONDS_KEY: seconds[kind]} if kind in seconds else {})


def _mark_result(
    label: str, mark: Click | Box, size: tuple[int, int], seconds: dict[LabelKind, float]
) -> dict[str, Any]:
    """The typed part of a click's keypoint result or a box's rectangle result (module docstring)."""
    height, width = size
    meta = {"meta": _meta(mark_kind(mark), mark.instance_id, seconds)}
    if isinstance(mark, Click):
        x, y = percent(mark.x + 0.5, width), percent(mark.y + 0.5, height)
        value = {"x": x, "y": y, "width": percent(1, width), "keypointlabels": [label]}
        return {"type": "keypointlabels", "from_name": CLICK_FROM_NAME, "value": value, **meta}
    value = {
        "x": percent(mark.x0, width), "y": percent(mark.y0, height),
        "width": percent(mark.x1 - mark.x0, width), "height": percent(mark.y1 - mark.y0, height),
        "rotation": 0, "rectanglelabels": [label],
    }  # fmt: skip
    return {"type": "rectanglelabels", "from_name": BOX_FROM_NAME, "value": value, **meta}


def mark_kind(mark: Click | Box) -> LabelKind:
    """The label kind a click or box is of."""
    return LabelKind.CLICKS if isinstance(mark, Click) else LabelKind.BOXES


@register_writer(LABEL_STUDIO)
def write_label_studio_frames(path: Path, frames: list[StoredFrame], classes: list[str]) -> None:
    """Write a label store's ``frames`` as one file of Label Studio tasks (`write_label_studio`).

    A frame named by its file alone (a data set that is one folder of frames) is named with that folder
    (``my dog/frame 001.jpg``): Label Studio serves files below its document root, never in it, so the
    root is the folder above and the tasks must name the folder.
    """
    objects = [(_under_its_folder(f), f.size, f.tool_objects()) for f in frames]
    write_label_studio(path, objects, [f.marks() for f in frames], [f.seconds for f in frames])


def _under_its_folder(frame: StoredFrame) -> str:
    """``frame``'s name, with its file's folder before it where the name is the file's alone."""
    if PurePosixPath(frame.name).parent != PurePosixPath("."):
        return frame.name
    return f"{frame.clip.frame_path(frame.offset).parent.name}/{frame.name}"


def result_object(result: dict[str, Any]) -> int | None:
    """The object id a result's id names, else None.

    ``frugalseg-<id>`` (what `brush_result` wrote) or ``frugalseg-<id>-<k>`` (`write_label_studio`'s);
    ``frugalseg-class-<k>``, a class region's, names none.
    """
    text = str(result.get("id", ""))
    match = RESULT_ID.fullmatch(text) or WRITTEN_ID.fullmatch(text)
    return int(match[1]) if match is not None and match[1] else None


def annotation_shapes(
    results: Sequence[Any], size: tuple[int, int], element: str
) -> tuple[Frame, list[dict[str, Any]]]:
    """The results of one task as checked shapes of its frame of ``size`` (H, W), and each shape's result.

    Results of other types (choices, text …) are left out.

    Raises:
        DataError: naming ``element`` and the result: one of the wrong structure, off the frame,
            drawn on an image of another size, or none to read.
    """
    frame = Frame(element, size, element=element)  # a result of another size is refused before decoding
    read: list[dict[str, Any]] = []
    for position, result in enumerate(results, start=1):
        if not isinstance(result, dict):
            raise DataError(ML_BACKEND, f"{element}: result {position} is not an object")
    for position, (result, fallback) in enumerate(zip(results, _fallbacks(results), strict=True), 1):
        name = f"{element} result {str(result.get('id', position))[:64]}"
        shape = result_shape(result, frame, fallback, ML_BACKEND, name)
        if shape is not None:
            check_shape(shape, size, ML_BACKEND)
            frame.shapes.append(shape)
            read.append(result)
    if not frame.shapes:
        raise DataError(ML_BACKEND, f"{element}: no brush, polygon, rectangle or keypoint to read")
    return frame, read
