"""Class tables: the names, colours and ids of a data set's classes, and Cityscapes' table, read once.

Every format has a `ClassTable`; models, metrics, prediction writers and reports take names,
palette and the number of classes from it. The Cityscapes table (19 train classes) comes from
``cityscapesscripts.helpers.labels``, the official definition, and is read in this module only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.errors import ConfigError, DataError

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ClassTable:
    """The classes a data set trains on, in train-id order.

    Attributes:
        names: class names; train id ``i`` is ``names[i]``.
        palette: RGB colour of each class.
        instance_classes: train ids whose objects are instances (cars, people): clicks and SAM
            objects go one per instance of these, one per connected region of the others.
        label_ids: the data set's own label id of each train id, where it has one (Cityscapes label
            ids, what its benchmark server takes); None when train ids are the data set's ids.
        void_ids: the data set's label ids of no train class (Cityscapes' ego vehicle, out of roi…),
            read as ignore (as is 255); a file holding an id of none of these is refused.
    """

    names: tuple[str, ...]
    palette: tuple[RGB, ...]
    instance_classes: tuple[int, ...] = ()
    label_ids: tuple[int, ...] | None = None
    void_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.names) != len(self.palette):
            raise ValueError(f"{len(self.names)} class names but {len(self.palette)} palette colours")
        if not 1 <= len(self.names) < IGNORE_INDEX:
            raise ValueError(f"a class table holds 1…{IGNORE_INDEX - 1} classes, got {len(self.names)}")

    @property
    def num_classes(self) -> int:
        """How many classes (train ids 0…num_classes−1; 255 is ignore)."""
        return len(self.names)

    @cached_property
    def label_id_to_train_id(self) -> np.ndarray:
        """256-entry table from the data set's label ids to train ids (unknown ids give 255)."""
        table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        if self.label_ids is None:
            table[: self.num_classes] = np.arange(self.num_classes)
        else:
            table[list(self.label_ids)] = np.arange(self.num_classes)
        return table

    def check_label_ids(self, label: np.ndarray, path: str | Path) -> None:
        """Raise `DataError` naming ``path`` when ``label`` holds label ids no class or void has."""
        known = np.zeros(256, dtype=bool)
        known[[*(self.label_ids or range(self.num_classes)), *self.void_ids, IGNORE_INDEX]] = True
        present = np.bincount(label.ravel(), minlength=256).astype(bool)
        unknown = np.flatnonzero(present & ~known)
        if unknown.size:
            valid = np.flatnonzero(known)
            raise DataError(
                path,
                f"label ids {unknown.tolist()} belong to no class (the data set's ids are "
                f"{valid.min()}…{valid[-2]} and {IGNORE_INDEX}): not a label-id file of this data set",
            )

    @cached_property
    def train_id_to_label_id(self) -> np.ndarray:
        """256-entry table from train ids to the data set's label ids (0 for ignore and unknown)."""
        table = np.zeros(256, dtype=np.uint8)
        table[: self.num_classes] = (
            self.label_ids if self.label_ids is not None else np.arange(self.num_classes)
        )
        return table

    def ids(self, names: list[str] | tuple[str, ...]) -> list[int]:
        """Train ids of ``names``; an unknown name raises `ValueError` listing the known ones."""
        unknown = [name for name in names if name not in self.names]
        if unknown:
            raise ConfigError("classes", f"unknown classes {unknown}; classes are {', '.join(self.names)}")
        return [self.names.index(name) for name in names]


def _cityscapes() -> ClassTable:
    """The 19 Cityscapes train classes from the official label definitions."""
    from cityscapesscripts.helpers.labels import labels

    train = sorted((label for label in labels if 0 <= label.trainId < IGNORE_INDEX), key=lambda x: x.trainId)
    return ClassTable(
        names=tuple(label.name for label in train),
        palette=tuple((int(label.color[0]), int(label.color[1]), int(label.color[2])) for label in train),
        instance_classes=tuple(label.trainId for label in train if label.hasInstances),
        label_ids=tuple(int(label.id) for label in train),
        void_ids=tuple(int(label.id) for label in labels if label.id >= 0 and label not in train),
    )


CITYSCAPES = _cityscapes()


def seeded_palette(count: int, seed: int = 0) -> tuple[RGB, ...]:
    """``count`` distinct-looking colours drawn from a seeded generator (for classes without colours)."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(count, 3))
    return tuple((int(r), int(g), int(b)) for r, g, b in colours)
