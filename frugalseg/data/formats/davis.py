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
`DavisFormat.read_label` decodes a mask into a two-class label map — 0 background, 1 object (any
id), 255 only where a palette mask says void — and `DavisFormat.instance_ids` gives the object ids,
so every object is tracked on its own. MOSE (`MoseFormat`) has the same layout without a resolution
folder; its train masks cover every frame, its valid masks the first frame only, and objects may
first appear after frame 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from frugalseg.data.classes import ClassTable
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind, LabelRef
from frugalseg.data.formats.base import Format, Problem, looks_like, size_problems
from frugalseg.data.io import image_size, read_text
from frugalseg.data.videos import natural_key
from frugalseg.errors import DataError

ALL_SPLIT = "all"
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
MASK_EXTENSION = ".png"
#: `LabelRef.encoding` of a DAVIS mask: object ids (palette or binary PNG), decoded to two classes.
OBJECT_MASK = "object_mask"
OBJECTS = ClassTable(names=("background", "object"), palette=((0, 0, 0), (128, 0, 0)), instance_classes=(1,))


def _holds_folders(folder: Path) -> bool:
    """Whether ``folder`` holds a folder (a resolution folder holds sequences; a sequence, frames).

    Any entry, not the first the file system lists: a stray file first had a DAVIS tree taken for MOSE's.
    """
    with os.scandir(folder) as entries:
        return any(entry.is_dir() and not entry.name.startswith(".") for entry in entries)


def _holds_folders_of_folders(folder: Path) -> bool:
    """Whether the first sub-folder of ``folder`` itself holds folders (``JPEGImages/480p/<seq>/``)."""
    first = next((child for child in sorted(folder.iterdir()) if child.is_dir()), None)
    return first is not None and _holds_folders(first)


def _layout_hint(root: Path) -> str:
    """What to do with a ``root`` without ``JPEGImages/`` that holds frames or videos, else "".

    A folder of clip folders (one sub-folder of frames per clip) becomes DAVIS's layout as its
    ``JPEGImages``; one clip's folder of frames, or video files, are format video's.
    """
    import shlex

    from frugalseg.data.videos import is_video, natural_key

    def frames(folder: Path) -> bool:
        return any(p.suffix.lower() in FRAME_EXTENSIONS for p in folder.iterdir() if p.is_file())

    if not root.is_dir():
        return ""
    if frames(root) or any(is_video(p) for p in root.iterdir()):
        return f"; {root} holds frames or videos of its own: read it with --format video"
    clips = sorted((d for d in root.iterdir() if d.is_dir() and frames(d)), key=lambda d: natural_key(d.name))
    if not clips:
        return ""
    names = ", ".join(d.name for d in clips[:3]) + (f" and {len(clips) - 3} more" if len(clips) > 3 else "")
    link = f"mkdir R && ln -s {shlex.quote(str(root.resolve()))} R/JPEGImages"
    return (
        f"; its sub-folders {names} hold frames, one clip per folder: read them all with --root a new "
        f"folder whose JPEGImages is this one ({link}; then --root R), or one clip with --format video "
        f"--root {clips[0]}"
    )


def other_layout(root: Path, *, flag: bool = True) -> str:
    """``; it looks like camvid (--format camvid)`` for another layout read as DAVIS, else "".

    ``flag=False`` names no flag, for the commands that read no class-label format (`vos`, `annotate`).
    """
    from frugalseg.data.formats.camvid import CamvidFormat
    from frugalseg.data.formats.cityscapes import CityscapesFormat
    from frugalseg.data.formats.idd import IddFormat
    from frugalseg.data.formats.veis import VeisFormat

    others: dict[str, type[Format]] = {
        "cityscapes": CityscapesFormat, "idd": IddFormat, "camvid": CamvidFormat, "veis": VeisFormat
    }  # fmt: skip
    like = [name for name, reader in others.items() if root.is_dir() and reader.looks_like(root)]
    if not like:
        return ""
    return f"; {looks_like(like)}" if flag else f"; it looks like {' or '.join(like)}: a set of class labels"


def _opaque_stroke(rgba: np.ndarray, path: Path) -> np.ndarray:
    """The 0/255 mask of an RGBA mask's opaque pixels (alpha > 0), when they are all of one colour.

    Raises:
        DataError: opaque pixels of several colours (which of them is the object is not known).
    """
    opaque = rgba[..., 3] > 0
    colours = np.unique(rgba[opaque][:, :3], axis=0)
    if len(colours) > 1:
        raise DataError(
            path,
            f"mask has transparent pixels and opaque ones of {len(colours)} colours: save it without "
            "transparency, black background and white object (or a palette PNG of object ids)",
        )
    return np.where(opaque, 255, 0).astype(np.uint8)


