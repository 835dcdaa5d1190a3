"""A tool's export → a label store of a data set (the way back: `frugalseg.interop.stored_frames`).

Import: each annotated frame of the export is found among the clips of the data set's split —
an image by its file name (the longest matching tail of the frame's path: ``car-shadow/00005.jpg``
tells DAVIS sequences apart; the extension may differ, as CVAT's mask exports rename frames to
``.png``), a video frame by its number in the clip (``--clip``, or the clip named like the task's
video, or the split's only clip). Only the data set's frames are read, never its labels: a root of
frames alone (what the annotation page served) takes an import. Pixels of a ``fine`` or ``pseudo``
label that no shape covers are the data set's ``background`` class, where it has one (DAVIS, MOSE,
video) and the frame's shapes of that kind do not draw it themselves (a file that draws the
background says where it is; the rest is unlabelled); elsewhere 255 (ignore), unless
``background`` names the class (or ``ignore``). Every frame and shape is checked first (frame inside the clip,
size, shapes inside the frame, every label mapped to a class), so bad input writes nothing; then
a frame a person annotated as holding nothing (`Frame.empty`) is a ``fine`` (or ``--kind``) label
of the background class alone, where the data set has one (or ``background`` names it), else left
out with a warning; each frame's label of each kind is written to the store (`LabelStore.write`,
engine ``import``, with the annotation seconds the file records for it, `label_seconds`; 0 where it
records none), with its side files: ``{stem}_{kind}_instanceIds.png`` (instance ids, where shapes have
them), ``{stem}_clicks.json`` (clicks and scribbles) and ``{stem}_boxes.json`` (boxes), in the
forms `frugalseg.autolabel.clicks` and `frugalseg.autolabel.boxes` read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np

from frugalseg.autolabel.boxes import Box, BoxResult, box_of, boxes_json, boxes_json_path
from frugalseg.autolabel.clicks import Click, clicks_json, clicks_json_path
from frugalseg.autolabel.runs import run_config
from frugalseg.autolabel.store import LabelStore, instances_path
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.data.formats import Format
from frugalseg.data.io import (
    encode_png,
    image_size,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
)
from frugalseg.data.videos import VIDEO_EXTENSIONS
from frugalseg.errors import ConfigError, DataError
from frugalseg.interop.cvat import cvat_sorting_note
from frugalseg.interop.raster import (
    BACKGROUND_KINDS,
    DENSE_KINDS,
    OBJECT_CLASSES,
    ClassMapping,
    FrameLabel,
    check_shape,
    rasterize,
    shape_kind,
)
from frugalseg.interop.shapes import Frame, Shape, ToolExport
from frugalseg.interop.stored_frames import regions

logger = logging.getLogger(__name__)

ENGINE = "import"


class FrameIndex:
    """Finds the (clip, offset) of an exported frame among the clips of a split.

    Args:
        clips: the split's clips.
    """

    def __init__(self, clips: Sequence[Clip]) -> None:
        self.clips = list(clips)
        self._clip_ids = {clip.clip_id for clip in self.clips}
        self._numbered: set[str] = set()  # the clips whose frames were found by number (`by_number`)
        self._tails: dict[tuple[str, ...], list[tuple[Clip, int]]] = {}
        for clip in self.clips:
            for offset in clip.present_offsets:
                parts = PurePosixPath(clip.frame_path(offset).as_posix()).parts
                for depth in range(1, len(parts) + 1):
                    self._tails.setdefault(_stemmed(parts[-depth:]), []).append((clip, offset))
        #: A frame's name as Label Studio saves its upload (``shot 03`` → ``shot_03``) → the frame's own
        self._uploaded: dict[str, str | None] = {}
        for stem, *more in list(self._tails):
            if not more and (saved := _upload_name(stem)) != stem:
                self._uploaded[saved] = None if saved in self._uploaded else stem  # None: two frames

    def by_name(self, name: str, path: Path, element: str, clip_id: str | None = None) -> tuple[Clip, int]:
        """The frame named ``name`` (a file name or relative path; extension ignored).

        The longest tail of ``name`` that names frames decides (a tool may add folders of its own,
        such as CVAT's subsets); among several frames, the one that anchors its clip. A name that
        names no frame but is CVAT's name of a video task's frame N (``frame_000042.PNG``) is
        frame N of clip ``clip_id``, or of the split's only clip.
        """
        parts = _stemmed(PurePosixPath(name.replace("\\", "/")).parts)
        depth = next((d for d in range(len(parts), 0, -1) if parts[-d:] in self._tails), 0)
        if depth == 0 and len(parts) == 1 and (own := self._uploaded.get(parts[0])):
            parts, depth = (own,), 1
        if depth == 0:
            number = CVAT_FRAME.fullmatch(parts[-1]) if parts else None
            if number is None:
                named = sorted({clip.split for clip in self.clips})
                other = ", or another split's: give --split" if named != ["all"] else ""
                where = f" in split {', '.join(map(repr, named))}" if named else ""
                where += f" (the file is of another video's or data set's frames{other})"
                raise DataError(path, f"{element}: no frame of the data set is named {name!r}{where}")
            return _in_clip(int(number[1]), self.clip(clip_id, None, path), path, element)
        found = self._tails[parts[-depth:]]
        if depth == 1 and len(parts) > 1:
            found = self._in_folder(found, parts[-2], parts[:-2], name, path, element)
        if clip_id is not None and len(found) > 1:  # ``--clip``: a name of several clips' frames, its clip's
            chosen = self.clip(clip_id, None, path).clip_id
            found = [(clip, offset) for clip, offset in found if clip.clip_id == chosen]
            if not found:
                raise DataError(path, f"{element}: clip {chosen} (--clip) has no frame named {name!r}")
        anchors = [(clip, offset) for clip, offset in found if offset == 0]
        candidates = anchors if len(found) > 1 and len(anchors) == 1 else found
        if len(candidates) > 1:
            where = ", ".join(str(clip.frame_path(offset)) for clip, offset in candidates[:4])
            problem = "names several frames" if depth == len(parts) else "is no frame; its file name matches"
            several = len({clip.clip_id for clip, _ in candidates}) > 1
            how = "name it with its folder" + (
                ", or give the clip its frames are of as --clip" if several else ""
            )
            raise DataError(path, f"{element}: {name!r} {problem} {where}: {how}")
        return candidates[0]

    def _in_folder(
        self,
        found: list[tuple[Clip, int]],
        folder: str,
        above: tuple[str, ...],
        name: str,
        path: Path,
        element: str,
    ) -> list[tuple[Clip, int]]:
        """The frames ``found`` by a file name alone whose clip its ``folder`` may be; refused when none.

        A tool may keep a frame in a folder of its own (a subset, ``images/``), so a folder that names
        nothing is no clip. One that does is: a clip of the split (``car-shadow/00009.jpg`` on
        ``car-shadow.mp4``'s frames is its frame 9), a video file (``blackswan.mp4/00009``, frugalseg's
        name of a video's frame), or a sequence of a DAVIS-style tree (``JPEGImages/480p/blackswan/…``):
        a frame of another clip than those ``found`` is a `DataError` naming its path and that clip,
        never taken for ours. Uploads are named by their file name alone (`label_studio.image_name`).
        """
        video = Path(folder).suffix.lower() in VIDEO_EXTENSIONS
        stem = Path(folder).stem if video else folder
        ours = [(clip, offset) for clip, offset in found if clip.clip_id == stem]
        if ours:
            return ours
        named = next((clip for clip in self.clips if clip.clip_id == stem), None)
        if named is not None:
            offsets = named.present_offsets
            first, last = (named.frame_path(offset).name for offset in (offsets[0], offsets[-1]))
            raise DataError(
                path,
                f"{element}: {name!r}: clip {stem} holds no frame {PurePosixPath(name).name} (its frames: "
                f"{first}…{last})",
            )
        if not video and "JPEGImages" not in above:
            return found
        clips = " or ".join(dict.fromkeys(clip.clip_id for clip, _ in found))
        raise DataError(
            path,
            f"{element}: {name!r} is a frame of {stem}, not of clip {clips} (only its file name matches "
            f"{found[0][0].frame_path(found[0][1])})",
        )

    def match(self, name: str) -> str:
        """How ``name`` names frames: ``whole`` (by its whole path), ``part`` (a shorter tail), ``none``.

        A name whose folder is a clip of the index (``car-shadow/00045.jpg``) is ``whole`` too: a frame
        that clip lacks is an error of its own (`by_name`), not a frame of a clip the data set does not hold.
        """
        parts = _stemmed(PurePosixPath(name.replace("\\", "/")).parts)
        if parts in self._tails or (len(parts) > 1 and Path(parts[-2]).stem in self._clip_ids):
            return "whole"
        return "part" if any(parts[-d:] in self._tails for d in range(1, len(parts))) else "none"

    def by_number(
        self, frame: Frame, clip_id: str | None, video: str | None, path: Path, numbers: range | None = None
    ) -> tuple[Clip, int] | None:
        """Frame ``frame.key`` of the clip `clip` finds for ``frame.video``, else for ``video``.

        A frame past the clip's end is an error naming the tracks (or images) drawn on it; None
        for a `Frame.held` one. A CVAT video task's frame N (its frame ``numbers``) is the clip's
        frame named ``frame_N`` when the clip's frames are named so, each a frame of the task (CVAT's
        export of the task with its images: `named_numbers`); else the clip's N-th frame.
        """
        clip = self.clip(clip_id, frame.video or video, path, frame.element if frame.video else None)
        if frame.held and int(frame.key) >= len(clip.frames):
            return None
        owners = ", ".join(dict.fromkeys(shape.element.split(" (")[0] for shape in frame.shapes))
        element = f"frame {frame.key} ({owners})"
        named = named_numbers(clip, numbers)
        if named is not None:
            if int(frame.key) not in named:
                first, last = min(named), max(named)
                raise DataError(
                    path,
                    f"{element}: clip {clip.clip_id} holds no frame_{int(frame.key):06d} "
                    f"(its {len(named)} frames are named frame_{first:06d}…frame_{last:06d})",
                )
            return _in_clip(named[int(frame.key)], clip, path, element)
        note = cvat_sorting_note(clip) if clip.clip_id not in self._numbered else None
        self._numbered.add(clip.clip_id)
        if note:
            logger.warning("%s: %s", path, note)
        return _in_clip(int(frame.key), clip, path, element)

    def clip(self, clip_id: str | None, video: str | None, path: Path, element: str | None = None) -> Clip:
        """The clip a video export is of: ``clip_id``, else the clip named like ``video``, else the only clip.

        The only clip is taken for a file that names no video: one that names another (an export of
        blackswan on car-shadow's frames) is refused unless ``clip_id`` names it. A ``video`` that
        names no clip is a `DataError` naming ``element`` (a task of a file holding several videos)
        when given, else a `ConfigError` of ``--clip``.
        """
        ids = [clip.clip_id for clip in self.clips]
        wanted = clip_id or (Path(video).stem if video else None)
        for clip in self.clips:
            if clip.clip_id in (wanted, clip_id or video) or (wanted is None and len(self.clips) == 1):
                return clip
        listed = ", ".join(ids[:10]) + (" …" if len(ids) > 10 else "")
        if element is not None and clip_id is None:
            raise DataError(
                path,
                f"{element}: its video {video!r} is no clip of the split ({listed}): a video task must "
                "name a clip's video file (car-shadow.mp4 for clip car-shadow), or --clip must name the clip",
            )
        if clip_id is None and len(self.clips) == 1:  # the only clip, not the one the file names
            raise ConfigError(
                "--clip",
                f"{path} is of video {video!r}, not of clip {ids[0]}, the only clip of the data set: "
                f"import it where {wanted} is, or give --clip {shlex.quote(ids[0])} if it is of {ids[0]}",
            )
        asked = f"asked {wanted!r}" if wanted else "the file names no video"
        raise ConfigError(
            "--clip", f"{path}: the video's clip is not known ({asked}); the split's clips: {listed}"
        )


def named_numbers(clip: Clip, numbers: range | None) -> dict[int, int] | None:
    """Frame number → the clip's frame index, for a clip whose frames are CVAT's of a video task.

    That is, every frame is named ``frame_N`` (`CVAT_FRAME`) with N one of the task's ``numbers``,
    and the names are not the frames' own indices (where numbering by name or place is the same);
    else None. frugalseg's own CVAT files number a clip's frames by place from 0, which such names
    never all are.
    """
    if numbers is None:
        return None
    named: dict[int, int] = {}
    for index, frame in enumerate(clip.frames):
        match = CVAT_FRAME.fullmatch(PurePosixPath(frame.name).stem)
        if match is None or int(match[1]) not in numbers:
            return None
        named[int(match[1])] = index
    return None if all(number == index for number, index in named.items()) else named


def _in_clip(number: int, clip: Clip, path: Path, element: str) -> tuple[Clip, int]:
    """(clip, offset) of frame ``number`` of ``clip``; out of it, a `DataError` naming ``element``."""
    if not 0 <= number < len(clip.frames):
        last, where = len(clip.frames) - 1, "a negative frame number in" if number < 0 else "past the end of"
        raise DataError(path, f"{element}: {where} clip {clip.clip_id} (frames 0…{last})")
    return clip, number - clip.anchor_index


#: CVAT's name of frame N of a video task in its image-based exports (``frame_000042.PNG``), stem only.
CVAT_FRAME = re.compile(r"frame_(\d{6,})")


def _upload_name(name: str) -> str:
    """``name`` as Label Studio saves an uploaded file (Django's ``get_valid_filename``).

    Spaces become ``_``; characters other than letters, digits, ``-``, ``_`` and ``.`` are dropped.
    """
    return re.sub(r"(?u)[^-\w.]", "", name.strip().replace(" ", "_"))


def _stemmed(parts: Sequence[str]) -> tuple[str, ...]:
    """Path parts in Unicode's composed form (NFC), the last one's extension dropped.

    Frames are matched without it, and a name macOS wrote decomposed (NFD: ``u`` + U+0308 for ``ü``)
    is the frame a Linux file system holds composed.
    """
    parts = [unicodedata.normalize("NFC", part) for part in parts]
    return (*parts[:-1], PurePosixPath(parts[-1]).stem) if parts else ()


@dataclass
class ImportSummary:
    """What an import did: frames read, labels written per kind, labels already in the store, frames left out.

    ``left_out`` names the frames of the file that are not the data set's (`import_export`).
    """

    frames: int
    written: dict[str, int]
    skipped: int
    left_out: list[str] = field(default_factory=list)


def import_export(
    export: ToolExport,
    fmt: Format,
    split: str,
    store: LabelStore,
    mapping: ClassMapping,
    *,
    dense_kind: LabelKind = LabelKind.FINE,
    background: str | None = None,
    clip: str | None = None,
) -> ImportSummary:
    """Write the labels of ``export`` into ``store`` as labels of the clips of ``split`` (module docstring).

    Raises:
        DataError: an export without shapes, or a frame, shape or label name of it that cannot be placed
            (nothing is written); shapes that make no label (all mapped to ignore): no empty store.
        ConfigError: a video export whose clip cannot be told.
    """
    if not export.frames:
        raise DataError(export.path, f"holds no shapes to import (read as {export.tool})")
    index = FrameIndex(fmt.clips(split, labelled=False))
    used = tuple(dict.fromkeys(s.label for frame in export.frames for s in frame.shapes if not s.ignored))
    background_id = background_class(background, mapping, export.path, used)
    left_out = _others(export, index)
    kept = [frame for frame in export.frames if frame.element not in left_out]
    placing = (index, mapping, clip, used, dense_kind, background_id)
    found = [(frame, _place(frame, export, *placing)) for frame in kept]
    frames = [frame for frame, place in found if place is not None]
    placed = [place for _, place in found if place is not None]
    _check_unique(frames, placed, export)
    settings = {"tool": export.tool, "file": str(export.path.resolve()),
                "sha256": tool_file_sha256(export.path), "mapping": mapping.describe(),
                "dense_kind": dense_kind.value, "background": background, "clip": clip}  # fmt: skip
    _check_same_content(store, settings, export.path)
    written: dict[str, int] = {}
    skipped = 0
    names = object_names(frames, placed, mapping)
    config = {**run_config(fmt, split, ENGINE, settings), **({"object_names": names} if names else {})}
    # a file of objects gives a frame without any its instance map too (all 0): `annotate add --mask` takes it
    of_objects = any(shape.instance_id is not None for frame in frames for shape in frame.shapes)
    with store.run(config, all_or_nothing=True):
        for frame, (target, offset, size, train_ids) in zip(frames, placed, strict=True):
            kinds = _filled_kinds(frame, train_ids, dense_kind, background_id, background is not None,
                                  void=export.uncovered_void)  # fmt: skip
            labels = rasterize(frame, size, train_ids, dense_kind=dense_kind, background=background_id,
                               background_kinds=kinds)  # fmt: skip
            # a label of only shapes mapped to ignore has nothing to learn
            labels = {k: made for k, made in labels.items() if not (made.label == IGNORE_INDEX).all()}
            if frame.empty and background_id is not None:  # "nothing here": all background
                none = np.zeros(size, np.uint16) if of_objects else None
                labels = {dense_kind: FrameLabel(np.full(size, background_id, np.uint8), none)}
            elif frame.empty:
                logger.warning("%s: %s left out: its annotation holds no region, and no class is the "
                               "background (give --background)", export.path, frame.element)  # fmt: skip
            seconds = label_seconds(frame, tuple(labels), dense_kind)
            for kind, made in labels.items():
                if store.has(target.clip_id, offset, kind, split=target.split):
                    skipped += 1
                    continue
                _write(store, target, offset, kind, made, settings, seconds.get(kind, 0.0))
                written[kind.value] = written.get(kind.value, 0) + 1
        if not written and not skipped:  # not an empty store
            raise DataError(export.path, f"no labels to import: {_why_none(frames, placed)}")
    return ImportSummary(len(frames), written, skipped, left_out)


def object_names(
    frames: Sequence[Frame],
    placed: Sequence[tuple[Clip, int, tuple[int, int], list[int]]],
    mapping: ClassMapping,
) -> dict[str, dict[str, str]]:
    """Clip → object id → the tool's name of it, where an object data set maps that name to ``object``.

    Recorded as the store's ``object_names``, as an annotation session's export records the names a
    person gave, so `label export` of the imported store names each object as the tool did.
    """
    if mapping.classes != OBJECT_CLASSES:
        return {}
    classes = {name.lower() for name in mapping.classes} | {name.lower() for name in mapping.names}
    names: dict[str, dict[str, str]] = {}
    for frame, (clip, _, _, _) in zip(frames, placed, strict=True):
        for shape in frame.shapes:
            named = shape.instance_id is not None and not (shape.ignored or shape.negative)
            if named and shape.label and shape.label.lower() not in classes:
                names.setdefault(clip.clip_id, {})[str(shape.instance_id)] = shape.label
    return names


def tool_file_sha256(path: Path) -> str | None:
    """The sha256 of a tool file's bytes; of a folder (mask, labelme exports), of its files' paths and bytes.

    None for a path that is neither (an export made in memory).
    """
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        name = item.relative_to(path).as_posix().encode("utf-8", "surrogateescape")
        digest.update(b"%d:%s%d:" % (len(name), name, item.stat().st_size))
        digest.update(item.read_bytes())
    return digest.hexdigest()


def _check_same_content(store: LabelStore, settings: dict[str, Any], path: Path) -> None:
    """Refuse a tool file that changed since it was imported into ``store`` (`DataError` naming both).

    A store resumes an import: it skips the labels it holds. A file edited since (an object redrawn)
    would keep its old labels there, so the store records the file's `tool_file_sha256` and the same
    file of other content is refused, never mixed with what it held then. Other differences of the
    settings are the store's own refusal (`LabelStore.open_run`).
    """
    try:
        stored = json.loads(store.run_path.read_text(encoding="utf-8")).get("settings")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return  # no store yet, or one the store's own check refuses
    if not isinstance(stored, dict) or stored.get("file") != settings["file"]:
        return
    then, now = stored.get("sha256"), settings["sha256"]
    if then == now:
        return
    what = f"sha256 {str(then)[:12]}… then, {str(now)[:12]}… now" if then else "its content not recorded then"
    raise DataError(
        path,
        f"changed since it was imported into {store.root} ({what}); that store keeps what the file held "
        "then: give a new --out to import the file as it is now",
    )


def _why_none(frames: list[Frame], placed: list[tuple[Clip, int, tuple[int, int], list[int]]]) -> str:
    """Why the shapes of ``frames`` make no label."""
    if not frames:
        return "every frame is left out"
    shapes = sum(len(frame.shapes) for frame in frames)
    if all(train_id == IGNORE_INDEX for *_, train_ids in placed for train_id in train_ids):
        return f"its {shapes} shapes make none (every label maps to ignore)"
    return f"its {shapes} shapes make none (those not mapped to ignore cover no pixel)"


def _others(export: ToolExport, index: FrameIndex) -> list[str]:
    """The images of ``export`` not in the data set while others are: left out, with a warning.

    When some images are named by their whole path in the data set (``JPEGImages/480p/goat/00000.jpg``),
    one whose folders name nothing there and whose file name alone matches
    (``JPEGImages/480p/horsejump-high/00000.jpg`` on a root holding goat alone) is a frame of a clip the
    data set does not hold. Files whose names all carry folders of their own (CVAT's subsets) are
    matched by their tails as before.
    """
    matches = [(frame, index.match(frame.key)) for frame in export.frames if isinstance(frame.key, str)]
    if not any(match == "whole" for _, match in matches):
        return []
    others = [frame.element for frame, match in matches if match == "part"]
    if others:
        listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        logger.warning("%s: %s left out: no frame of the data set is named so (their clip is not in it)",
                       export.path, listed)  # fmt: skip
    return others


def background_class(
    background: str | None, mapping: ClassMapping, path: Path, used: Sequence[str] = ()
) -> int | None:
    """The train id of the pixels no dense shape covers, or None (255, ignore).

    ``background`` names a class (by name or train id) or ``ignore``; None takes the data set's class
    named ``background`` when it has one. ``used``: the labels the file's shapes use, for the error.
    """
    if background is None:
        lower = [name.lower() for name in mapping.classes]
        return lower.index("background") if "background" in lower else None
    if background.strip().lower() == "ignore":
        return None
    if background.strip().isdigit() and int(background) < len(mapping.classes):
        return int(background)
    return mapping.train_id(background, path, "--background", used, shape=False)


def _filled_kinds(
    frame: Frame,
    train_ids: Sequence[int],
    dense_kind: LabelKind,
    background: int | None,
    explicit: bool,
    *,
    void: bool = False,
) -> tuple[LabelKind, ...]:
    """The dense kinds of ``frame`` whose uncovered pixels take the ``background`` class (module docstring).

    An ``explicit`` background fills every dense kind; the data set's own fills ``fine`` and ``pseudo``
    labels whose shapes do not draw that class, and none where the format calls them ``void``
    (`ToolExport.uncovered_void`: COCO panoptic's id 0).
    """
    if background is None or explicit:
        return DENSE_KINDS
    if void:
        return ()
    shapes = zip(frame.shapes, train_ids, strict=True)
    drawn = {shape_kind(shape, dense_kind) for shape, train_id in shapes if train_id == background}
    return tuple(kind for kind in BACKGROUND_KINDS if kind not in drawn)


def label_seconds(frame: Frame, kinds: Sequence[LabelKind], dense_kind: LabelKind) -> dict[LabelKind, float]:
    """The annotation seconds of each of ``kinds`` (the labels ``frame`` makes) that the file records.

    A kind's seconds are those its shapes record (`Shape.seconds`, frugalseg's exports); the one
    label whose shapes record none takes the person's time on the frame (`Frame.lead_time`: a region
    they drew or edited beside predictions accepted as they were), the mask where the clicks or box
    that made it record none either. Kinds the file says nothing of are left out (0 s in the store).
    """
    seconds: dict[LabelKind, float] = {}
    for shape in frame.shapes:
        kind = shape_kind(shape, dense_kind)
        if shape.seconds is not None and kind in kinds:
            seconds.setdefault(kind, shape.seconds)
    unrecorded = [kind for kind in kinds if kind not in seconds]
    dense = [kind for kind in unrecorded if kind in DENSE_KINDS]
    if frame.lead_time is not None and (len(unrecorded) == 1 or len(dense) == 1):
        seconds[(dense or unrecorded)[0]] = frame.lead_time
    return seconds


def _place(
    frame: Frame,
    export: ToolExport,
    index: FrameIndex,
    mapping: ClassMapping,
    clip: str | None,
    used: Sequence[str],
    dense_kind: LabelKind,
    background: int | None = None,
) -> tuple[Clip, int, tuple[int, int], list[int]] | None:
    """The clip, offset and size of an exported frame and the class of each shape, all checked.

    None for a `Frame.held` frame past its clip's end; a `Frame.percent` frame's shapes are scaled
    to its pixels here. ``used``: the labels the file's shapes use, listed when one maps to no class;
    ``background``: the train id of the pixels no shape covers (`background_class`).
    """
    path = export.path
    if isinstance(frame.key, int):
        found = index.by_number(frame, clip, export.video, path, export.numbers)
        if found is None:
            return None
        target, offset = found
    else:
        target, offset = index.by_name(frame.key, path, frame.element, clip)
    width, height = image_size(target.frame_path(offset))
    if frame.percent:
        size = np.array([width, height], np.float64)
        for shape in frame.shapes:
            shape.points = None if shape.points is None else shape.points * size / 100
        frame.percent = False
    if frame.size is not None and tuple(frame.size) != (height, width):
        raise DataError(
            path,
            f"{frame.element}: the file says {frame.size[1]}×{frame.size[0]}, the frame "
            f"{target.frame_path(offset)} is {width}×{height}",
        )
    train_ids = []
    for shape in frame.shapes:
        shape.fit_frame((height, width))  # a mask of a file that does not give the frame's size
        check_shape(shape, (height, width), path)
        if shape.ignored:  # a region the file marks as ignored: 255 whatever its label
            train_ids.append(IGNORE_INDEX)
        elif shape.negative:  # a click on what is not its object: of the background class
            if background is None:
                raise DataError(
                    path,
                    f"{shape.element}: a negative click of {shape.label!r} needs the class of what is not an "
                    "object: give --background",
                )
            train_ids.append(background)
        else:
            train_ids.append(mapping.train_id(shape.label, path, shape.element, used))
    _check_objects(frame, train_ids, path, dense_kind, background)
    return target, offset, (height, width), train_ids


def _check_objects(
    frame: Frame, train_ids: Sequence[int], path: Path, dense_kind: LabelKind, background: int | None = None
) -> None:
    """Refuse two annotations, tracks or regions of a frame drawing one object (`DataError` naming both).

    A tool's object is one element per frame: one COCO annotation (its several polygons in its one
    ``segmentation``), one CVAT track, one Label Studio region; frugalseg's exports write one per
    (kind, class, object). Two elements of the same object id and dense kind would merge into one
    object (a stray square in object 1), whatever their labels (two tool labels mapped to one class,
    or an object of two classes), so they are refused. Shapes that make no object (mapped to ignore,
    or of the ``background`` class: `frugalseg.interop.raster`) are not counted; clicks and boxes may
    be many, and a box is of the class of its object's other elements on the frame.
    """
    seen: dict[tuple[LabelKind, int], Shape] = {}
    classes: dict[int, tuple[Shape, int]] = {}
    for shape, train_id in zip(frame.shapes, train_ids, strict=True):
        if shape.instance_id is None or train_id in (IGNORE_INDEX, background):
            continue
        kind = shape_kind(shape, dense_kind)
        if kind is LabelKind.CLICKS:  # a negative click is of the background class, under its object's id
            continue
        first_class, first_id = classes.setdefault(shape.instance_id, (shape, train_id))
        if first_id != train_id:  # a box or clicks of one object under another class than its mask
            raise DataError(
                path,
                f"{frame.element}: {first_class.element} ({first_class.label!r}) and {shape.element} "
                f"({shape.label!r}) are both object {shape.instance_id}, of two classes: give one of them "
                "its own id",
            )
        if kind not in DENSE_KINDS:
            continue
        first = seen.setdefault((kind, shape.instance_id), shape)
        if first.element == shape.element:
            continue
        both = (
            f"{first.element} and {shape.element} are both object {shape.instance_id} of {shape.label!r}"
            if first.label == shape.label
            else f"{first.element} ({first.label!r}) and {shape.element} ({shape.label!r}) are both "
            f"object {shape.instance_id}"
        )
        raise DataError(
            path,
            f"{frame.element}: {both}; an object is one annotation, track or region per frame: give one of "
            "them its own id",
        )


def _check_unique(
    frames: list[Frame], placed: list[tuple[Clip, int, tuple[int, int], list[int]]], export: ToolExport
) -> None:
    """Raise `DataError` when two exported frames are the same frame of the data set."""
    seen: dict[tuple[str, str, int], str] = {}
    for frame, (clip, offset, _, _) in zip(frames, placed, strict=True):
        key = (clip.split, clip.clip_id, offset)
        if key in seen:
            raise DataError(
                export.path,
                f"{seen[key]} and {frame.element} are the same frame {clip.frame_path(offset)}: keep one of "
                "them in the tool (delete the other, or its annotation) and export again",
            )
        seen[key] = frame.element


def _write(
    store: LabelStore,
    clip: Clip,
    offset: int,
    kind: LabelKind,
    made: FrameLabel,
    settings: dict[str, Any],
    seconds: float,
) -> None:
    """Write one label's side files, then the label (so a recorded label always has them)."""
    path = store.label_path(clip, offset, kind)
    shape = made.label.shape
    if made.instances is not None:
        ids = made.instances.astype(np.uint8) if made.instances.max() < 255 else made.instances
        write_bytes_atomic(instances_path(path), encode_png(ids, path))
    if kind is LabelKind.CLICKS:  # scribbles are their own record: no click made of their pixels
        clicks = made.clicks or ([] if made.scribbles else _component_clicks(made.label, made.instances))
        write_json_atomic(
            clicks_json_path(path), {**clicks_json(clicks, shape, 0), "scribbles": made.scribbles}
        )
    if kind is LabelKind.BOXES:
        boxes = made.boxes or _mask_boxes(made)
        write_json_atomic(
            boxes_json_path(path), boxes_json([BoxResult(b, None, False) for b in boxes], shape, None)
        )
    store.write(
        clip,
        offset,
        kind,
        made.label,
        engine=ENGINE,
        settings=settings,
        source_offset=offset,
        seconds=seconds,
    )


def _component_clicks(label: np.ndarray, instances: np.ndarray | None) -> list[Click]:
    """One click per 8-connected part of each (class, object) region of a sparse label drawn as masks.

    Each click is the part's first pixel and keeps the region's object id (a scribble that came back as
    a mask from a tool without polylines is still its object's).
    """
    clicks = []
    for train_id, instance, mask in regions(label, instances):
        count, components = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        for component in range(1, count):
            rows, cols = np.nonzero(components == component)
            clicks.append(Click(int(cols[0]), int(rows[0]), int(train_id), instance, source="mask"))
    return clicks


def _mask_boxes(made: FrameLabel) -> list[Box]:
    """The tight box of each (class, instance) region of a ``boxes`` label drawn as masks."""
    return [
        box_of(mask, train_id, instance) for train_id, instance, mask in regions(made.label, made.instances)
    ]
