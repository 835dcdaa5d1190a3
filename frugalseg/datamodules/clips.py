"""The Clip record and the label kinds that every format, recipe and loss agrees on."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

IGNORE_INDEX = 255


class LabelKind(str, Enum):
    """Where a training label came from; a batch carries it so the loss can be chosen per sample."""

    FINE = "fine"
    PSEUDO = "pseudo"
    COARSE = "coarse"
    REFINED_COARSE = "refined_coarse"
    CLICKS = "clicks"
    BOXES = "boxes"

    @property
    def index(self) -> int:
        """Stable integer code used in batches (`batch["kind"]`)."""
        return list(LabelKind).index(self)

    @classmethod
    def from_index(cls, index: int) -> LabelKind:
        return list(LabelKind)[index]


@dataclass(frozen=True)
class LabelRef:
    """One label map on disk for one frame of a clip."""

    path: Path
    kind: LabelKind


@dataclass
class Clip:
    """A video snippet: ordered frames and the labels some of them carry.

    Offsets are relative to the anchor frame (the manually annotated one; Cityscapes frame 19 of 30
    is offset 0), so offset ``o`` is ``frames[anchor_index + o]``.
    """

    clip_id: str
    split: str
    frames: list[Path]
    anchor_index: int
    labels: dict[int, list[LabelRef]] = field(default_factory=dict)

    def frame_path(self, offset: int) -> Path:
        """Path of the frame at ``offset`` from the anchor; raises if it lies outside the clip."""
        index = self.anchor_index + offset
        if not 0 <= index < len(self.frames):
            lo, hi = -self.anchor_index, len(self.frames) - 1 - self.anchor_index
            raise IndexError(
                f"clip {self.clip_id}: offset {offset:+d} lies outside the clip (offsets {lo:+d}…{hi:+d})"
            )
        return self.frames[index]

    def label(self, offset: int, kind: LabelKind) -> LabelRef | None:
        """The label of ``kind`` at ``offset``, or None when the clip has none."""
        for ref in self.labels.get(offset, []):
            if ref.kind == kind:
                return ref
        return None

    def add_label(self, offset: int, ref: LabelRef) -> None:
        self.labels.setdefault(offset, []).append(ref)

    @property
    def offsets(self) -> range:
        """All offsets that have a frame."""
        return range(-self.anchor_index, len(self.frames) - self.anchor_index)
