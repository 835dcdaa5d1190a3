"""DAVIS-style video object segmentation layout (DAVIS 2016/2017, MOSE) → `Clip` records.

Layout::

    JPEGImages/480p/<seq>/00000.jpg …     frames (MOSE: ``JPEGImages/<seq>/``, no resolution folder)
    Annotations/480p/<seq>/00000.png …    object masks, one per frame that has one
    ImageSets/<year>/<split>.txt          optional: the sequences of each split

A mask is either a palette PNG whose indices are object ids (0 background; index 255, where a
data set uses it, is "void") or a binary grey-level PNG (0 / 255 → object 1). Without
``ImageSets`` every sequence belongs to one split called ``all``.

Each sequence is one clip anchored at its first frame (offset 0 = frame 0, the frame whose mask a
semi-supervised VOS method is given). For the semantic pipeline (training, propagation, reports)
the masks become two-class label maps — 0 background, 1 object (any id), 255 only where a palette
mask says void — cached as PNGs under ``$FRUGALSEG_CACHE/davis_labels`` so that `read_label` and
every other reader of label maps can use them. Object ids stay available via `DavisFormat.read_mask`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from frugalseg.datamodules.clips import IGNORE_INDEX, Clip, LabelKind, LabelRef
from frugalseg.datamodules.io import DataError, cache_dir, write_png_atomic

ALL_SPLIT = "all"
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
MASK_EXTENSION = ".png"


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) read from the file header only."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError as err:
        raise DataError(path, "file does not exist") from err
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(path, f"cannot read image header ({err})") from err


def _holds_folders(folder: Path) -> bool:
    """Whether the first entry of ``folder`` is a folder (a resolution folder, not a sequence)."""
    with os.scandir(folder) as entries:
        first = next(entries, None)
        return first is not None and first.is_dir()


class DavisFormat:
    """Reads a DAVIS-style folder (DAVIS, MOSE) into one clip per sequence, anchored at frame 0.

    Args:
        root: the data set folder (holding ``JPEGImages`` and ``Annotations``).
        resolution: resolution folder under ``JPEGImages``/``Annotations`` (``480p``, ``Full-Resolution``);
            when it does not exist the sequences are read directly under ``JPEGImages`` (MOSE).
        year: the ``ImageSets`` sub-folder that defines the splits; None takes the last one in
            sorted order (DAVIS 2017 over 2016).
        name: the format's name as recorded in label stores (``davis`` or ``mose``).
    """

    num_classes = 2
    class_names: tuple[str, ...] = ("background", "object")
    palette: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (128, 0, 0))
    #: Classes scored as objects (J, recall) rather than semantic classes by quality reports.
    object_classes: tuple[int, ...] = (1,)

    def __init__(
        self, root: str | Path, resolution: str = "480p", year: str | None = None, name: str = "davis"
    ) -> None:
        self.root = Path(root)
        self.name = name
        self.resolution = resolution
        if not self.root.is_dir():
            raise DataError(self.root, "data set folder does not exist")
        images = self.root / "JPEGImages"
        if not images.is_dir():
            raise DataError(images, "folder does not exist: not a DAVIS-style data set")
        self.image_dir = images / resolution if (images / resolution).is_dir() else images
        if self.image_dir == images:
            nested = sorted(d.name for d in images.iterdir() if d.is_dir() and _holds_folders(d))
            if nested:
                raise DataError(
                    images, f"no {resolution!r} folder; resolution folders found: {', '.join(nested)}"
                )
        annotations = self.root / "Annotations"
        self.mask_dir = annotations / resolution if (annotations / resolution).is_dir() else annotations
        self.split_dir = self._split_dir(year)

    def _split_dir(self, year: str | None) -> Path | None:
        """The ``ImageSets`` folder whose ``*.txt`` files list the splits, or None."""
        sets = self.root / "ImageSets"
        if year is not None:
            folder = sets / year
            if not folder.is_dir():
                raise DataError(folder, "ImageSets folder of the requested year does not exist")
            return folder
        if not sets.is_dir():
            return None
        candidates = sorted(d for d in sets.iterdir() if d.is_dir() and any(d.glob("*.txt")))
        return candidates[-1] if candidates else None

    def splits(self) -> list[str]:
        """Split names (the ``ImageSets`` list files), or ``["all"]`` without ``ImageSets``."""
        if self.split_dir is None:
            return [ALL_SPLIT]
        return sorted(path.stem for path in self.split_dir.glob("*.txt"))

    def sequences(self, split: str) -> list[str]:
        """Sequence names of ``split``, sorted.

        A list file may name one sequence per line (DAVIS 2017, MOSE) or frame/mask path pairs
        (DAVIS 2016); a listed sequence without a frame folder is an error naming the list file.
        """
        splits = self.splits()
        if split not in splits:
            raise DataError(self.root, f"split {split!r} does not exist; splits found: {', '.join(splits)}")
        if self.split_dir is None:
            return sorted(d.name for d in self.image_dir.iterdir() if d.is_dir())
        listing = self.split_dir / f"{split}.txt"
        names: set[str] = set()
        for number, line in enumerate(listing.read_text().splitlines(), start=1):
            words = line.split()
            if not words:
                continue
            name = Path(words[0]).parent.name if "/" in words[0] else words[0]
            if not (self.image_dir / name).is_dir():
                raise DataError(
                    listing, f"line {number}: sequence {name!r} has no frame folder under {self.image_dir}"
                )
            names.add(name)
        return sorted(names)

    def frame_paths(self, seq: str) -> list[Path]:
        """The frames of sequence ``seq`` in time order (file names sort as frame numbers)."""
        folder = self.image_dir / seq
        if not folder.is_dir():
            raise DataError(folder, f"frame folder of sequence {seq!r} does not exist")
        frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)
        if not frames:
            raise DataError(folder, f"sequence {seq!r} has no frames ({', '.join(FRAME_EXTENSIONS)})")
        return frames

    def mask_paths(self, seq: str) -> list[Path | None]:
        """The mask of each frame of ``seq`` (same order as `frame_paths`), None where it has none."""
        folder = self.mask_dir / seq
        return [
            path if path.is_file() else None
            for path in (folder / (frame.stem + MASK_EXTENSION) for frame in self.frame_paths(seq))
        ]

    @staticmethod
    def read_mask(path: str | Path) -> np.ndarray:
        """An H×W uint8 map of object ids (0 background) from a palette or binary mask PNG.

        Palette PNGs give their indices as they are. Grey-level PNGs holding only 0 and 255 are
        binary masks (255 → object 1); other grey-level PNGs are taken to hold object ids directly.
        """
        path = Path(path)
        try:
            with Image.open(path) as image:
                mode = image.mode
                if mode not in ("P", "L", "1"):
                    raise DataError(
                        path,
                        f"mask must be a palette or grey-level PNG of object ids, got PIL mode {mode!r}",
                    )
                mask = np.array(image.convert("L") if mode == "1" else image, dtype=np.uint8)
        except FileNotFoundError as err:
            raise DataError(path, "file does not exist") from err
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(path, f"cannot decode mask ({err})") from err
        if mode != "P" and mask.max(initial=0) == 255 and not np.isin(mask, (0, 255), invert=True).any():
            mask = (mask == 255).astype(np.uint8)
        return mask

    @staticmethod
    def to_label(mask: np.ndarray) -> np.ndarray:
        """The two-class label map of an object-id mask: 0 background, 1 any object, 255 void."""
        label = (mask > 0).astype(np.uint8)
        label[mask == IGNORE_INDEX] = IGNORE_INDEX
        return label

    def clips(self, split: str) -> list[Clip]:
        """One clip per sequence of ``split``, sorted by id; raises `DataError` on the first problem."""
        clips, problems = self.scan(split)
        if problems:
            raise problems[0]
        return clips

    def scan(self, split: str) -> tuple[list[Clip], list[DataError]]:
        """All clips of ``split`` and every problem found on the way, without stopping.

        Checks from the file headers that every frame and mask has the size of the sequence's
        first frame, that every mask has its frame, and that numbered frames have no gap; decodes
        the first mask (the anchor's ``fine`` label). A sequence without frames yields no clip; one
        whose first mask is missing or bad yields a clip without a label.
        """
        clips: list[Clip] = []
        problems: list[DataError] = []
        for seq in self.sequences(split):
            try:
                frames = self.frame_paths(seq)
            except DataError as error:
                problems.append(error)
                continue
            clip = Clip(clip_id=seq, split=split, frames=frames, anchor_index=0)
            problems += self._check_sequence(seq, frames)
            try:
                clip.add_label(0, LabelRef(self._label_file(seq, frames[0], 0), LabelKind.FINE))
            except DataError as error:
                problems.append(error)
            clips.append(clip)
        return clips, problems

    def sequence_ground_truth(self, clip: Clip) -> dict[int, Path]:
        """Two-class label maps of every frame of ``clip`` that has a mask (offset → path).

        Raises `DataError` for a mask that cannot be decoded or whose size differs from its frame's.
        """
        masks = self.mask_paths(clip.clip_id)
        frames = self.frame_paths(clip.clip_id)
        return {
            index - clip.anchor_index: self._label_file(clip.clip_id, frames[index], index)
            for index, mask in enumerate(masks)
            if mask is not None
        }

    def _check_sequence(self, seq: str, frames: list[Path]) -> list[DataError]:
        """Problems of one sequence found from names and headers alone."""
        problems: list[DataError] = []
        stems = [frame.stem for frame in frames]
        known = set(stems)
        if all(stem.isdigit() for stem in stems):
            numbers = [int(stem) for stem in stems]
            have = set(numbers)
            width = len(stems[0])
            for number in range(numbers[0], numbers[-1] + 1):
                if number not in have:
                    missing = self.image_dir / seq / f"{number:0{width}d}{frames[0].suffix}"
                    problems.append(DataError(missing, f"missing frame of sequence {seq!r}"))
                    known.add(missing.stem)  # its mask, if any, needs no second report
        mask_folder = self.mask_dir / seq
        if mask_folder.is_dir():
            for mask in sorted(mask_folder.glob(f"*{MASK_EXTENSION}")):
                if mask.stem not in known:
                    problems.append(DataError(mask, f"mask has no frame in {self.image_dir / seq}"))
        try:
            size = _image_size(frames[0])
        except DataError as error:
            return [*problems, error]
        for frame, mask in zip(frames, self.mask_paths(seq), strict=True):
            for path, what in ((frame, "frame"), (mask, "mask")):
                if path is None:
                    continue
                try:
                    found = _image_size(path)
                except DataError as error:
                    problems.append(error)
                    continue
                if found != size:
                    problems.append(
                        DataError(
                            path,
                            f"{what} size {found[0]}×{found[1]} differs from the sequence's "
                            f"{size[0]}×{size[1]} ({frames[0].name})",
                        )
                    )
        return problems

    def _label_file(self, seq: str, frame: Path, index: int) -> Path:
        """The cached two-class label PNG of frame ``index`` of ``seq``, made from its mask if stale."""
        mask = self.mask_dir / seq / (frame.stem + MASK_EXTENSION)
        if not mask.is_file():
            raise DataError(mask, f"mask of frame {index} of sequence {seq!r} does not exist")
        key = hashlib.sha256(str(self.mask_dir.resolve()).encode()).hexdigest()[:12]
        cached = cache_dir() / "davis_labels" / key / seq / f"{frame.stem}.png"
        if cached.is_file() and cached.stat().st_mtime >= mask.stat().st_mtime:
            return cached
        ids = self.read_mask(mask)
        width, height = _image_size(frame)
        if ids.shape != (height, width):
            raise DataError(
                mask, f"mask size {ids.shape[1]}×{ids.shape[0]} differs from its frame's {width}×{height}"
            )
        write_png_atomic(cached, self.to_label(ids))
        return cached