#: The most grey levels (besides 0 and void's 255) a grey mask of object ids holds: one with more is a mask
#: whose edges were smoothed (a soft brush, a blur, a resize), each level of the ramp no object of its own.
MAX_GREY_OBJECTS = 32
#: The lowest of the grey levels just under white: beside white (255) in a grey mask they are a 0/255 mask's
#: edge smoothed or its compression noise (a JPEG's, saved again as PNG), not the ids of 128 objects or more.
NEAR_WHITE = 128


def check_one_frame_per_name(frames: list[Path]) -> None:
    """Refuse two frames of one name but their extension (``a.jpg`` and ``a.JPG``, ``a.jpeg``).

    Masks and labels are named after a frame's name without its extension: one label file had held
    both frames' labels, the second overwriting the first.

    Args:
        frames: a sequence's frame files.
    """
    seen: dict[str, Path] = {}
    for frame in frames:
        other = seen.setdefault(frame.stem, frame)
        if other is not frame:
            raise DataError(
                frame,
                f"shares its name with {other.name} but for the extension: masks and labels are named "
                "after a frame's name, so one would hold both; rename or move one",
            )


def first_mask_only(fmt_name: str, masks: list[Path | None]) -> str:
    """Why a VOS set's sequence whose first frame alone has a mask has no others ("" where that is not so)."""
    if fmt_name not in ("davis", "mose") or len(masks) < 2 or masks[0] is None:
        return ""
    if any(mask is not None for mask in masks[1:]):
        return ""
    return (
        ": only its first frame has one, as a VOS validation split ships them (MOSE valid; its server scores "
        "the rest): score or simulate on a split with every mask (MOSE train)"
    )


