"""VEIS (Virtual Environment for Instance Segmentation) videos → `Clip` records, every frame labelled.

VEIS is the synthetic urban data set rendered with Unity3D by Saleh, Aliakbarian, Salzmann,
Petersson and Alvarez ("Effective Use of Synthetic Data for Urban Scene Semantic Segmentation",
ECCV 2018), made to train models evaluated on Cityscapes and CamVid without real images. The HVSA
paper (``shared/papers/000``, appendix; ``shared/reference/models.md`` §9) annotates its videos
frame by frame and compares with the ground truth of every frame: VEIS images are of higher
resolution than SceneNet's, its objects are detailed (the "bicycle" ground truth is finer than a
polygon annotation), and fully manual annotation reaches 96 % mIoU against it.

**The public on-disk layout could not be established.** No copy of the release, its README or a
reader of it was found in the sources searched (documentation, code and issue indexes, web pages;
the data set page of the paper is not indexed). This reader implements the most likely layout for a
video data set with per-frame class and instance images, and says so: *videos are folders of
frames, with one colour-coded class image per frame and an optional instance image per frame*::

    images/[<split>/]<video>/<frame>.png|jpg     frames, file names sorting in time order
    labels/[<split>/]<video>/<frame>.png         class labels, RGB, Cityscapes colours
    instances/[<split>/]<video>/<frame>.png      optional: instance ids (16- or 8-bit grey,
                                                 0 = none) or one RGB colour per instance

When the folders under ``images/`` hold folders, they are the splits; otherwise every video belongs
to one split, ``all``. Classes are the 19 Cityscapes train classes (the classes the paper trains
and evaluates on): a label colour is decoded with the Cityscapes colour of each of the 34
Cityscapes labels (``cityscapesscripts.helpers.labels``), train classes to their train id and the
others (black void, parking, rail track, guard rail, bridge, tunnel, caravan, trailer, …) to 255;
any other colour is an error naming the file. If the real release differs, only the folder names
and the colour table here need to change.

Clips: one per frame, anchored at it; its frames are those of its video (a numbered frame missing
from a video is a warning and a partial snippet), so any offset of a recipe has a labelled frame,
and `VeisFormat.ground_truth` gives the label of every frame of the clip.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

from frugalseg.data.classes import CITYSCAPES, ClassTable
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind, LabelRef
from frugalseg.data.formats.base import Format, Problem
from frugalseg.data.formats.camvid import decode_colours
from frugalseg.data.io import decode_image
from frugalseg.errors import DataError

FRAMES_DIR = "images"
LABELS_DIR = "labels"
INSTANCES_DIR = "instances"
ALL_SPLIT = "all"
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")
LABEL_EXTENSION = ".png"
#: `LabelRef.encoding` of a VEIS class label: RGB in the Cityscapes colours.
CITYSCAPES_COLOURS = "cityscapes_colours"

VEIS = ClassTable(
    names=CITYSCAPES.names, palette=CITYSCAPES.palette, instance_classes=CITYSCAPES.instance_classes
)


@cache
def cityscapes_colour_table() -> dict[int, int]:
    """Packed RGB → train id of every Cityscapes label colour; colours of non-train labels give 255.

    Two labels share a colour only where one of them has no train id (polegroup and pole, license
    plate and car): the train id wins.
    """
    from cityscapesscripts.helpers.labels import labels

    table: dict[int, int] = {}
    for label in labels:
        r, g, b = label.color
        key = (r << 16) | (g << 8) | b
        train_id = label.trainId if 0 <= label.trainId < IGNORE_INDEX else IGNORE_INDEX
        if table.get(key, IGNORE_INDEX) == IGNORE_INDEX:
            table[key] = train_id
    return table


def read_instance_image(path: Path, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An instance image as H×W int32 ids (0 = none): grey values as they are, RGB colours numbered.

    In an RGB image every colour but black is one instance, numbered 1… in the order of its packed
    colour value. With ``shape``, an image of another size is rejected (it would not fit its label).
    """
    if not path.is_file():
        raise DataError(path, "file does not exist")
    image = decode_image(path, cv2.IMREAD_UNCHANGED)
    if shape is not None and image.shape[:2] != tuple(shape):
        raise DataError(
            path, f"instance image is {image.shape[1]}×{image.shape[0]}, its label {shape[1]}×{shape[0]}"
        )
    if image.ndim == 2:
        return image.astype(np.int32)
    if image.ndim == 3 and image.shape[2] in (3, 4) and image.dtype == np.uint8:
        rgb = image[..., 2::-1].astype(np.int32)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        colours, inverse = np.unique(packed, return_inverse=True)
        ids = np.arange(len(colours), dtype=np.int32) + (0 if colours[0] == 0 else 1)
        instances: np.ndarray = ids[inverse.reshape(packed.shape)]
        return instances
    raise DataError(path, f"instance image must be grey or 8-bit RGB, got shape {image.shape} {image.dtype}")


def _has_subfolders(folder: Path) -> bool:
    """Whether the first sub-folder of ``folder`` itself holds folders (``images/<split>/<video>/``)."""
    first = next((child for child in sorted(folder.iterdir()) if child.is_dir()), None)
    return first is not None and any(child.is_dir() for child in first.iterdir())


