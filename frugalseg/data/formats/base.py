"""The `Format` protocol every data set reader implements, and the `Problem` a scan reports.

A format turns an on-disk layout into `Clip` records and decodes the labels it points at. Everything
that reads a data set — ``data check``, the label factory, the datamodules, the quality reports —
goes through this interface, never through a reader's own attributes.
"""

from __future__ import annotations

import copy
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from frugalseg.data.classes import ClassTable
from frugalseg.data.clips import TRAIN_IDS, Clip, LabelKind, LabelRef
from frugalseg.data.io import image_size, read_label
from frugalseg.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file; a warning does not stop the data set from being used.

    Attributes:
        path: the file or folder concerned.
        message: what is wrong with it.
        warning: True for what can be worked around (a frame missing from a partial snippet).
        missing_label: the manual label a clip's layout promises is absent: an error for training
            and propagation, none for work on the frames alone (exporting labels made elsewhere).
        own_files: ``missing_label`` where the frame's own label files promise it (Cityscapes' colour
            PNG without its label map): `data check` names it even where no frame has a label.
    """

    path: Path
    message: str
    warning: bool = False
    missing_label: bool = False
    own_files: bool = False

    def __str__(self) -> str:
        prefix = "warning: " if self.warning else ""
        return f"{prefix}{self.path}: {self.message}"

    @classmethod
    def from_error(cls, error: DataError) -> Problem:
        """The problem a `DataError` describes."""
        return cls(Path(error.path), error.problem)

    def error(self) -> DataError:
        """This problem as an exception to raise."""
        return DataError(self.path, self.message)


def size_problems(files: Iterable[tuple[Path, str]], size: tuple[int, int], reference: str) -> list[Problem]:
    """A problem for each file whose header cannot be read or whose size is not ``size``.

    Args:
        files: the files, each with what it is (``frame``, ``mask``) as its message names it.
        size: the size they must have, as `frugalseg.data.io.image_size` gives it.
        reference: what ``size`` is, as the message ends (``the clip's 854×480``).
    """
    problems = []
    for path, what in files:
        try:
            found = image_size(path)
        except DataError as error:
            problems.append(Problem.from_error(error))
            continue
        if found != size:
            problems.append(Problem(path, f"{what} size {found[0]}×{found[1]} differs from {reference}"))
    return problems


def looks_like(names: list[str]) -> str:
    """``it looks like camvid (--format camvid)``: what a folder of the formats ``names`` is told."""
    return f"it looks like {' or '.join(names)} (--format {names[0]})"


class Format(ABC):
    """A data set layout: its classes, splits and clips, and how its label files are decoded.

    Subclasses set ``name`` and ``classes`` (fixed per format, so a datamodule knows them before
    the data exist) and implement `splits`, `scan` and `looks_like`; they
    override `decode_label` for label files that do not hold train ids, `ground_truth` when more
    frames than the anchors have ground truth, and `instance_ids` when the data set has instances.

    Args:
        root: the data set folder.
    """

    #: The name the format is known by (``--format``, ``data.format``, a store's ``run.json``).
    name: ClassVar[str]
    #: The classes labels are decoded to.
    classes: ClassVar[ClassTable]
    #: Classes scored as objects (J, recall per object) rather than as semantic classes by reports.
    object_classes: ClassVar[tuple[int, ...]] = ()
    #: What an offset of 1 is when it is not the next video frame (CamVid's clips are its labelled stills).
    offset_step: ClassVar[str | None] = None

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, f"data set folder does not exist (format {self.name})")

    @property
    def num_classes(self) -> int:
        """How many classes (train ids 0…num_classes−1, 255 ignore)."""
        return self.classes.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in train-id order."""
        return self.classes.names

    @property
    def palette(self) -> tuple[tuple[int, int, int], ...]:
        """RGB colour of each class."""
        return self.classes.palette

    @classmethod
    @abstractmethod
    def looks_like(cls, root: Path) -> bool:
        """Whether the folder ``root`` has this layout (from folder and file names only)."""

    @abstractmethod
    def splits(self) -> list[str]:
        """Split names, sorted."""

    def default_split(self) -> str:
        """The split a command labels when not told: the only one, else ``train``."""
        splits = self.splits()
        return splits[0] if len(splits) == 1 else "train"

    @abstractmethod
    def scan(self, split: str) -> tuple[list[Clip], list[Problem]]:
        """All clips of ``split`` and every problem found on the way, without stopping.

        A clip whose snippet lacks frames is returned with them in ``Clip.missing`` and a warning
        per missing frame; errors are problems that make a file unusable.
        """

    def clips(self, split: str, *, labelled: bool = True) -> list[Clip]:
        """The clips of ``split``; raises the first error of `scan`, logs its warnings in one line.

        Args:
            split: the split.
            labelled: a clip without its manual label is an error; False takes it as it is (its
                frames, the labels it has), for work that needs only the frames.
        """
        clips, problems = self.scan(split)
        errors = [p for p in problems if not p.warning and (labelled or not p.missing_label)]
        if errors:
            raise errors[0].error()
        warnings = [problem for problem in problems if problem.warning]
        if warnings:
            shown = "; ".join(str(problem.path.name) for problem in warnings[:5])
            more = f" and {len(warnings) - 5} more" if len(warnings) > 5 else ""
            logger.warning(
                "%s (%s, split %s): %d frame(s) missing from partial snippets (%s%s); offsets whose "
                "frames exist are still used",
                self.root,
                self.name,
                split,
                len(warnings),
                shown,
                more,
            )
        return clips

    def read_label(self, ref: LabelRef) -> np.ndarray:
        """The H×W uint8 train-id map (255 ignore) of a label of this data set or of a label store."""
        if ref.encoding == TRAIN_IDS:
            return read_label(ref.path, self.num_classes)
        return self.decode_label(ref)

    def decode_label(self, ref: LabelRef) -> np.ndarray:
        """Decode a label file in this format's own ``ref.encoding`` (formats with one override this)."""
        raise DataError(ref.path, f"format {self.name} cannot decode labels encoded as {ref.encoding!r}")

    def ground_truth(self, clip: Clip) -> dict[int, LabelRef]:
        """Ground-truth labels of the clip's frames by offset, for scoring pseudo-labels.

        By default the manual (fine) labels the clip carries; formats that label more frames than
        their anchors (synthetic streets, DAVIS, CamVid) return those too.
        """
        return {
            offset: ref for offset, refs in clip.labels.items() for ref in refs if ref.kind is LabelKind.FINE
        }

    def instance_ids(
        self, clip: Clip, kind: LabelKind = LabelKind.FINE, shape: tuple[int, ...] | None = None
    ) -> np.ndarray | None:
        """H×W int32 instance ids of the anchor's ``kind`` label (0: no instance), or None without any.

        With ``shape`` (the label's), a map of another size is a `DataError` naming the map's file.
        """
        return None

    def describe(self) -> dict[str, Any]:
        """What a label store records of its data set (``run.json``): the format's name and absolute root.

        Absolute, so that the store is read from any folder (`label report`, `fit`), not only from the one
        the run started in.
        """
        return {"format": self.name, "root": os.path.abspath(self.root)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"


def with_clips(fmt: Format, clips: Callable[..., list[Clip]], **attributes: Any) -> Format:
    """A copy of ``fmt`` whose ``clips(split, *, labelled=True)`` is ``clips``, every other reading its own.

    Args:
        fmt: the data set's reader.
        clips: what the view's ``clips`` returns, from ``fmt``'s own.
        attributes: more attributes of the view (what it shows, for those that key their work by it).
    """
    view = copy.copy(fmt)
    vars(view).update(clips=clips, **attributes)
    return view


def clips_of(fmt: Format, clip_ids: Collection[str]) -> Format:
    """A copy of ``fmt`` whose splits hold only the clips named ``clip_ids``.

    Given to a `LabelSource`'s ``prepare``, it makes the labels of those clips alone.

    Args:
        fmt: the data set's reader.
        clip_ids: the clips the view shows.
    """
    wanted = frozenset(clip_ids)

    def clips(split: str, *, labelled: bool = True) -> list[Clip]:
        return [clip for clip in fmt.clips(split, labelled=labelled) if clip.clip_id in wanted]

    return with_clips(fmt, clips)
