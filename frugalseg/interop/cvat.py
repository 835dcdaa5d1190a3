"""CVAT's XML 1.1 (for video and for images) read into shapes, and label stores written back as it.

CVAT for video lists tracks (``<track id label>``) of shapes on absolute frame numbers of the
video (``start_frame + k · step`` with ``frame_filter step=N``), each shape marked ``keyframe`` and
``outside`` (the object has left). CVAT writes every frame of a track; a file that leaves frames out
(written by hand or by another tool) is filled in as CVAT does: a shape lasts until the track's
next shape, boxes move linearly between two shapes (CVAT's ``simple_interpolation``), polygons,
polylines and points of the same number of vertices move vertex by vertex (CVAT matches vertices
along the contour, which gives the same for shapes that keep their vertices), and shapes whose
vertex count changes stay as they were; nothing is drawn on the frames after an ``outside`` shape,
and a track whose last shape is inside lasts to the task's last frame. Only the task's frames are
filled. Masks are not: CVAT has no tracks of masks (it writes a mask shape as a track of its mask and
an ``outside`` copy, the copy left out on the task's last two frames, and keeps a mask track's first
shape only), so a mask is read on its own frame alone, each mask of a track (frugalseg's exports
before CVAT's layout wrote an object's masks as one track).

Masks are ``<mask rle left top width height>``: CVAT's row-major runs over the mask's box
(`frugalseg.interop.rle.cvat_decode`). CVAT for images lists ``<image id name width height>`` with
their shapes. A shape's ``<attribute name="frugalseg_kind">`` (frugalseg's own exports) sets its
label kind, and ``<attribute name="frugalseg_seconds">`` the annotation seconds of its label (the
store's cost ledger; shapes filled in between say nothing); a track's id + 1 is its instance id, an
image shape's is its attribute ``instance_id`` or its position in the image.

frugalseg writes a store's labels of one clip as masks, and what a person drew beside them: a
track of ``<box>`` shapes per object's boxes of a ``boxes`` label, a track of ``<points>`` shapes
per object's clicks of a ``clicks`` label (each at its pixel's centre) and one of ``<polyline>`` shapes
per line drawn on it (a scribble, its vertices as imported), of the kind they are. CVAT
has no tracks of masks (its importer keeps a mask track's first shape only), so each mask is a
track of its own, as CVAT writes a mask shape: the mask as a keyframe on its frame and an
``outside`` copy on the next frame, left out past the task's last frame; the object's id is its
``instance_id`` attribute. Each box, points or polyline shape is followed by an ``outside`` one where the next
frame holds none, so nothing is filled in between. Each shape that is not ``outside`` records its
label's seconds.
"""

from __future__ import annotations

import logging
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, SubElement, indent, tostring

import defusedxml.ElementTree as SafeET
import numpy as np

from frugalseg.autolabel.boxes import Box
from frugalseg.autolabel.clicks import Click
from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.io import write_bytes_atomic
from frugalseg.errors import ConfigError, DataError
from frugalseg.interop.registry import ToolFormat, register_reader, register_writer
from frugalseg.interop.rle import cvat_decode, cvat_encode
from frugalseg.interop.shapes import SECONDS_KEY, Frame, Shape, ToolExport, parse_points, parse_seconds
from frugalseg.interop.stored_frames import Scribble
from frugalseg.interop.tool_files import LIMIT_VARIABLE, check_tool_file, parse_xml, tool_file_limit

if TYPE_CHECKING:
    from frugalseg.interop.stored_frames import StoredFrame

    #: A click, box or line (polyline) under its object's or class's name.
    Drawn = tuple[str, Click | Box | Scribble]

#: CVAT for video 1.1 and CVAT for images 1.1, the XML inside the zip CVAT exports.
CVAT_VIDEO = ToolFormat("cvat-video", ".xml", "1.1")
CVAT_IMAGES = ToolFormat("cvat-images", ".xml", "1.1")

logger = logging.getLogger(__name__)

#: The file of a CVAT export zip that holds its annotations (either XML format).
ZIP_MEMBER = "annotations.xml"
KIND_ATTRIBUTE = "frugalseg_kind"
INSTANCE_ATTRIBUTE = "instance_id"
#: The most frames a CVAT task may claim (a hostile ``<size>`` would otherwise list billions).
MAX_FRAMES = 10**6
#: What XML 1.0 cannot hold, even escaped: C0 controls but tab, line feed and carriage return, lone
#: surrogates, U+FFFE and U+FFFF. `xml_text` writes U+FFFD in their place.
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SHAPES = ("box", "polygon", "polyline", "points", "mask")
_SKIPPED = ("tag", "ellipse", "cuboid", "skeleton")


