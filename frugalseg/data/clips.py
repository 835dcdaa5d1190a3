"""The Clip record and the label kinds that every format, recipe and loss agrees on."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

IGNORE_INDEX = 255
#: Where a clip's anchor frame is, as messages tell a person.
ANCHOR_EXPLAINED = "offset 0: a video's first frame, DAVIS's first, Cityscapes' gtFine frame"


class LabelKind(str, Enum):
    """Where a training label came from; a batch carries it so the loss can be chosen per sample."""

    FINE = "fine"
    PSEUDO = "pseudo"
    COARSE = "coarse"
    REFINED_COARSE = "refined_coarse"
    CLICKS = "clicks"
    BOXES = "boxes"

    @property
    def code(self) -> int:
        """Stable integer code used in batches (`batch["kind"]`): the kind's place in the enum."""
        return list(LabelKind).index(self)


#: How a label file encodes its classes; `Format.read_label` decodes every one it produces.
TRAIN_IDS = "train_ids"


@dataclass(frozen=True)
class LabelRef:
    """One label map on disk for one frame of a clip.

    Attributes:
        path: the label file.
        kind: where the label came from.
        encoding: how the file holds its classes: ``train_ids`` (a PNG of class indices, what label
            stores write) or a format's own encoding, which that format's ``read_label`` decodes.
    """

    path: Path
    kind: LabelKind
    encoding: str = TRAIN_IDS


@dataclass
class Clip:
    """A video snippet: ordered frames and the labels some of them carry.

    Offsets are relative to the anchor frame (the manually annotated one; Cityscapes frame 19 of 30
    is offset 0), so offset ``o`` is ``frames[anchor_index + o]``. ``missing`` holds the offsets
    whose frame file the data set lacks (a partial snippet): their paths are where the frame would
    be; `has_frame` tells them apart. ``shared_frames`` marks clips whose frames other clips hold
    too (CamVid, VEIS: every labelled still anchors a clip over its whole sequence), so that labels
    made for a frame from different anchors are kept apart.
    """

    clip_id: str
    split: str
    frames: list[Path]
    anchor_index: int
    labels: dict[int, list[LabelRef]] = field(default_factory=dict)
    missing: frozenset[int] = frozenset()
    shared_frames: bool = False

    def frame_path(self, offset: int) -> Path:
        """Path of the frame at ``offset`` from the anchor; raises `IndexError` outside the clip."""
        index = self.anchor_index + offset
        if not 0 <= index < len(self.frames):
            lo, hi = -self.anchor_index, len(self.frames) - 1 - self.anchor_index
            raise IndexError(
                f"clip {self.clip_id}: offset {offset:+d} lies outside the clip (offsets {lo:+d}…{hi:+d})"
            )
        return self.frames[index]

    def has_frame(self, offset: int) -> bool:
        """Whether the clip has a frame file at ``offset``."""
        return (
            -self.anchor_index <= offset < len(self.frames) - self.anchor_index and offset not in self.missing
        )

    def nearest_frame(self, offset: int, towards: int) -> int:
        """The offset of the frame nearest ``offset`` on the way to ``towards`` that exists.

        A window of past frames reads, for a missing or out-of-clip frame, the next frame that exists
        towards its target (``towards`` must exist), so a partial snippet still gives full windows.
        """
        step = 1 if towards >= offset else -1
        for candidate in range(offset, towards + step, step):
            if self.has_frame(candidate):
                return candidate
        raise IndexError(f"clip {self.clip_id}: no frame between offsets {offset:+d} and {towards:+d}")

    def label(self, offset: int, kind: LabelKind) -> LabelRef | None:
        """The label of ``kind`` at ``offset``, or None when the clip has none."""
        for ref in self.labels.get(offset, []):
            if ref.kind == kind:
                return ref
        return None

    def require_label(self, offset: int, kind: LabelKind) -> LabelRef:
        """The label of ``kind`` at ``offset``; raises `KeyError` when the clip has none."""
        ref = self.label(offset, kind)
        if ref is None:
            raise KeyError(f"clip {self.clip_id}: no {kind.value} label at offset {offset:+d}")
        return ref

    def add_label(self, offset: int, ref: LabelRef) -> None:
        """Attach ``ref`` as a label of the frame at ``offset``."""
        self.labels.setdefault(offset, []).append(ref)

    def drop_labels(self, kind: LabelKind) -> None:
        """Forget every ``kind`` label of the clip (another source gives them)."""
        for offset, refs in self.labels.items():
            self.labels[offset] = [ref for ref in refs if ref.kind is not kind]

    @property
    def offsets(self) -> range:
        """All offsets of the snippet, present or missing."""
        return range(-self.anchor_index, len(self.frames) - self.anchor_index)

    @property
    def present_offsets(self) -> list[int]:
        """The offsets whose frame exists, in time order."""
        return [offset for offset in self.offsets if offset not in self.missing]


def offsets_shown(found: list[tuple[str, int]]) -> str:
    """``a +3, b -10, …``: the first five (clip id, offset) of ``found``, as messages list them."""
    return ", ".join(f"{clip} {offset:+d}" for clip, offset in found[:5]) + (", …" if len(found) > 5 else "")