class VeisFormat(Format):
    """Reads VEIS videos into one clip per frame, every frame with its class label.

    Args:
        root: the data set folder (``images/``, ``labels/``, optional ``instances/``).
    """

    name = "veis"
    classes = VEIS

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        images = self.root / FRAMES_DIR
        if not images.is_dir():
            raise DataError(images, "folder does not exist: not a VEIS-layout data set")
        self.has_splits = _has_subfolders(images)

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """A VEIS tree has ``images/`` and ``labels/`` whose entries are folders (videos or splits)."""
        images, labels = root / FRAMES_DIR, root / LABELS_DIR
        if not (images.is_dir() and labels.is_dir()):
            return False
        first = next((child for child in sorted(images.iterdir())), None)
        return first is not None and first.is_dir()

    def splits(self) -> list[str]:
        """The folders under ``images/`` when they hold videos, else ``["all"]``."""
        if not self.has_splits:
            return [ALL_SPLIT]
        return sorted(child.name for child in (self.root / FRAMES_DIR).iterdir() if child.is_dir())

    def videos(self, split: str) -> list[str]:
        """Video names of ``split``, sorted."""
        return sorted(child.name for child in self._folder(FRAMES_DIR, split).iterdir() if child.is_dir())

    def scan(self, split: str) -> tuple[list[Clip], list[Problem]]:
        """All clips of ``split`` and every problem found on the way (`Format.scan`).

        A numbered frame missing inside a video is a warning (a partial snippet); a label without
        its frame, a label folder without its video and a video without frames are errors. A frame
        without a label is a clip without one.
        """
        splits = self.splits()
        if split not in splits:
            raise DataError(
                self.root, f"split {split!r} does not exist; splits found: {', '.join(splits) or 'none'}"
            )
        clips: list[Clip] = []
        problems: list[Problem] = []
        labels_folder = self._folder(LABELS_DIR, split)
        if labels_folder.is_dir():
            videos = set(self.videos(split))
            for folder in sorted(p for p in labels_folder.iterdir() if p.is_dir() and p.name not in videos):
                problems.append(Problem(folder, f"labels of a video with no frame folder in {FRAMES_DIR}/"))
        for video in self.videos(split):
            folder = self._folder(FRAMES_DIR, split) / video
            frames = sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS
            )
            labels = self._folder(LABELS_DIR, split) / video
            stems = {frame.stem for frame in frames}
            if labels.is_dir():
                for label in sorted(labels.glob(f"*{LABEL_EXTENSION}")):
                    if label.stem not in stems:
                        problems.append(Problem(label, f"label has no frame in {folder}"))
            if not frames:
                problems.append(
                    Problem(folder, f"video {video!r} has no frames ({', '.join(FRAME_EXTENSIONS)})")
                )
                continue
            frames, missing = fill_gaps(frames)
            for index in sorted(missing):
                problems.append(Problem(frames[index], f"missing frame of video {video!r}", warning=True))
            for index, frame in enumerate(frames):
                if index in missing:
                    continue
                clip = Clip(
                    f"{video}/{frame.stem}",
                    split,
                    frames,  # shared by the clips of the video
                    index,
                    missing=frozenset(m - index for m in missing),
                    shared_frames=True,
                )
                ref = self._label_ref(frame)
                if ref is not None:
                    clip.add_label(0, ref)
                clips.append(clip)
        return clips, problems

    def decode_label(self, ref: LabelRef) -> np.ndarray:
        """A colour label decoded with the Cityscapes colours (non-train labels → 255)."""
        if ref.encoding != CITYSCAPES_COLOURS:
            return super().decode_label(ref)
        return decode_colours(ref.path, cityscapes_colour_table(), what="Cityscapes label colour")

    def ground_truth(self, clip: Clip) -> dict[int, LabelRef]:
        """The label of every frame of ``clip`` that has one, by offset."""
        return {
            offset: ref
            for offset in clip.present_offsets
            if (ref := self._label_ref(clip.frame_path(offset))) is not None
        }

    def instance_ids(
        self, clip: Clip, kind: LabelKind = LabelKind.FINE, shape: tuple[int, ...] | None = None
    ) -> np.ndarray | None:
        """The instance image of the anchor frame (``instances/…``), or None without one."""
        if kind is not LabelKind.FINE:
            return None
        frame = clip.frame_path(0)
        path = self._mirror(INSTANCES_DIR, frame)
        return read_instance_image(path, shape) if path.is_file() else None

    def _folder(self, top: str, split: str) -> Path:
        return self.root / top / split if self.has_splits else self.root / top

    def _mirror(self, top: str, frame: Path) -> Path:
        """The file of ``top`` (labels, instances) for ``frame``."""
        relative = frame.relative_to(self.root / FRAMES_DIR)
        return (self.root / top / relative).with_suffix(LABEL_EXTENSION)

    def _label_ref(self, frame: Path) -> LabelRef | None:
        path = self._mirror(LABELS_DIR, frame)
        return LabelRef(path, LabelKind.FINE, CITYSCAPES_COLOURS) if path.is_file() else None


def fill_gaps(frames: list[Path]) -> tuple[list[Path], set[int]]:
    """Frames with the numbers missing between the first and last one inserted, and their indices.

    Only when every stem is a number (``000123``); other names are taken in sorted order as they are.
    A missing frame's path is where it would be (same folder, width and suffix as the first frame).
    """
    stems = [frame.stem for frame in frames]
    if not all(stem.isdigit() for stem in stems):
        return frames, set()
    by_number = {int(frame.stem): frame for frame in frames}
    width, suffix = len(stems[0]), frames[0].suffix
    filled: list[Path] = []
    missing: set[int] = set()
    for number in range(min(by_number), max(by_number) + 1):
        if number in by_number:
            filled.append(by_number[number])
        else:
            missing.add(len(filled))
            filled.append(frames[0].with_name(f"{number:0{width}d}{suffix}"))
    return filled, missing