class DavisFormat(Format):
    """Reads a DAVIS-style folder (DAVIS, MOSE) into one clip per sequence, anchored at frame 0.

    Args:
        root: the data set folder (holding ``JPEGImages`` and ``Annotations``).
        resolution: resolution folder under ``JPEGImages``/``Annotations`` (``480p``, ``Full-Resolution``);
            when it does not exist the sequences are read directly under ``JPEGImages`` (MOSE).
        year: the ``ImageSets`` sub-folder that defines the splits; None takes the last one in
            sorted order (DAVIS 2017 over 2016).
    """

    name = "davis"
    classes = OBJECTS
    object_classes = (1,)

    def __init__(self, root: str | Path, resolution: str = "480p", year: str | None = None) -> None:
        super().__init__(root)
        self.resolution = resolution
        images = self.root / "JPEGImages"
        if not images.is_dir():
            # another data set's layout first (camvid_dev's folders of frames are no clips), then frames'
            hint = other_layout(self.root) or _layout_hint(self.root)
            raise DataError(images, "folder does not exist: not a DAVIS-style data set" + hint)
        self.image_dir = images / resolution if (images / resolution).is_dir() else images
        if self.image_dir == images:
            nested = sorted(d.name for d in images.iterdir() if d.is_dir() and _holds_folders(d))
            if nested and not resolution:  # MOSE's archives: a root each; its API's loaders nest them
                raise DataError(
                    images,
                    f"holds folders of video folders ({', '.join(nested)}), not video folders: MOSE's "
                    "layout is JPEGImages/<video>/ (each archive's train/, valid/ a root); `vos fit` reads "
                    f"this one with --data.format davis --data.resolution {nested[0]}",
                )
            if nested:
                raise DataError(
                    images, f"no {resolution!r} folder; resolution folders found: {', '.join(nested)}"
                )
        annotations = self.root / "Annotations"
        self.mask_dir = annotations / resolution if (annotations / resolution).is_dir() else annotations
        self.split_dir = self._split_dir(year)

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """A DAVIS tree has ``JPEGImages/`` and ``Annotations/``, the frames under a resolution folder."""
        images = root / "JPEGImages"
        return images.is_dir() and (root / "Annotations").is_dir() and _holds_folders_of_folders(images)

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
        names, problems = self._listed_sequences(split)
        if problems:
            raise DataError(problems[0].path, problems[0].message)
        return names

    def _listed_sequences(self, split: str) -> tuple[list[str], list[Problem]]:
        """The sequences of ``split`` with a frame folder, and a problem for each listed one without."""
        splits = self.splits()
        if split not in splits:
            raise DataError(self.root, f"split {split!r} does not exist; splits found: {', '.join(splits)}")
        if self.split_dir is None:
            return sorted(d.name for d in self.image_dir.iterdir() if d.is_dir()), []
        listing = self.split_dir / f"{split}.txt"
        names: set[str] = set()
        problems = []
        for number, line in enumerate(read_text(listing).splitlines(), start=1):
            words = line.split()
            if not words:
                continue
            # DAVIS 2016 lists frame and mask paths; 2017 and MOSE a name, which may hold spaces
            name = Path(words[0]).parent.name if "/" in words[0] else line.strip()
            if (self.image_dir / name).is_dir():
                names.add(name)
            else:
                absent = f"line {number}: sequence {name!r} has no frame folder under {self.image_dir}"
                problems.append(Problem(listing, absent))
        return sorted(names), problems

    def frame_paths(self, seq: str) -> list[Path]:
        """The frames of sequence ``seq`` in time order: by number where every name is one, else naturally.

        Natural order (`natural_key`) puts ``frame_2`` before ``frame_10``, as cameras and ffmpeg number them.
        A name beside numbered frames that is no number (``00004 copy.jpg``) is refused.
        """
        folder = self.image_dir / seq
        if not folder.is_dir():
            raise DataError(folder, f"frame folder of sequence {seq!r} does not exist")
        frames = sorted(
            (p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS),
            key=lambda p: natural_key(p.name),
        )
        if not frames:
            raise DataError(folder, f"sequence {seq!r} has no frames ({', '.join(FRAME_EXTENSIONS)})")
        numbered = [frame for frame in frames if frame.stem.isdigit()]
        if numbered and len(numbered) < len(frames):  # a stray copy had become a frame in the middle
            odd = next(frame for frame in frames if not frame.stem.isdigit())
            raise DataError(
                odd,
                f"not a numbered frame, beside the {len(numbered)} numbered frames of sequence {seq!r}: "
                "move it out of the folder (it would be taken for a frame)",
            )
        if numbered:  # numbers, padded or not
            frames.sort(key=lambda frame: int(frame.stem))
        check_one_frame_per_name(frames)
        return frames

    def numbered_frame_paths(self, seq: str) -> list[Path]:
        """`frame_paths` where frame N is the file numbered N (``00012.jpg`` is frame 12): the loop's frames.

        Frames named otherwise than by number keep their order.

        Raises:
            DataError: naming the first missing frame file of a numbered sequence, since a gap would
                shift every later frame onto the wrong file.
        """
        frames = self.frame_paths(seq)
        if not all(frame.stem.isdigit() for frame in frames):
            return frames
        missing = next((i for i, frame in enumerate(frames) if int(frame.stem) != i), None)
        if missing is not None:
            name = f"{missing:0{len(frames[0].stem)}d}{frames[0].suffix}"
            raise DataError(
                frames[0].parent / name,
                f"frame {missing} of sequence {seq!r} is missing: frames are their files' numbers, and "
                "a gap would shift every later frame onto the wrong file (--format video reads a folder of "
                "frames numbered otherwise, from 1 say, in its order)",
            )
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
        """An H×W uint8 map of object ids (0 background) from a palette or binary mask PNG (`decode_mask`)."""
        return DavisFormat.decode_mask(path)[0]

    @staticmethod
    def decode_mask(path: str | Path) -> tuple[np.ndarray, bool]:
        """The object ids of a palette or binary mask PNG, and whether it was black and white (0/255).

        Palette PNGs give their indices as they are. Grey-level PNGs holding only 0 and 255 are
        binary masks (255 → object 1); other grey-level PNGs are taken to hold object ids directly. An
        RGB(A) PNG whose three channels are equal everywhere (a paint program's black-and-white mask) is
        read as the grey-level one. An RGBA PNG whose transparency varies is a stroke on a clear layer:
        its opaque pixels are object 1 when they are of one colour (black or white), and refused otherwise.
        A JPEG, or a grey mask of more than `MAX_GREY_OBJECTS` levels (a soft edge), is refused.
        """
        path = Path(path)
        image_size(path)  # exists, readable, not larger than frugalseg decodes
        mask: np.ndarray
        try:
            with Image.open(path) as image:
                mode = image.mode
                if image.format == "JPEG":  # its compression blurs the edges into other ids
                    raise DataError(
                        path,
                        "a JPEG mask: its compression blurs the edges into other ids; save the mask as a PNG",
                    )
                if mode == "RGBA" and image.getextrema()[3][0] != image.getextrema()[3][1]:
                    mode, mask = "L", _opaque_stroke(np.array(image, dtype=np.uint8), path)
                elif mode in ("RGB", "RGBA"):
                    colours = np.array(image.convert("RGB"), dtype=np.uint8)
                    if not (colours == colours[..., :1]).all():
                        raise DataError(
                            path,
                            f"mask must be a palette or grey-level PNG of object ids, got PIL mode {mode!r} "
                            "with colours: save it as a palette PNG, or black background and white object",
                        )
                    mode, mask = "L", colours[..., 0].copy()
                elif mode in ("I;16", "I;16B", "I"):  # it is grey-level: what is wrong is its depth
                    raise DataError(
                        path,
                        f"a 16-bit mask (PIL mode {mode!r}): object ids are 8-bit (1–254, 255 void); save "
                        "it as an 8-bit palette or grey-level PNG",
                    )
                elif mode not in ("P", "L", "1"):
                    raise DataError(
                        path,
                        f"mask must be a palette or grey-level PNG of object ids, got PIL mode {mode!r}",
                    )
                else:
                    mask = np.array(image.convert("L") if mode == "1" else image, dtype=np.uint8)
        except FileNotFoundError as err:
            raise DataError(path, "file does not exist") from err
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(path, f"cannot decode mask ({err})") from err
        binary = mode != "P" and mask.max(initial=0) == 255 and not np.isin(mask, (0, 255), invert=True).any()
        if binary:
            mask = (mask == 255).astype(np.uint8)
        elif mode != "P":
            counts = np.bincount(mask.ravel(), minlength=256)
            levels = int(np.count_nonzero(counts[1:IGNORE_INDEX]))
            near_white = bool(counts[IGNORE_INDEX] and counts[NEAR_WHITE:IGNORE_INDEX].any())
            if levels > MAX_GREY_OBJECTS or near_white:
                kind = (
                    "compressed (a JPEG saved as PNG) or soft-edged"
                    if near_white
                    else "soft-edged (anti-aliased)"
                )
                raise DataError(
                    path,
                    f"{levels} grey levels{', some just under white' if near_white else ''}: a {kind} mask, "
                    "not object ids; save it with hard edges (0 background, one grey level per object; for "
                    "one object, every pixel over 127 white)",
                )
        return mask, binary

    @staticmethod
    def to_label(mask: np.ndarray) -> np.ndarray:
        """The two-class label map of an object-id mask: 0 background, 1 any object, 255 void."""
        label = (mask > 0).astype(np.uint8)
        label[mask == IGNORE_INDEX] = IGNORE_INDEX
        return label

    def scan(self, split: str) -> tuple[list[Clip], list[Problem]]:
        """All clips of ``split`` and every problem found on the way, without stopping.

        Checks from the file headers that every frame and mask has the size of the sequence's
        first frame, that every mask has its frame, and that numbered frames have no gap (a gap is a
        warning: the frames that exist are used); a frame without a mask between two masked frames
        is a warning too (evaluation needs every mask; a first mask alone is the semi-supervised
        layout). A sequence without frames yields no clip; one whose first mask is missing yields a
        clip without a label.
        """
        clips: list[Clip] = []
        sequences, problems = self._listed_sequences(split)
        problems += [
            Problem(entry, f"is a file, not a folder of frames: sequence {entry.name!r} was not read")
            for entry in (sorted(self.image_dir.iterdir()) if self.split_dir is None else [])
            if entry.is_file() and (self.mask_dir / entry.name).is_dir()  # its masks' folder says it is one
        ]
        unlisted = (
            sorted(self.mask_dir.iterdir()) if self.split_dir is None and self.mask_dir.is_dir() else []
        )
        problems += [
            Problem(
                folder,
                f"masks of a sequence {folder.name!r} without frames in {self.image_dir}",
                warning=True,
            )
            for folder in unlisted
            if folder.is_dir() and not (self.image_dir / folder.name).exists()
        ]
        for seq in sequences:
            try:
                frames = self.frame_paths(seq)
            except DataError as error:
                problems.append(Problem.from_error(error))
                continue
            gaps, sequence_problems = self._check_sequence(seq, frames)
            problems += sequence_problems
            if gaps:
                frames = sorted([*frames, *gaps], key=lambda path: path.stem)
            missing = frozenset(index for index, path in enumerate(frames) if path in gaps)
            clip = Clip(clip_id=seq, split=split, frames=frames, anchor_index=0, missing=missing)
            mask = self._mask_path(seq, frames[0])
            if mask.is_file():
                clip.add_label(0, LabelRef(mask, LabelKind.FINE, OBJECT_MASK))
            else:
                absent = f"mask of the first frame of sequence {seq!r} does not exist"
                problems.append(Problem(mask, absent, missing_label=True))
            clips.append(clip)
        return clips, problems

    def decode_label(self, ref: LabelRef) -> np.ndarray:
        """A mask's two-class label map (`to_label` of `read_mask`)."""
        if ref.encoding != OBJECT_MASK:
            return super().decode_label(ref)
        return self.to_label(self.read_mask(ref.path))

    def ground_truth(self, clip: Clip) -> dict[int, LabelRef]:
        """The mask of every frame of ``clip`` that has one, by offset."""
        return {
            index - clip.anchor_index: LabelRef(mask, LabelKind.FINE, OBJECT_MASK)
            for index, frame in enumerate(clip.frames)
            if (mask := self._mask_path(clip.clip_id, frame)).is_file()
        }

    def instance_ids(
        self, clip: Clip, kind: LabelKind = LabelKind.FINE, shape: tuple[int, ...] | None = None
    ) -> np.ndarray | None:
        """The object ids of the anchor's mask (0 background, 255 void → 0), as int32: the label itself."""
        ref = clip.label(0, kind)
        if ref is None or ref.encoding != OBJECT_MASK:
            return None
        ids = self.read_mask(ref.path).astype(np.int32)
        ids[ids == IGNORE_INDEX] = 0
        return ids

    def describe(self) -> dict[str, object]:
        """``run.json`` entry: name, root and the resolution folder."""
        return {**super().describe(), "resolution": self.resolution}

    def _mask_path(self, seq: str, frame: Path) -> Path:
        return self.mask_dir / seq / (frame.stem + MASK_EXTENSION)

    def _check_sequence(self, seq: str, frames: list[Path]) -> tuple[list[Path], list[Problem]]:
        """Missing numbered frames of one sequence and its problems, from names and headers alone."""
        problems: list[Problem] = []
        gaps: list[Path] = []
        stems = [frame.stem for frame in frames]
        known = set(stems)
        if all(stem.isdigit() for stem in stems):
            numbers = [int(stem) for stem in stems]
            have = set(numbers)
            width = len(stems[0])
            for number in range(numbers[0], numbers[-1] + 1):
                if number not in have:
                    missing = self.image_dir / seq / f"{number:0{width}d}{frames[0].suffix}"
                    gaps.append(missing)
                    problems.append(Problem(missing, f"missing frame of sequence {seq!r}", warning=True))
                    known.add(missing.stem)  # its mask, if any, needs no second report
        mask_folder = self.mask_dir / seq
        if mask_folder.is_dir():
            for mask_file in sorted(mask_folder.glob(f"*{MASK_EXTENSION}")):
                if mask_file.stem not in known:
                    problems.append(Problem(mask_file, f"mask has no frame in {self.image_dir / seq}"))
        masks = self.mask_paths(seq)
        masked = [index for index, mask in enumerate(masks) if mask is not None]
        if len(masked) > 1:
            for index in range(masked[0] + 1, masked[-1]):
                if masks[index] is None:
                    path = self._mask_path(seq, frames[index])
                    absent = (
                        f"missing mask of sequence {seq!r}, between masked frames: `vos validate` and `vos "
                        "test` score every frame and refuse the sequence"
                    )
                    problems.append(Problem(path, absent, warning=True))
        try:
            size = image_size(frames[0])
        except DataError as error:
            return gaps, [*problems, Problem.from_error(error)]
        files = [
            (path, what)
            for frame, mask in zip(frames, masks, strict=True)
            for path, what in ((frame, "frame"), (mask, "mask"))
            if path is not None
        ]
        problems += size_problems(files, size, f"the sequence's {size[0]}×{size[1]} ({frames[0].name})")
        return gaps, problems


class MoseFormat(DavisFormat):
    """MOSE: the DAVIS layout without a resolution folder (``JPEGImages/<seq>/``, ``Annotations/<seq>/``).

    Train sequences have a mask on every frame, valid sequences on the first frame only; an object
    may first appear after frame 0 (its id is then absent from the first mask).

    Args:
        root: the data set folder (holding ``JPEGImages`` and ``Annotations``).
    """

    name = "mose"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root, resolution="")

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """A MOSE tree has ``JPEGImages/<seq>/`` frames and ``Annotations/`` with no resolution folder."""
        images = root / "JPEGImages"
        return images.is_dir() and (root / "Annotations").is_dir() and not _holds_folders_of_folders(images)