def parse_cvat(path: Path) -> Any:
    """The root element of a CVAT XML file, or of the `ZIP_MEMBER` of the zip CVAT exports, parsed safely.

    The member is held to the tool file size limit (`frugalseg.interop.tool_files`) as a file is.
    """
    if not zipfile.is_zipfile(path):
        return parse_xml(path)
    check_tool_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if ZIP_MEMBER not in names:
                held = ", ".join(names[:5]) + (" …" if len(names) > 5 else "") if names else "nothing"
                raise DataError(
                    path, f"a CVAT export zip holds {ZIP_MEMBER} at its top; this one holds {held}"
                )
            size, limit = archive.getinfo(ZIP_MEMBER).file_size, tool_file_limit()
            if size > limit * 1e6:
                raise DataError(
                    path,
                    f"{ZIP_MEMBER}: {size / 1e6:.3g} MB is over the {limit:g} MB limit on tool files; raise "
                    f"it with {LIMIT_VARIABLE}={-(-size // 10**6)} or split the task",
                )
            data = archive.read(ZIP_MEMBER)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        raise DataError(path, f"a damaged zip ({err})") from err
    try:
        return SafeET.fromstring(data)
    except SafeET.ParseError as err:
        raise DataError(path, f"{ZIP_MEMBER}: not valid XML ({err})") from err
    except Exception as err:  # defusedxml's refusals (entities, DTDs) are not ParseErrors
        raise DataError(path, f"{ZIP_MEMBER}: refused XML ({type(err).__name__}: {err})") from err


def _number(el: Any, name: str, path: Path, element: str, kind: type = float) -> Any:
    """Attribute ``name`` of ``el`` as a number; `DataError` naming ``element`` when missing or not one."""
    text = el.get(name)
    try:
        return kind(float(text)) if kind is int else kind(text)
    except (TypeError, ValueError) as err:
        raise DataError(path, f"{element}: attribute {name}={text!r} is not a number") from err


def _whole(text: str, path: Path, where: str) -> int:
    """``text`` as a whole number (``40`` or ``40.0``); `DataError` naming ``where`` otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value.is_integer():
        raise DataError(path, f"{where}: {text!r} is not a whole number")
    return int(value)


def _size(width: str | None, height: str | None, path: Path, where: str) -> tuple[int, int] | None:
    """A frame size (H, W) from its ``width`` and ``height`` texts; None when either is missing."""
    if not (width and height):
        return None
    size = (_whole(height, path, f"{where} height"), _whole(width, path, f"{where} width"))
    if min(size) < 1:
        raise DataError(path, f"{where}: a frame of {size[1]}×{size[0]} pixels")
    return size


def _attributes(el: Any) -> dict[str, str]:
    return {a.get("name", ""): (a.text or "").strip() for a in el.findall("attribute")}


def _kind(attributes: dict[str, str], path: Path, element: str) -> LabelKind | None:
    value = attributes.get(KIND_ATTRIBUTE)
    if value is None:
        return None
    try:
        return LabelKind(value)
    except ValueError as err:
        known = ", ".join(k.value for k in LabelKind)
        raise DataError(path, f"{element}: {KIND_ATTRIBUTE} {value!r} is not a label kind ({known})") from err


def read_shape(el: Any, label: str, path: Path, element: str, size: tuple[int, int] | None) -> Shape:
    """One ``<box|polygon|polyline|points|mask>`` element as a `Shape`; a mask placed if ``size`` is given."""
    attributes = _attributes(el)
    z_order = int(_number(el, "z_order", path, element)) if el.get("z_order") else 0
    shape = Shape(el.tag, label, element, z_order=z_order, kind=_kind(attributes, path, element))
    shape.seconds = parse_seconds(attributes.get(SECONDS_KEY), path, element)
    if el.tag == "box":
        if float(_number(el, "rotation", path, element) if el.get("rotation") else 0) % 360:
            raise DataError(path, f"{element}: a box rotated by {el.get('rotation')}° is not a box")
        xtl, ytl, xbr, ybr = (_number(el, key, path, element) for key in ("xtl", "ytl", "xbr", "ybr"))
        if xbr < xtl or ybr < ytl:  # CVAT writes its top-left corner first, whichever way a box is drawn
            problem = (
                f"xbr={xbr:g} is left of xtl={xtl:g}" if xbr < xtl else f"ybr={ybr:g} is above ytl={ytl:g}"
            )
            raise DataError(path, f"{element}: {problem}")
        shape.points = np.asarray([xtl, ytl, xbr, ybr], np.float64).reshape(2, 2)
    elif el.tag == "mask":
        box, shape.window = _read_mask(el, path, element)
        shape.place = partial(place_box, box, shape.window[1], shape.window[0])
        if size is not None:
            shape.fit_frame(size)
    else:
        shape.points = parse_points(el.get("points", ""), path, element)
    return shape


def _read_mask(el: Any, path: Path, element: str) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A ``<mask>``'s box of pixels, its runs decoded and checked now, and the box (left, top, width, height).

    The box is placed in the frame (`place_box`) once the frame's size is known: the file's, else the
    size of the frame found on disk (`Shape.fit_frame`); it is checked inside the frame then
    (`Shape.window`).
    """
    left, top, width, height = (
        _number(el, k, path, element, int) for k in ("left", "top", "width", "height")
    )
    if not el.get("rle", "").strip():
        raise DataError(path, f"{element}: a mask without its rle (the runs of its box's pixels)")
    try:
        counts = [int(v) for v in el.get("rle", "").split(",")]
        box = cvat_decode(counts, width, height)
    except ValueError as err:
        raise DataError(path, f"{element}: mask rle: {err}") from err
    return box, (left, top, width, height)


