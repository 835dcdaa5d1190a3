"""Cityscapes on-disk layout → `Clip` records.

Each annotated frame F of a city sequence becomes one clip: the 30-frame snippet F−19 … F+10 from
``leftImg8bit_sequence`` (the annotated frame is offset 0), or, when the data set has no sequence
folder, the single ``leftImg8bit`` image. ``gtFine`` gives the ``fine`` label and ``gtCoarse`` the
``coarse`` label of offset 0, as train ids (``*_labelTrainIds.png``) or Cityscapes label ids
(``*_labelIds.png``, mapped with the official table); ``*_instanceIds.png`` beside a label gives its
instances. A snippet that lacks some frames is a partial snippet: the missing frames are warnings
and the frames that exist are used.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.data.classes import CITYSCAPES
from frugalseg.data.clips import TRAIN_IDS, Clip, LabelKind, LabelRef
from frugalseg.data.formats.base import Format, Problem
from frugalseg.data.io import decode_ids, read_label
from frugalseg.errors import DataError

FRAME_SUFFIX = "_leftImg8bit.png"
LABEL_IDS = "cityscapes_label_ids"
#: An instance-id map value v ≥ 1000 is instance v % 1000 of label id v // 1000 (Cityscapes convention).
INSTANCE_ID_BASE = 1000
_NAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d{6})_(?P<frame>\d{6})_(?P<rest>.+)\.png$")
_INSTANCE_SUFFIX = "_instanceIds.png"

# Label files of one kind, most preferred first: train ids need no mapping.
_FINE_SUFFIXES = ("_gtFine_labelTrainIds.png", "_gtFine_labelIds.png")
_COARSE_SUFFIXES = ("_gtCoarse_labelTrainIds.png", "_gtCoarse_labelIds.png")
#: gtFine's other files of a frame: a frame holding them was given its label, which a split of no label
#: at all (frames only) would not tell
_OTHER_FINE_SUFFIXES = ("_gtFine_color.png", "_gtFine_instanceIds.png")
_FOLDERS = ("leftImg8bit_sequence", "leftImg8bit", "gtFine", "gtCoarse")
_NOT_READ = "its frames or labels were not read"

FrameKey = tuple[str, str, int]  # (city, sequence, frame number)


def _stem(key: FrameKey) -> str:
    city, seq, frame = key
    return f"{city}_{seq}_{frame:06d}"


def _ref(path: Path, kind: LabelKind) -> LabelRef:
    encoding = LABEL_IDS if path.name.endswith("_labelIds.png") else TRAIN_IDS
    return LabelRef(path, kind, encoding)


def instance_ids_path(label_path: str | Path) -> Path | None:
    """The ``*_instanceIds.png`` beside a ``*_labelTrainIds.png``/``*_labelIds.png`` label, if it exists."""
    label_path = Path(label_path)
    for suffix in ("_labelTrainIds.png", "_labelIds.png"):
        if label_path.name.endswith(suffix):
            candidate = label_path.with_name(label_path.name[: -len(suffix)] + _INSTANCE_SUFFIX)
            return candidate if candidate.is_file() else None
    return None


def read_instance_ids(path: str | Path, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A Cityscapes instance-id map (16- or 8-bit PNG) as H×W int32: v ≥ 1000 kept, other pixels 0.

    With ``shape``, a map of another size is rejected (it would not fit the label it goes with).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "instance-id map does not exist")
    image = decode_ids(path)
    if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        raise DataError(
            path,
            f"instance-id map must be a single-channel 8- or 16-bit image, got {image.shape} {image.dtype}",
        )
    if shape is not None and image.shape != tuple(shape):
        raise DataError(
            path, f"instance-id map is {image.shape[1]}×{image.shape[0]}, its label {shape[1]}×{shape[0]}"
        )
    return instances(image)


def instances(instance_ids: np.ndarray) -> np.ndarray:
    """A Cityscapes instance-id map as instance ids only: values ≥ 1000 kept (int32), plain label ids 0."""
    ids = instance_ids.astype(np.int32)
    ids[ids < INSTANCE_ID_BASE] = 0
    return ids


def split_folders(root: Path, tops: tuple[str, ...]) -> list[str]:
    """The names of the split folders under ``root``'s folders ``tops``, sorted.

    A folder of a label folder (``gt…``) is a split where it holds city or drive folders: the official
    panoptic tools write their PNGs into ``gtFine/cityscapes_panoptic_val`` or ``gtFine/val_panoptic``, and
    ``data check`` had called each a split without clips.
    """
    found: set[str] = set()
    for top in tops:
        folder = root / top
        if folder.is_dir():
            found.update(
                child.name
                for child in folder.iterdir()
                if child.is_dir() and (not top.startswith("gt") or any(p.is_dir() for p in child.iterdir()))
            )
    return sorted(found)


class CityscapesFormat(Format):
    """Reads a folder in the Cityscapes layout into clips, one per annotated frame.

    Args:
        root: the data set folder (``leftImg8bit_sequence/``, ``leftImg8bit/``, ``gtFine/``, ``gtCoarse/``).
        frames_before: frames of the snippet before the annotated one (19 in Cityscapes).
        frames_after: frames of the snippet after it (10 in Cityscapes).
    """

    name = "cityscapes"
    classes = CITYSCAPES

    def __init__(self, root: str | Path, frames_before: int = 19, frames_after: int = 10) -> None:
        super().__init__(root)
        if frames_before < 0 or frames_after < 0:
            raise ValueError(
                f"frames_before and frames_after must be ≥ 0, got {frames_before}, {frames_after}"
            )
        self.frames_before = frames_before
        self.frames_after = frames_after

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """Whether ``root`` is a Cityscapes tree.

        A Cityscapes tree has ``<city>_<seq>_<frame>_leftImg8bit.png`` files in
        ``leftImg8bit[_sequence]/<split>/<city>/`` (IDD has the same folders, other file names).
        """
        for top in ("leftImg8bit", "leftImg8bit_sequence"):  # any so named: the first may be a copy
            frames = (root / top).glob(f"*/*/*{FRAME_SUFFIX}") if (root / top).is_dir() else ()
            if any(_NAME.match(path.name) is not None for path in frames):
                return True
        return False

    @property
    def has_sequences(self) -> bool:
        """Whether the data set has video snippets (else each image is a one-frame clip)."""
        return (self.root / "leftImg8bit_sequence").is_dir()

    def splits(self) -> list[str]:
        """Split names found under the image and label folders, sorted (`split_folders`)."""
        return split_folders(self.root, _FOLDERS)

    def scan(self, split: str) -> tuple[list[Clip], list[Problem]]:
        """All clips of ``split`` and every problem found on the way (`Format.scan`)."""
        splits = self.splits()
        if split not in splits:
            raise DataError(
                self.root, f"split {split!r} does not exist; splits found: {', '.join(splits) or 'none'}"
            )
        fine = self._files("gtFine", split, _FINE_SUFFIXES)
        coarse = self._files("gtCoarse", split, _COARSE_SUFFIXES)
        others = {} if fine or coarse else self._files("gtFine", split, _OTHER_FINE_SUFFIXES)
        images = self._files("leftImg8bit", split, (FRAME_SUFFIX,))
        keys = sorted(set(fine) | set(coarse) | set(images), key=_stem)
        sequence = self._files("leftImg8bit_sequence", split, (FRAME_SUFFIX,)) if self.has_sequences else None

        clips: list[Clip] = []
        problems = self._files_for_folders(split)
        for key in keys:
            if sequence is None:
                frames, anchor_index, missing = [images.get(key) or self._image_path(split, key)], 0, set()
                if key not in images:
                    missing = {0}
            else:
                frames, anchor_index, missing = self._snippet(split, key, sequence, images)
            clip = Clip(_stem(key), split, frames, anchor_index, missing=frozenset(missing))
            if 0 in missing:
                problems.append(
                    Problem(frames[anchor_index], f"image of annotated frame {_stem(key)} does not exist")
                )
                continue
            problems += [
                Problem(
                    clip.frame_path(offset),
                    f"missing frame (offset {offset:+d}) of the snippet of {_stem(key)}",
                    warning=True,
                )
                for offset in sorted(missing)
            ]
            if key in fine:
                clip.add_label(0, _ref(fine[key], LabelKind.FINE))
            if key in coarse:
                clip.add_label(0, _ref(coarse[key], LabelKind.COARSE))
            if (fine or coarse or key in others) and key not in fine and key not in coarse:
                problems.append(self._missing_label(split, key, len(fine), len(coarse), others.get(key)))
            clips.append(clip)
        return clips, problems

    def _missing_label(
        self, split: str, key: FrameKey, fine: int, coarse: int, other: Path | None = None
    ) -> Problem:
        """The problem of an annotated frame without a label in a split whose other frames have theirs.

        A split with no label at all is frames only (the real test split's images); one with some, or a
        frame with gtFine's ``other`` files, is taken to promise a label (a partial download leaves it short).
        """
        top, suffix, count = (
            ("gtFine", _FINE_SUFFIXES[0], fine)
            if fine or not coarse
            else ("gtCoarse", _COARSE_SUFFIXES[0], coarse)
        )
        path = self.root / top / split / key[0] / f"{_stem(key)}{suffix}"
        promise = (
            f"its gtFine folder holds {other.name}"
            if other
            else f"{count} frame(s) of split {split!r} have their {top} label"
        )
        return Problem(
            path,
            f"no label of annotated frame {_stem(key)} (neither gtFine's nor gtCoarse's labelTrainIds or "
            f"labelIds), while {promise}",
            missing_label=True,
            own_files=other is not None,
        )

    def decode_label(self, ref: LabelRef) -> np.ndarray:
        """Cityscapes label ids (``*_labelIds.png``) mapped to train ids with the official table."""
        if ref.encoding != LABEL_IDS:
            return super().decode_label(ref)
        label = read_label(ref.path)
        self.classes.check_label_ids(label, ref.path)
        train_ids: np.ndarray = self.classes.label_id_to_train_id[label]
        return train_ids

    def instance_ids(
        self, clip: Clip, kind: LabelKind = LabelKind.FINE, shape: tuple[int, ...] | None = None
    ) -> np.ndarray | None:
        """The ``*_instanceIds.png`` beside the anchor's ``kind`` label (values ≥ 1000), or None."""
        ref = clip.label(0, kind)
        path = None if ref is None else instance_ids_path(ref.path)
        return None if path is None else read_instance_ids(path, shape)

    def describe(self) -> dict[str, Any]:
        """``run.json`` entry: name, root and the snippet length."""
        return {**super().describe(), "frames_before": self.frames_before, "frames_after": self.frames_after}

    def _image_path(self, split: str, key: FrameKey) -> Path:
        return self.root / "leftImg8bit" / split / key[0] / (_stem(key) + FRAME_SUFFIX)

    def _snippet(
        self, split: str, key: FrameKey, sequence: dict[FrameKey, Path], images: dict[FrameKey, Path]
    ) -> tuple[list[Path], int, set[int]]:
        """Frame paths of the snippet around ``key`` and the offsets whose frame is missing.

        The annotated frame may come from ``leftImg8bit`` when the sequence folder lacks it.
        """
        city, seq, anchor = key
        frames: list[Path] = []
        missing: set[int] = set()
        for number in range(anchor - self.frames_before, anchor + self.frames_after + 1):
            frame_key = (city, seq, number)
            if frame_key in sequence:
                frames.append(sequence[frame_key])
            elif number == anchor and key in images:
                frames.append(images[key])
            else:
                frames.append(
                    self.root / "leftImg8bit_sequence" / split / city / f"{_stem(frame_key)}{FRAME_SUFFIX}"
                )
                missing.add(number - anchor)
        return frames, self.frames_before, missing

    def _files_for_folders(self, split: str) -> list[Problem]:
        """Problems naming a file where a folder of ``split`` belongs (``gtFine``, ``gtFine/<split>``, …).

        A city is a file that another top folder holds as a city folder (``gtFine/val/frankfurt`` beside
        ``leftImg8bit/val/frankfurt/``); other files there (a README) are left alone. Its frames or
        labels were not read, and a recipe then found no label without saying why. A frame named otherwise
        than Cityscapes names them is not read either, said so.
        """
        problems = []
        for top in _FOLDERS:
            for path in (self.root / top, self.root / top / split):
                if path.is_file():
                    problems.append(Problem(path, f"is a file, not a folder: {_NOT_READ}"))
        cities = {c.name for top in _FOLDERS for c in _children(self.root / top / split) if c.is_dir()}
        for top in _FOLDERS:
            problems += [
                Problem(city, f"is a file, not a city folder: {_NOT_READ}")
                for city in _children(self.root / top / split)
                if city.name in cities and city.is_file()
            ]
        for top in (
            "leftImg8bit_sequence",
            "leftImg8bit",
        ):  # a copy's name (… (1)_leftImg8bit.png) is no frame
            problems += [
                Problem(path, f"not named <city>_<6 digits>_<6 digits>{FRAME_SUFFIX}: not read", warning=True)
                for path in sorted((self.root / top / split).glob(f"*/*{FRAME_SUFFIX}"))
                if _NAME.match(path.name) is None
            ]
        return problems

    def _files(self, top: str, split: str, suffixes: tuple[str, ...]) -> dict[FrameKey, Path]:
        """Files under ``top/split/city/`` by frame key, taking the first suffix that exists."""
        found: dict[FrameKey, Path] = {}
        folder = self.root / top / split
        if not folder.is_dir():
            return found
        for suffix in reversed(suffixes):  # preferred suffixes come last and win
            for path in sorted(folder.glob(f"*/*{suffix}")):
                match = _NAME.match(path.name)
                if match is not None:
                    found[(match["city"], match["seq"], int(match["frame"]))] = path
        return found


def _children(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted; none when it is not a folder."""
    return sorted(folder.iterdir()) if folder.is_dir() else []
