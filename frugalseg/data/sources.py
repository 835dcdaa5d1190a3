"""The `LabelSource` contract: where the training labels of one kind come from.

A recipe asks for labels of some kinds (``pseudo`` at ±10, ``clicks`` at the anchor, …); a source
provides them for a split — read from a label store that any labelling run wrote, or made on demand
(flow propagation, simulated clicks) into a store of its own. The datamodule is given its sources
(in a config through ``class_path``) and only calls this interface, so it never needs to know
which engine made a label. The implementations live in `frugalseg.autolabel.sources`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, ClassVar

from frugalseg.data.clips import Clip, LabelKind, LabelRef
from frugalseg.data.formats.base import Format

#: The option of ``data.labels`` that gives each kind of label a recipe may ask for (no option trains on
#: the other kinds, such as the masks of ``label boxes``).
SOURCE_OPTIONS = {
    LabelKind.FINE: "manual",
    LabelKind.PSEUDO: "pseudo",
    LabelKind.CLICKS: "clicks",
    LabelKind.REFINED_COARSE: "refined",
}


class LabelSource(ABC):
    """Labels of one kind for the clips of a split."""

    #: Whether `prepare` makes labels (flow propagation, simulated clicks); a source that only reads does not.
    makes_labels: ClassVar[bool] = False

    @property
    @abstractmethod
    def kind(self) -> LabelKind:
        """The label kind this source provides."""

    def prepare(self, fmt: Format, split: str, offsets: Sequence[int]) -> str | None:
        """Make the labels of ``split`` at ``offsets`` that are still missing (run once, before training).

        Returns a line for the log, or None when there was nothing to make. Sources that only read
        keep this default.
        """
        return None

    @abstractmethod
    def attach(self, fmt: Format, split: str, clips: Sequence[Clip]) -> int:
        """Add a `LabelRef` of `kind` to ``clips`` for every label the source holds; returns how many.

        Raises `frugalseg.errors.LabelStoreError` when the labels cannot belong to these clips (another
        data set or split, frames of other names).
        """

    def clicks(self, ref: LabelRef) -> int | None:
        """How many clicks a ``clicks`` label was made from (its annotation cost), None if unknown."""
        return None

    def booked_seconds(self, split: str, clip_ids: Collection[str]) -> float | None:
        """The human seconds a person booked on this source's labels of ``clip_ids`` of ``split``.

        None where the source books none (labels made by an engine, or priced per label by their kind);
        a store an annotation session or loop wrote books the seconds spent on each frame.
        """
        return None

    def describe(self) -> dict[str, Any]:
        """A JSON-able record of the source (its class, kind and plain settings), kept in checkpoints."""
        plain = {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(self).items()
            if not key.startswith("_") and isinstance(value, str | int | float | bool | Path | type(None))
        }
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "kind": self.kind.value,
            **plain,
        }