def place_box(box: np.ndarray, top: int, left: int, size: tuple[int, int]) -> np.ndarray:
    """The frame-sized mask of a mask ``box`` whose corner is at (``top``, ``left``)."""
    mask = np.zeros(size, bool)
    mask[top : top + box.shape[0], left : left + box.shape[1]] = box
    return mask


def _task(root: Any) -> Any:
    """The element of the file's meta that describes its frames, or None.

    A task export's ``<task>``, a job export's ``<job>`` (CVAT 2), a project export's first task.
    """
    for where in ("meta/task", "meta/job", "meta/project/tasks/task"):
        task = root.find(where)
        if task is not None:
            return task
    return None


def task_frames(root: Any, path: Path) -> tuple[list[int], tuple[int, int] | None]:
    """The absolute frame numbers of a CVAT video task, and its frame size (H, W) if the file gives it.

    The size is the task's ``<original_size>``, or the one in ``<meta>`` (a job export's).
    """
    task = _task(root)
    if task is None:
        raise DataError(path, "no <meta><task> element: not a CVAT for video 1.1 file")
    start = _whole(task.findtext("start_frame", "0") or "0", path, "<start_frame>")
    stop_text = task.findtext("stop_frame")
    size_text = task.findtext("size")
    step_text = (task.findtext("frame_filter") or "").strip()
    step = (
        _whole(step_text.removeprefix("step="), path, "<frame_filter>")
        if step_text.startswith("step=")
        else 1
    )
    if step < 1:
        raise DataError(path, f"<frame_filter>{step_text}</frame_filter>: a step of at least 1 frame")
    if size_text:
        count = _whole(size_text, path, "<size>")
        if not 0 <= count <= MAX_FRAMES:
            raise DataError(path, f"<size>{size_text}</size>: a task holds 0…{MAX_FRAMES} frames")
        frames = [start + k * step for k in range(count)]
    elif stop_text:
        stop = _whole(stop_text, path, "<stop_frame>")
        if not 0 <= (stop - start) // step <= MAX_FRAMES:
            raise DataError(path, f"<stop_frame>{stop_text}</stop_frame>: a task holds 0…{MAX_FRAMES} frames")
        frames = list(range(start, stop + 1, step))
    else:
        raise DataError(path, "the task gives neither <size> nor <stop_frame>: its frames are unknown")
    width = task.findtext("original_size/width") or root.findtext("meta/original_size/width")
    height = task.findtext("original_size/height") or root.findtext("meta/original_size/height")
    return frames, _size(width, height, path, "<original_size>")  # a job export's is in <meta>


