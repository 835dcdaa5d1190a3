"""What the format tests read back from a tree: its clips by id, and `check_dataset`'s problems."""

from __future__ import annotations

from pathlib import Path

from frugalseg.data.check import check_dataset
from frugalseg.data.clips import Clip
from frugalseg.data.formats import Format


def clips_by_id(fmt: Format, split: str) -> dict[str, Clip]:
    """The clips of ``split``, keyed by clip id."""
    return {clip.clip_id: clip for clip in fmt.clips(split)}


def problems(root: Path) -> set[tuple[str, str, bool]]:
    """Every problem `check_dataset` finds under ``root``: (relative path, message, is a warning)."""
    return {(p.path.relative_to(root).as_posix(), p.message, p.warning) for p in check_dataset(root)}
