"""Cityscapes on-disk layout → `Clip` records.

Each annotated frame F of a city sequence becomes one clip: the 30-frame snippet F−19 … F+10 from
``leftImg8bit_sequence`` (the annotated frame is offset 0), or, when the data set has no sequence
folder, the single ``leftImg8bit`` image. ``gtFine`` gives the ``fine`` label and ``gtCoarse`` the
``coarse`` label of offset 0. ``gtFine_sequence`` (written by the synthetic generator) holds ground
truth for every frame, used only to score pseudo-labels.
"""

from __future__ import annotations

import re
from pathlib import Path

from frugalseg.datamodules.clips import Clip, LabelKind, LabelRef
from frugalseg.datamodules.io import DataError

FRAME_SUFFIX = "_leftImg8bit.png"
_NAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d{6})_(?P<frame>\d{6})_(?P<rest>.+)\.png$")

# Label files of one kind, most preferred first: train ids need no mapping.
_FINE_SUFFIXES = ("_gtFine_labelTrainIds.png", "_gtFine_labelIds.png")
_COARSE_SUFFIXES = ("_gtCoarse_labelTrainIds.png", "_gtCoarse_labelIds.png")

FrameKey = tuple[str, str, int]  # (city, sequence, frame number)


def _train_classes() -> list[tuple[str, tuple[int, int, int]]]:
    """The 19 Cityscapes train classes (name, RGB colour) in train-id order."""
    from cityscapesscripts.helpers.labels import labels

    by_train_id = {label.trainId: label for label in labels if 0 <= label.trainId < 255}
    return [(by_train_id[i].name, tuple(by_train_id[i].color)) for i in range(len(by_train_id))]


def _stem(key: FrameKey) -> str:
    city, seq, frame = key
    return f"{city}_{seq}_{frame:06d}"


class CityscapesFormat:
    """Reads a folder in the Cityscapes layout into clips, one per annotated frame.

    ``frames_before``/``frames_after`` give the snippet around the annotated frame (19 and 10 in
    Cityscapes: frame 19 of 30); the synthetic generator may write shorter snippets.
    """

    num_classes = 19
    class_names: tuple[str, ...] = tuple(name for name, _ in _train_classes())
    palette: tuple[tuple[int, int, int], ...] = tuple(color for _, color in _train_classes())

    def __init__(self, root: str | Path, frames_before: int = 19, frames_after: int = 10) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "data set folder does not exist")
        if frames_before < 0 or frames_after < 0:
            raise ValueError(
                f"frames_before and frames_after must be ≥ 0, got {frames_before}, {frames_after}"
            )
        self.frames_before = frames_before
        self.frames_after = frames_after

    @property
    def has_sequences(self) -> bool:
        """Whether the data set has video snippets (else each image is a one-frame clip)."""
        return (self.root / "leftImg8bit_sequence").is_dir()

    def splits(self) -> list[str]:
        """Split names found under the image and label folders, sorted."""
        found: set[str] = set()
        for top in ("leftImg8bit_sequence", "leftImg8bit", "gtFine", "gtCoarse"):
            folder = self.root / top
            if folder.is_dir():
                found.update(child.name for child in folder.iterdir() if child.is_dir())
        return sorted(found)

    def clips(self, split: str) -> list[Clip]:
        """All clips of ``split`` sorted by clip id; raises `DataError` on the first problem."""
        clips, problems = self.scan(split)
        if problems:
            raise problems[0]
        return clips

    def scan(self, split: str) -> tuple[list[Clip], list[DataError]]:
        """All clips of ``split`` and every problem found on the way, without stopping.

        A clip whose snippet lacks frames is still returned (with the expected paths) so a checker
        can go on to inspect its other files; `clips` refuses it.
        """
        splits = self.splits()
        if split not in splits:
            raise DataError(
                self.root, f"split {split!r} does not exist; splits found: {', '.join(splits) or 'none'}"
            )
        fine = self._files("gtFine", split, _FINE_SUFFIXES)
        coarse = self._files("gtCoarse", split, _COARSE_SUFFIXES)
        images = self._files("leftImg8bit", split, (FRAME_SUFFIX,))
        keys = sorted(set(fine) | set(coarse) | set(images), key=_stem)
        sequence = self._files("leftImg8bit_sequence", split, (FRAME_SUFFIX,)) if self.has_sequences else None

        clips: list[Clip] = []
        problems: list[DataError] = []
        for key in keys:
            if sequence is None:
                frames, anchor_index = (
                    [self.root / "leftImg8bit" / split / key[0] / (_stem(key) + FRAME_SUFFIX)],
                    0,
                )
                if key not in images:
                    problems.append(
                        DataError(frames[0], f"image of annotated frame {_stem(key)} does not exist")
                    )
            else:
                frames, anchor_index = self._snippet(split, key, sequence, problems)
            clip = Clip(clip_id=_stem(key), split=split, frames=frames, anchor_index=anchor_index)
            if key in fine:
                clip.add_label(0, LabelRef(fine[key], LabelKind.FINE))
            if key in coarse:
                clip.add_label(0, LabelRef(coarse[key], LabelKind.COARSE))
            clips.append(clip)
        return clips, problems

    def sequence_ground_truth(self, clip: Clip) -> dict[int, Path]:
        """Ground-truth train-id maps for the clip's frames (offset → path), where they exist.

        Only data sets made by the synthetic generator have them (``gtFine_sequence``); real
        Cityscapes labels one frame per snippet, so this is empty there.
        """
        truth: dict[int, Path] = {}
        for offset in clip.offsets:
            frame = clip.frame_path(offset)
            stem = frame.name[: -len(FRAME_SUFFIX)]
            path = (
                self.root
                / "gtFine_sequence"
                / clip.split
                / frame.parent.name
                / f"{stem}_gtFine_labelTrainIds.png"
            )
            if path.is_file():
                truth[offset] = path
        return truth

    def _snippet(
        self, split: str, key: FrameKey, sequence: dict[FrameKey, Path], problems: list[DataError]
    ) -> tuple[list[Path], int]:
        """Expected frame paths of the snippet around ``key``; each missing one is a problem."""
        city, seq, anchor = key
        frames = []
        for number in range(anchor - self.frames_before, anchor + self.frames_after + 1):
            path = (
                self.root / "leftImg8bit_sequence" / split / city / f"{city}_{seq}_{number:06d}{FRAME_SUFFIX}"
            )
            frames.append(path)
            if (city, seq, number) not in sequence:
                offset = number - anchor
                problems.append(
                    DataError(path, f"missing frame (offset {offset:+d}) of the snippet of {_stem(key)}")
                )
        return frames, self.frames_before

    def _files(self, top: str, split: str, suffixes: tuple[str, ...]) -> dict[FrameKey, Path]:
        """Files under ``top/split/city/`` by frame key, taking the first suffix that exists."""
        found: dict[FrameKey, Path] = {}
        folder = self.root / top / split
        if not folder.is_dir():
            return found
        for suffix in reversed(suffixes):
            for path in sorted(folder.glob(f"*/*{suffix}")):
                match = _NAME.match(path.name)
                if match is not None:
                    found[(match["city"], match["seq"], int(match["frame"]))] = (
                        path  # preferred suffixes come last
                    )
        return found