@register_reader(CVAT_VIDEO)
def read_cvat_video(path: str | Path) -> ToolExport:
    """Read a CVAT for video 1.1 XML file or CVAT's zip of it (tracks, any ``<image>`` shapes) into frames."""
    path = Path(path)
    root = parse_cvat(path)
    if root.tag != "annotations":
        raise DataError(path, f"root element <{root.tag}>, expected <annotations>: not a CVAT XML file")
    frames, size = task_frames(root, path)
    by_frame: dict[int, Frame] = {f: Frame(f, size, element=f"frame {f}") for f in frames}
    seen: set[int] = set()
    for track in root.iter("track"):
        track_id = int(_number(track, "id", path, "a <track>"))
        if track_id in seen:
            raise DataError(
                path, f"two tracks have the id {track_id}: a track is one object, give each its own"
            )
        seen.add(track_id)
        for frame_number, shape in _track_shapes(track, track_id, frames, size, path):
            if frame_number not in by_frame:
                raise DataError(
                    path,
                    f"track {track_id}: frame {frame_number} is not a frame of the task "
                    f"({frames[0]}…{frames[-1]} every {frames[1] - frames[0] if len(frames) > 1 else 1})",
                )
            by_frame[frame_number].shapes.append(shape)
    for image in root.iter("image"):
        number = int(_number(image, "id", path, "an <image>"))
        frame = by_frame.setdefault(number, Frame(number, size, element=f"frame {number}"))
        frame.shapes += _image_shapes(image, path, f"image {number}", size)
    task = _task(root)
    return ToolExport(
        path,
        "cvat-video",
        [f for f in by_frame.values() if f.shapes],
        _label_names(task),
        video=_video(root, task),
        numbers=_numbers(frames),
    )


def _video(root: Any, task: Any) -> str | None:
    """The video a task is of: ``<meta><source>``, or the task's ``<source>`` (CVAT 2), else its name."""
    return root.findtext("meta/source") or task.findtext("source") or task.findtext("name") or None


def _numbers(frames: list[int]) -> range | None:
    """The task's frame numbers (`task_frames`, ``start_frame + k · step``) as a range; None for no frame."""
    if not frames:
        return None
    step = frames[1] - frames[0] if len(frames) > 1 else 1
    return range(frames[0], frames[-1] + 1, max(step, 1))


def _label_names(task: Any) -> tuple[str, ...]:
    if task is None:
        return ()
    return tuple(label.findtext("name", "") for label in task.iter("label"))


def _track_shapes(
    track: Any, track_id: int, frames: list[int], size: tuple[int, int] | None, path: Path
) -> Iterable[tuple[int, Shape]]:
    """Every (frame, shape) of a track on the task's ``frames``, filled in between its listed shapes.

    A mask is given on its own frame only (module docstring).
    """
    label = track.get("label", "")
    listed: list[tuple[int, bool, Shape]] = []
    for el in track:
        if el.tag not in _SHAPES:
            continue
        number = int(_number(el, "frame", path, f"track {track_id}"))
        element = f"track {track_id} (frame {number})"
        shape = read_shape(el, label, path, element, size)
        shape.instance_id = _instance(_attributes(el), track_id + 1)
        listed.append((number, el.get("outside") == "1", shape))
    listed.sort(key=lambda item: item[0])
    for k, (number, outside, shape) in enumerate(listed):
        if outside:
            continue
        yield number, shape
        if shape.type == "mask":  # on its frame alone (module docstring)
            continue
        following = listed[k + 1] if k + 1 < len(listed) else None
        end = following[0] if following else frames[-1] + 1
        for between in (f for f in frames if number < f < end):
            yield between, _between(shape, following, number, between)


def _between(shape: Shape, following: tuple[int, bool, Shape] | None, start: int, frame: int) -> Shape:
    """The shape of a track at ``frame``, after its listed ``shape`` at ``start`` (CVAT's interpolation)."""
    element = f"{shape.element.split(' (')[0]} (frame {frame}, interpolated)"
    moved = replace(shape, element=element, seconds=None)  # its label's seconds are its keyframe's
    if following is None or following[1] or shape.points is None:
        return moved
    end, _, target = following
    if target.type != shape.type or target.points is None or target.points.shape != shape.points.shape:
        return moved
    offset = (frame - start) / (end - start)
    moved.points = shape.points + (target.points - shape.points) * offset
    return moved


