"""IDD (India Driving Dataset, segmentation part) → `Clip` records, level-3 classes.

Layout, as the IDD toolkit describes it (``AutoNUE/public-code``, README "Dataset Structure" and
"Semantic Segmentation"; the same for IDD 20k Part I and II)::

    leftImg8bit/{train,val,test}/<drive>/<id>_leftImg8bit.png|jpg     frames (Part II: jpg, ``frame0029``)
    gtFine/<split>/<drive>/<id>_gtFine_polygons.json                  the manual annotation
    gtFine/<split>/<drive>/<id>_gtFine_labellevel3Ids.png             label map, made by the toolkit
    gtFine/<split>/<drive>/<id>_gtFine_instancelevel3Ids.png          instance map, made by the toolkit

IDD ships polygons only; the label maps are made by the toolkit's
``preperation/createLabels.py --datadir <root> --id-type level3Id``. They hold level-3 ids, which
are the train ids: 26 classes (0 road … 25 sky) and 255 for unlabelled, ego vehicle,
rectification border, out of roi and license plate. Names are those of the toolkit's evaluation
(``evaluation/evaluate_mIoU.py``: ``road, drivable fallback, sidewalk, non-drivable fallback,
person, …, vegetation, sky``); colours are its viewer's level-3 colours (``viewer/viewer.py``), the
colour of the first label of each level-3 id in ``helpers/anue_labels.py``; instance classes are the
level-3 ids of the labels with ``hasInstances`` there (person … vehicle fallback). This reader does
not rasterise polygons: a frame with polygons and no label map is an error that names the file and
the toolkit command. The instance map (``json2instanceImg.py``, run by ``createLabels.py`` with
``--instance True``) holds ``level3Id × 1000 + k`` for the k-th instance of a class and the plain
level-3 id elsewhere, so `IddFormat.instance_ids` keeps the values ≥ 1000, as for Cityscapes.

Unlabelled video frames: IDD's segmentation release has none. They come with **IDD Temporal**
(``idd.insaan.iiit.ac.in``, Dataset → Download), whose archives unpack to ``idd_temporal_<part>/``
with one folder of consecutive frames per annotated image. Its README was not found; the layout
here is the one public code reading it uses (``idd_temporal_val_1/00066/894867_leftImg8bit/
0002267.jpeg``, ``idd_temporal_train4/029462_leftImg8bit/0003399.jpeg``, and a video-segmentation
project that pairs ``idd_temporal_val_1`` with ``IDD_Segmentation`` val labels)::

    idd_temporal_*/[<drive>/]<id>_leftImg8bit/<number>.jpeg       frames around image <id>

Which of those frames is the annotated one is not documented, so the reader finds it: the frame
closest to the annotated image (mean absolute grey difference at 1/4 size, at most
``MATCH_TOLERANCE`` grey levels) becomes offset 0, and the annotated image (whose label fits it
exactly) stands in for it. The answer is cached per folder (``$FRUGALSEG_CACHE/idd_temporal``), so
only the first scan reads the frames. Numbers missing between the first and last frame of a folder
are warnings (a partial snippet); a folder whose frames hold no match for the annotated image is a
warning and the clip keeps the annotated image alone, as does every clip without a temporal folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from frugalseg.data.classes import ClassTable
from frugalseg.data.clips import TRAIN_IDS, Clip, LabelKind, LabelRef
from frugalseg.data.formats.base import Format, Problem
from frugalseg.data.formats.cityscapes import _NAME as CITYSCAPES_NAME
from frugalseg.data.formats.cityscapes import read_instance_ids, split_folders
from frugalseg.data.formats.veis import fill_gaps
from frugalseg.data.io import cache_dir, imread, write_json_atomic
from frugalseg.errors import DataError

FRAME_SUFFIX = "_leftImg8bit"
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")
LABEL_SUFFIX = "_gtFine_labellevel3Ids.png"
INSTANCE_SUFFIX = "_gtFine_instancelevel3Ids.png"
POLYGONS_SUFFIX = "_gtFine_polygons.json"
TEMPORAL_PREFIX = "idd_temporal"
#: Largest mean absolute grey difference (0–255) at which a temporal frame is the annotated image.
MATCH_TOLERANCE = 6.0
TOOLKIT = "https://github.com/AutoNUE/public-code"
logger = logging.getLogger(__name__)
_FRAME = re.compile(rf"^(?P<id>.+){FRAME_SUFFIX}(?P<ext>\.png|\.jpe?g)$", re.IGNORECASE)

IDD_LEVEL3 = ClassTable(
    names=(
        "road",
        "drivable fallback",
        "sidewalk",
        "non-drivable fallback",
        "person",
        "rider",
        "motorcycle",
        "bicycle",
        "autorickshaw",
        "car",
        "truck",
        "bus",
        "vehicle fallback",
        "curb",
        "wall",
        "fence",
        "guard rail",
        "billboard",
        "traffic sign",
        "traffic light",
        "pole",
        "obs-str-bar-fallback",
        "building",
        "bridge",
        "vegetation",
        "sky",
    ),
    palette=(
        (128, 64, 128),
        (250, 170, 160),
        (244, 35, 232),
        (230, 150, 140),
        (220, 20, 60),
        (255, 0, 0),
        (0, 0, 230),
        (119, 11, 32),
        (255, 204, 54),
        (0, 0, 142),
        (0, 0, 70),
        (0, 60, 100),
        (0, 0, 90),
        (220, 190, 40),
        (102, 102, 156),
        (190, 153, 153),
        (180, 165, 180),
        (174, 64, 67),
        (220, 220, 0),
        (250, 170, 30),
        (153, 153, 153),
        (169, 187, 214),
        (70, 70, 70),
        (150, 100, 100),
        (107, 142, 35),
        (70, 130, 180),
    ),
    instance_classes=(4, 5, 6, 7, 8, 9, 10, 11, 12),
)

FrameKey = tuple[str, str]  # (drive, id)


def _key_name(key: FrameKey) -> str:
    return f"{key[0]}/{key[1]}"


def _same_drive(a: str, b: str) -> bool:
    """Drive folders match by number (``66`` and ``00066``) or by name."""
    return int(a) == int(b) if a.isdigit() and b.isdigit() else a == b


def _grey_small(path: Path) -> np.ndarray | None:
    """The image at ``path`` in grey at 1/4 size (JPEG decodes at that size), or None if unreadable."""
    image = imread(path, cv2.IMREAD_REDUCED_GRAYSCALE_4)
    return None if image is None else image.astype(np.float32)


def find_anchor(image: Path, frames: list[Path]) -> tuple[int | None, float]:
    """Index of the frame of ``frames`` that shows ``image`` and its mean grey difference.

    The difference is the mean absolute grey-level difference at 1/4 size, ``image`` resized to
    each frame's size; the index is None when no frame is within ``MATCH_TOLERANCE`` (or none
    could be read).
    """
    target = _grey_small(image)
    best, best_diff = None, float("inf")
    if target is None:
        return None, best_diff
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # OpenCV frees the GIL
        smalls = list(pool.map(_grey_small, frames))
    for index, small in enumerate(smalls):
        if small is None:
            continue
        resized = (
            target
            if small.shape == target.shape
            else cv2.resize(target, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
        )
        diff = float(np.abs(resized - small).mean())
        if diff < best_diff:
            best, best_diff = index, diff
    return (best if best_diff <= MATCH_TOLERANCE else None), best_diff


class IddFormat(Format):
    """Reads IDD segmentation (and IDD Temporal frames, when present) into one clip per image.

    Args:
        root: the data set folder (``leftImg8bit/``, ``gtFine/`` and any ``idd_temporal*/``).
        temporal_root: another folder holding the ``idd_temporal*`` folders (or one of them).
    """

    name = "idd"
    classes = IDD_LEVEL3

    def __init__(self, root: str | Path, temporal_root: str | Path | None = None) -> None:
        super().__init__(root)
        self.temporal_root = Path(temporal_root) if temporal_root is not None else None
        if self.temporal_root is not None and not self.temporal_root.is_dir():
            raise DataError(self.temporal_root, "folder of IDD Temporal frames does not exist")

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """Whether ``root`` is an IDD tree.

        It has ``leftImg8bit/<split>/<drive>/<id>_leftImg8bit.*`` with IDD names (no Cityscapes
        ``city_seq_frame``), or level-3 label maps under ``gtFine``.
        """
        images = root / "leftImg8bit"
        if not images.is_dir():
            return False
        if (root / "gtFine").is_dir() and next((root / "gtFine").glob(f"*/*/*{LABEL_SUFFIX}"), None):
            return True
        first = next((p for p in images.glob(f"*/*/*{FRAME_SUFFIX}.*") if _FRAME.match(p.name)), None)
        return first is not None and CITYSCAPES_NAME.match(first.name) is None

    def splits(self) -> list[str]:
        """Split names found under ``leftImg8bit`` and ``gtFine``, sorted (`split_folders`)."""
        return split_folders(self.root, ("leftImg8bit", "gtFine"))

    def scan(self, split: str) -> tuple[list[Clip], list[Problem]]:
        """All clips of ``split`` and every problem found on the way (`Format.scan`).

        Errors: a label or polygons without their image, polygons without a label map. Warnings:
        frames missing from a temporal folder, a temporal folder without the annotated image.
        """
        splits = self.splits()
        if split not in splits:
            raise DataError(
                self.root, f"split {split!r} does not exist; splits found: {', '.join(splits) or 'none'}"
            )
        images = self._images(split)
        labels = self._gt(split, LABEL_SUFFIX)
        polygons = self._gt(split, POLYGONS_SUFFIX)
        clips: list[Clip] = []
        problems: list[Problem] = []
        cache = self._read_cache() if self.temporal_folders else {}
        updates: dict[str, Any] = {}
        started = time.monotonic()
        for key in sorted(set(images) | set(labels) | set(polygons)):
            if key not in images:
                orphan = labels.get(key) or polygons[key]
                problems.append(Problem(orphan, f"annotation has no image ({key[1]}{FRAME_SUFFIX}.png|jpg)"))
                continue
            frames, anchor, missing = self._snippet(key, images[key], problems, cache, updates)
            clip = Clip(_key_name(key), split, frames, anchor, missing=frozenset(missing))
            if key in labels:
                clip.add_label(0, LabelRef(labels[key], LabelKind.FINE, TRAIN_IDS))
            elif key in polygons:
                problems.append(
                    Problem(
                        polygons[key],
                        f"polygons without the label map {key[1]}{LABEL_SUFFIX}: make the label maps with "
                        f"the IDD toolkit ({TOOLKIT}): python preperation/createLabels.py --datadir "
                        f"{self.root} --id-type level3Id",
                    )
                )
            clips.append(clip)
        self._write_cache(updates)
        found = sum(entry["anchor"] is not None for entry in updates.values())
        if updates:  # a folder whose frames show no annotated image is warned of apart
            logger.info(
                "%s (idd, split %s): looked for the annotated frame among the IDD Temporal frames of %d "
                "image(s), found in %d, in %.0f s; cached in %s",
                self.root,
                split,
                len(updates),
                found,
                time.monotonic() - started,
                self._cache_file,
            )
        return clips, problems

    def instance_ids(
        self, clip: Clip, kind: LabelKind = LabelKind.FINE, shape: tuple[int, ...] | None = None
    ) -> np.ndarray | None:
        """The ``*_gtFine_instancelevel3Ids.png`` beside the anchor's label (values ≥ 1000), or None."""
        ref = clip.label(0, kind)
        if ref is None or not ref.path.name.endswith(LABEL_SUFFIX):
            return None
        path = ref.path.with_name(ref.path.name[: -len(LABEL_SUFFIX)] + INSTANCE_SUFFIX)
        return read_instance_ids(path, shape) if path.is_file() else None

    def describe(self) -> dict[str, Any]:
        """``run.json`` entry: name, root and ``temporal_root`` (None: the ``idd_temporal*`` of the root)."""
        temporal = None if self.temporal_root is None else os.path.abspath(self.temporal_root)
        return {**super().describe(), "temporal_root": temporal}

    # --- files ---------------------------------------------------------------------------------

    def _images(self, split: str) -> dict[FrameKey, Path]:
        found: dict[FrameKey, Path] = {}
        folder = self.root / "leftImg8bit" / split
        if folder.is_dir():
            for path in sorted(folder.glob(f"*/*{FRAME_SUFFIX}.*")):
                match = _FRAME.match(path.name)
                if match is not None:
                    found[(path.parent.name, match["id"])] = path
        return found

    def _gt(self, split: str, suffix: str) -> dict[FrameKey, Path]:
        folder = self.root / "gtFine" / split
        if not folder.is_dir():
            return {}
        return {(p.parent.name, p.name[: -len(suffix)]): p for p in sorted(folder.glob(f"*/*{suffix}"))}

    # --- IDD Temporal --------------------------------------------------------------------------

    def _temporal_tops(self) -> list[Path]:
        """The ``idd_temporal*`` folders of the root and of ``temporal_root``."""
        tops: list[Path] = []
        for base in (self.root, self.temporal_root):
            if base is None:
                continue
            if base.name.startswith(TEMPORAL_PREFIX):
                tops.append(base)
            tops.extend(sorted(p for p in base.glob(f"{TEMPORAL_PREFIX}*") if p.is_dir()))
        return list(dict.fromkeys(tops))

    @cached_property
    def temporal_folders(self) -> dict[str, list[Path]]:
        """Image id → the IDD Temporal folders named ``<id>_leftImg8bit`` (under a drive folder or not)."""
        index: dict[str, list[Path]] = {}
        for top in self._temporal_tops():
            for pattern in (f"*{FRAME_SUFFIX}", f"*/*{FRAME_SUFFIX}"):
                for folder in sorted(top.glob(pattern)):
                    if folder.is_dir():
                        index.setdefault(folder.name[: -len(FRAME_SUFFIX)], []).append(folder)
        return index

    def _temporal_folder(self, key: FrameKey, problems: list[Problem]) -> Path | None:
        candidates = self.temporal_folders.get(key[1], [])
        if len(candidates) > 1:
            candidates = [c for c in candidates if _same_drive(c.parent.name, key[0])] or candidates
        if len(candidates) > 1:
            problems.append(
                Problem(
                    candidates[0],
                    f"{len(candidates)} temporal folders for image {_key_name(key)} "
                    f"({', '.join(str(c) for c in candidates[:3])}); using none",
                    warning=True,
                )
            )
            return None
        return candidates[0] if candidates else None

    def _snippet(
        self,
        key: FrameKey,
        image: Path,
        problems: list[Problem],
        cache: dict[str, Any],
        updates: dict[str, Any],
    ) -> tuple[list[Path], int, set[int]]:
        """Frames, anchor index and missing offsets of the clip of ``key``.

        Without a temporal folder the clip is its image alone; ``cache`` and ``updates`` as in
        `_anchor`.
        """
        folder = self._temporal_folder(key, problems)
        if folder is None:
            return [image], 0, set()
        frames = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS)
        if not frames:
            problems.append(Problem(folder, "temporal folder holds no frames", warning=True))
            return [image], 0, set()
        anchor_name, diff = self._anchor(folder, frames, image, cache, updates)
        if anchor_name is None:
            problems.append(
                Problem(
                    folder,
                    f"none of its {len(frames)} frames shows the annotated image {image.name} (closest "
                    f"differs by {diff:.1f} grey levels); the clip has the annotated image only",
                    warning=True,
                )
            )
            return [image], 0, set()
        frames, missing_indices = fill_gaps(frames)
        anchor = next(i for i, frame in enumerate(frames) if frame.name == anchor_name)
        frames[anchor] = image  # its label fits the annotated image exactly
        for index in sorted(missing_indices):
            problems.append(
                Problem(
                    frames[index],
                    f"missing frame (offset {index - anchor:+d}) of the snippet of {_key_name(key)}",
                    warning=True,
                )
            )
        return frames, anchor, {index - anchor for index in missing_indices}

    def _anchor(
        self, folder: Path, frames: list[Path], image: Path, cache: dict[str, Any], updates: dict[str, Any]
    ) -> tuple[str | None, float]:
        """Name of the frame of ``folder`` that shows ``image``, and its difference.

        Read from ``cache`` when neither the image nor the frames changed, else found and added to
        ``updates``.

        A file counts as unchanged when its inode, size and status-change time are: unlike the
        modification time, the status-change time cannot be set back, so a replaced file is seen.
        """
        stats = [(f.name, f.stat().st_ino, f.stat().st_size, f.stat().st_ctime_ns) for f in (image, *frames)]
        signature = hashlib.sha1(json.dumps(stats).encode()).hexdigest()
        entry = cache.get(str(folder))
        if isinstance(entry, dict) and entry.get("signature") == signature:
            return entry["anchor"], float("inf") if entry["diff"] is None else float(entry["diff"])
        index, diff = find_anchor(image, frames)
        name = None if index is None else frames[index].name
        updates[str(folder)] = {
            "signature": signature,
            "anchor": name,
            "diff": diff if np.isfinite(diff) else None,
        }
        return name, diff

    @property
    def _cache_file(self) -> Path:
        digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:16]
        return cache_dir() / "idd_temporal" / f"{digest}.json"

    def _read_cache(self) -> dict[str, Any]:
        """The anchors found by earlier scans of this root (folder → entry); {} when none or unreadable."""
        try:
            cached = json.loads(self._cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return cached if isinstance(cached, dict) else {}

    def _write_cache(self, updates: dict[str, Any]) -> None:
        """Add ``updates`` to the cache file (read again first, to keep what other scans added)."""
        if updates:
            write_json_atomic(self._cache_file, {**self._read_cache(), **updates})