def _instance(attributes: dict[str, str], default: int) -> int | None:
    """A shape's ``instance_id`` attribute (empty: none), else ``default``."""
    if INSTANCE_ATTRIBUTE not in attributes:
        return default
    value = attributes[INSTANCE_ATTRIBUTE]
    return int(value) if value.isdigit() else None


def _image_shapes(image: Any, path: Path, element: str, size: tuple[int, int] | None) -> list[Shape]:
    """The shapes of one ``<image>``; instance ids from ``instance_id`` attributes, else their position."""
    shapes = []
    for position, el in enumerate(image, start=1):
        if el.tag in _SKIPPED:
            logger.warning("%s: %s: a <%s> is not read (no label kind holds it)", path, element, el.tag)
            continue
        if el.tag not in _SHAPES:
            continue
        shape = read_shape(el, el.get("label", ""), path, f"{element} {el.tag} {position}", size)
        shape.instance_id = _instance(_attributes(el), position)
        shapes.append(shape)
    return shapes


@register_reader(CVAT_IMAGES)
def read_cvat_images(path: str | Path) -> ToolExport:
    """Read a CVAT for images 1.1 XML file or CVAT's zip of it: a frame per ``<image>``, keyed by its name."""
    path = Path(path)
    root = parse_cvat(path)
    if root.tag != "annotations":
        raise DataError(path, f"root element <{root.tag}>, expected <annotations>: not a CVAT XML file")
    frames = []
    for image in root.iter("image"):
        name = image.get("name")
        if not name:
            raise DataError(path, f"<image id={image.get('id')!r}> has no name")
        element = f"image {image.get('id')} ({name})"
        size = _size(image.get("width"), image.get("height"), path, element)
        key = f"{image.get('subset')}/{name}" if image.get("subset") else name
        frames.append(Frame(key, size, _image_shapes(image, path, element, size), element))
    meta = root.find("meta/task")
    return ToolExport(
        path, "cvat-images", frames, _label_names(meta if meta is not None else root.find("meta"))
    )


def xml_text(text: str) -> str:
    """``text`` with each character XML 1.0 cannot hold (`NOT_XML`) replaced by U+FFFD, so the file parses.

    The entries refuse such names; this keeps any that reach a writer (an older session, a store
    written by a script) from making a file no tool can open.
    """
    return NOT_XML.sub("\ufffd", text)


def write_cvat_video(
    path: str | Path,
    frames: list[tuple[int, list[tuple[LabelKind, str, int | None, np.ndarray]]]],
    *,
    size: tuple[int, int],
    labels: list[str],
    name: str,
    frame_count: int,
    marks: list[tuple[int, list[Drawn]]] = (),  # type: ignore[assignment]
    seconds: dict[tuple[int, LabelKind], float] | None = None,
) -> None:
    """Write CVAT for video 1.1 XML: one track per mask of ``frames``, as CVAT writes a mask shape.

    ``frames`` holds, per video frame number, its (kind, class name, instance id, mask) objects; each
    mask is a track of its own (CVAT keeps a mask track's first shape only): a keyframe on its frame
    and an ``outside`` copy on the next frame of the video, so the track shows nowhere else. ``marks``
    holds, per video frame number, its clicks and boxes (module docstring); their names join ``labels``.
    ``seconds`` holds the annotation seconds of the label of each (frame number, kind), recorded on its
    shapes. Names and labels are written with `xml_text`.
    """
    seconds = seconds or {}
    labels = list(dict.fromkeys([*labels, *(label for _, drawn in marks for label, _ in drawn)]))
    root = Element("annotations")
    SubElement(root, "version").text = "1.1"
    task = SubElement(SubElement(root, "meta"), "task")
    meta = {"name": xml_text(name), "size": frame_count, "mode": "interpolation", "start_frame": 0}
    for key, value in {**meta, "stop_frame": frame_count - 1, "frame_filter": ""}.items():
        SubElement(task, key).text = str(value)
    label_list = SubElement(task, "labels")
    for label in dict.fromkeys(map(xml_text, labels)):
        SubElement(SubElement(label_list, "label"), "name").text = label
    original = SubElement(task, "original_size")
    SubElement(original, "width").text = str(size[1])
    SubElement(original, "height").text = str(size[0])
    masks = _mask_shapes(frames)
    for track_id, (number, kind, label, instance, mask) in enumerate(masks):
        track = SubElement(root, "track", id=str(track_id), label=xml_text(label))
        _write_mask_track(track, number, kind, instance, mask, frame_count, seconds.get((number, kind)))
    for track_id, ((kind, label, instance, _), drawn) in enumerate(_mark_tracks(marks).items(), len(masks)):
        track = SubElement(root, "track", id=str(track_id), label=xml_text(label))
        _write_mark_track(track, kind, instance, drawn, frame_count, seconds)
    indent(root)
    write_bytes_atomic(path, tostring(root, "utf-8", xml_declaration=True) + b"\n")


def cvat_sorting_note(clip: Clip) -> str | None:
    """What to tell a person whose frame files CVAT's default sorting would put in another order, or None.

    A CVAT for video file numbers frames by place: a task made from ``img1.jpg … img12.jpg`` with CVAT's
    default (lexicographical) sorting holds img10 as its frame 1, where the clip has img2. A video file's
    frames, and names that sort alike both ways (``00001.jpg``), need nothing.
    """
    names = [frame.name for frame in clip.frames]
    as_text = sorted(names)
    if clip.frames[0].parent.is_file() or names == as_text:
        return None
    first = next(i for i, (name, text) in enumerate(zip(names, as_text, strict=True)) if name != text)
    return (
        f"the frames of {clip.clip_id} are in another order when sorted as text, CVAT's default (its frame "
        f"{first} is {names[first]}, as text {as_text[first]}): create its CVAT task with Sorting method "
        "'Natural', or its frame numbers are other frames"
    )


@register_writer(CVAT_VIDEO, per_clip=True)
def write_cvat_video_frames(path: Path, frames: list[StoredFrame], classes: list[str]) -> None:
    """Write a label store's ``frames`` of one clip as CVAT for video XML (`write_cvat_video`).

    Raises:
        ConfigError: the frames are of several clips.
    """
    clips = {f.clip.clip_id for f in frames}
    if len(clips) != 1:
        raise ConfigError(
            "--clip",
            f"CVAT for video holds one video; the store has clips {', '.join(sorted(clips))}: name one",
        )
    clip = frames[0].clip
    note = cvat_sorting_note(clip)
    if note:
        logger.warning("%s: %s", path, note)
    numbers = [(f.clip.anchor_index + f.offset, f.tool_objects(polylines=True)) for f in frames]
    marks: list[tuple[int, list[Drawn]]] = [
        (f.clip.anchor_index + f.offset, [*f.marks(polylines=True), *f.lines()]) for f in frames
    ]
    seconds = {(f.clip.anchor_index + f.offset, kind): s for f in frames for kind, s in f.seconds.items()}
    write_cvat_video(path, numbers, size=frames[0].size, labels=classes, name=clip.clip_id,
                     frame_count=len(clip.frames), marks=marks, seconds=seconds)  # fmt: skip


def _mark_tracks(
    marks: Iterable[tuple[int, list[Drawn]]],
) -> dict[tuple[LabelKind, str, int | None, int], dict[int, list[Click | Box | Scribble]]]:
    """The tracks of clicks, lines and boxes, by frame number: one per (kind, name, instance, k).

    A track holds one shape a frame: all of an object's clicks on it (k = 0), its k-th line, or its
    k-th box.
    """
    tracks: dict[tuple[LabelKind, str, int | None, int], dict[int, list[Click | Box | Scribble]]] = {}
    for number, drawn in marks:
        counts: dict[tuple[LabelKind, str, int | None], int] = {}
        for label, mark in drawn:
            kind = LabelKind.BOXES if isinstance(mark, Box) else LabelKind.CLICKS
            k = 0
            if not isinstance(mark, Click):  # a box or a line: one a track (lines after the clicks' k = 0)
                k = counts[kind, label, mark.instance_id] = (
                    counts.get((kind, label, mark.instance_id), -1) + 1
                )
                k += kind is LabelKind.CLICKS
            tracks.setdefault((kind, label, mark.instance_id, k), {}).setdefault(number, []).append(mark)
    return tracks


def _write_mark_track(
    track: Element,
    kind: LabelKind,
    instance: int | None,
    drawn: dict[int, list[Click | Box | Scribble]],
    frame_count: int,
    seconds: dict[tuple[int, LabelKind], float],
) -> None:
    """One track of `_mark_tracks`: ``<points>`` (a frame's clicks), ``<polyline>`` or ``<box>`` shapes.

    Each shape is followed by an ``outside`` copy on the next frame when that frame holds none.
    """
    for number in sorted(drawn):
        first = drawn[number][0]
        element = "box" if isinstance(first, Box) else "points" if isinstance(first, Click) else "polyline"
        for outside in (False, True):
            if outside and (number + 1 in drawn or number + 1 >= frame_count):
                continue
            el = SubElement(track, element, frame=str(number + outside))
            for key, value in _mark_coordinates(drawn[number]).items():
                el.set(key, value)
            top = (
                "1" if element == "points" else "0"
            )  # clicks over lines, as a store draws them (`_given_marks`)
            flags = {"outside": str(int(outside)), "occluded": "0", "keyframe": "1", "z_order": top}
            for key, value in flags.items():
                el.set(key, value)
            SubElement(el, "attribute", name=KIND_ATTRIBUTE).text = kind.value
            identity = "" if instance is None else str(instance)
            SubElement(el, "attribute", name=INSTANCE_ATTRIBUTE).text = identity
            _seconds_attribute(el, None if outside else seconds.get((number, kind)))


def _seconds_attribute(el: Element, seconds: float | None) -> None:
    """A shape's ``frugalseg_seconds`` attribute: its label's annotation seconds, where known."""
    if seconds is not None:
        SubElement(el, "attribute", name=SECONDS_KEY).text = repr(float(seconds))


def _mark_coordinates(marks: list[Click | Box | Scribble]) -> dict[str, str]:
    """The coordinates of a ``<points>`` shape of clicks (pixel centres), a ``<polyline>`` or a ``<box>``."""
    clicks = [m for m in marks if isinstance(m, Click)]
    if clicks:
        return {"points": ";".join(f"{c.x + 0.5:g},{c.y + 0.5:g}" for c in clicks)}
    (mark,) = marks
    if isinstance(mark, Scribble):
        return {"points": ";".join(f"{x!r},{y!r}" for x, y in mark.points)}
    assert isinstance(mark, Box)
    return {"xtl": str(mark.x0), "ytl": str(mark.y0), "xbr": str(mark.x1), "ybr": str(mark.y1)}


def _mask_shapes(
    frames: list[tuple[int, list[tuple[LabelKind, str, int | None, np.ndarray]]]],
) -> list[tuple[int, LabelKind, str, int | None, np.ndarray]]:
    """Every (frame number, kind, label, instance, mask) of ``frames``, by frame, in each frame's order."""
    return [(number, *obj) for number, objects in sorted(frames, key=lambda item: item[0]) for obj in objects]


def _write_mask_track(
    track: Element,
    number: int,
    kind: LabelKind,
    instance: int | None,
    mask: np.ndarray,
    frame_count: int,
    seconds: float | None,
) -> None:
    """One mask as CVAT dumps a mask shape: a keyframe on its frame, an ``outside`` copy on the next.

    The copy is left out when it would pass the task's last frame (``frame_count`` − 1).
    """
    rows, cols = np.nonzero(mask)
    top, left = int(rows.min()), int(cols.min())
    box = mask[top : int(rows.max()) + 1, left : int(cols.max()) + 1]
    _mask_element(track, number, False, box, top, left, kind, instance, seconds)
    if number + 1 < frame_count:
        _mask_element(track, number + 1, True, box, top, left, kind, instance, None)


def _mask_element(
    track: Element,
    frame: int,
    outside: bool,
    box: np.ndarray,
    top: int,
    left: int,
    kind: LabelKind,
    instance: int | None,
    seconds: float | None,
) -> None:
    """One ``<mask>`` of a track: the runs of ``box`` at (``top``, ``left``), and frugalseg's attributes."""
    el = SubElement(
        track, "mask", frame=str(frame), outside=str(int(outside)), occluded="0", keyframe="1",
        rle=", ".join(map(str, cvat_encode(box))), left=str(left), top=str(top),
        width=str(box.shape[1]), height=str(box.shape[0]), z_order="0",
    )  # fmt: skip
    SubElement(el, "attribute", name=KIND_ATTRIBUTE).text = kind.value
    SubElement(el, "attribute", name=INSTANCE_ATTRIBUTE).text = "" if instance is None else str(instance)
    _seconds_attribute(el, seconds)
