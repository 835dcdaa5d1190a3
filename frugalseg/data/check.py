"""Check a data set for every problem in one pass, so a user fixes them all at once."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frugalseg.data.clips import Clip
from frugalseg.data.formats import Format, Problem, detect_format, formats_like, get_format
from frugalseg.data.io import read_frame
from frugalseg.errors import DataError


def open_dataset(root: str | Path, format_name: str | None = None, **options: Any) -> Format:
    """The reader of ``root`` with ``options``: of ``format_name``, else of what `detect_format` finds."""
    return get_format(format_name or detect_format(root), root, **options)


def check_clip(
    fmt: Format,
    clip: Clip,
    decoded: dict[Path, tuple[int, int] | DataError] | None = None,
    reported: frozenset[Path] = frozenset(),
) -> list[Problem]:
    """Decode every frame, label and anchor's instance-id map of ``clip``; compare sizes.

    Frames are decoded strictly (`read_frame`: damaged JPEG data is an error). ``decoded`` keeps each
    file's size (or error) across calls, for formats whose clips share frames and labels (CamVid,
    VEIS: every clip holds its whole sequence), so that a file is decoded once. Files in ``reported``
    (already named by the format's `scan`, e.g. a DAVIS mask of the wrong size) get no size problem here.
    """
    problems: list[Problem] = []
    frame_shapes: dict[int, tuple[int, int]] = {}
    decoded = {} if decoded is None else decoded
    for offset in clip.present_offsets:
        path = clip.frame_path(offset)
        if path not in decoded:
            try:
                decoded[path] = read_frame(path, strict=True).shape[:2]
            except DataError as error:
                decoded[path] = error
        found = decoded[path]
        if isinstance(found, DataError):
            problems.append(Problem.from_error(found))
        else:
            frame_shapes[offset] = found
    sizes = Counter(frame_shapes.values())
    if len(sizes) > 1:
        # clips that share a sequence's frames (CamVid, VEIS) each anchor at another of its stills: their
        # frames are measured against the size most of them have, so every clip names the same odd ones
        common = sizes.most_common(1)[0][0]
        anchor = common if clip.shared_frames else frame_shapes.get(0, common)
        for offset, shape in frame_shapes.items():
            if shape != anchor and clip.frame_path(offset) not in reported:
                problems.append(
                    Problem(
                        clip.frame_path(offset),
                        f"frame size {shape[1]}×{shape[0]} differs from the clip's {anchor[1]}×{anchor[0]}",
                    )
                )
    labels = [(offset, ref) for offset, refs in clip.labels.items() for ref in refs]
    labels += [(offset, ref) for offset, ref in fmt.ground_truth(clip).items() if (offset, ref) not in labels]
    anchors = set(clip.labels.get(0, ()))
    for offset, ref in labels:
        shared = ref.path in decoded  # a label of clips that share frames (CamVid, VEIS) is read once
        if not shared:
            try:
                decoded[ref.path] = fmt.read_label(ref).shape[:2]
            except DataError as error:
                decoded[ref.path] = error
                problems.append(Problem.from_error(error))
        label_shape = decoded[ref.path]
        if isinstance(label_shape, DataError):
            continue
        frame_shape = frame_shapes.get(offset)
        fits = frame_shape is None or label_shape == frame_shape
        if offset == 0 and ref in anchors and fits:  # this clip's anchor: its instance ids (`label clicks`)
            try:
                fmt.instance_ids(clip, ref.kind, label_shape)
            except DataError as error:
                problems.append(Problem.from_error(error))
        if not shared and frame_shape is not None and not fits and ref.path not in reported:
            problems.append(
                Problem(
                    ref.path,
                    f"label size {label_shape[1]}×{label_shape[0]} differs from its frame's "
                    f"{frame_shape[1]}×{frame_shape[0]} ({clip.frame_path(offset).name})",
                )
            )
    return problems


def check_dataset(
    root: str | Path,
    format_name: str | None = None,
    on_clips: Callable[[Format, list[Clip]], Callable[[], None]] | None = None,
    **options: Any,
) -> list[Problem]:
    """Every problem in the data set at ``root`` (read with the format's ``options``), without stopping.

    Missing snippet frames (warnings), files that cannot be decoded, labels whose size differs from
    their frame, label values outside the format's classes and 255, and a split without clips.
    ``format_name`` None detects the layout; a folder that matches none is one problem listing the
    formats tried. ``on_clips`` is given the data set and the clips to check (a clip of several splits
    once) and returns a function called after each (a progress bar).
    """
    try:
        fmt = open_dataset(root, format_name, **options)
    except DataError as error:
        return [Problem.from_error(error)]
    problems = unreadable_folders(Path(root))
    clips: list[Clip] = []
    empty: list[str] = []
    for split in fmt.splits():
        split_clips, found = fmt.scan(split)
        clips.extend(split_clips)
        problems.extend(found)
        if not split_clips and not found:
            empty.append(split)
    if clips:  # a set without any clip is one problem, below
        problems.extend(Problem(split_folder(fmt, split), f"split {split!r} has no clips") for split in empty)
    if not clips and not problems:
        others = formats_like(root, fmt.name)
        hint = f"; it looks like: {', '.join(others)} (--format)" if others else ""
        problems.append(Problem(Path(root), f"no clips found in the {fmt.name} layout{hint}"))
    # a clip of two splits is checked once
    firsts: dict[tuple[str, tuple[Path, ...], int], Clip] = {}
    for clip in clips:
        firsts.setdefault((clip.clip_id, tuple(clip.frames), clip.anchor_index), clip)
    clips = list(firsts.values())
    advance = on_clips(fmt, clips) if on_clips is not None else None
    decoded: dict[Path, tuple[int, int] | DataError] = {}
    reported = frozenset(problem.path for problem in problems)
    for clip in clips:
        problems.extend(check_clip(fmt, clip, decoded, reported))
        if advance is not None:
            advance()
    return list(dict.fromkeys(problems))  # a frame shared by clips is reported once


def split_folder(fmt: Format, split: str) -> Path:
    """Where ``split`` is made: the list naming its clips, a folder of that name, else the data set's root.

    The list is DAVIS's ``ImageSets/2017/val.txt``; the folder is in the data set or one level down, that of
    the frames first (``leftImg8bit/train``, not ``gtFine/train``).
    """
    listed = getattr(fmt, "split_dir", None)
    if listed is not None and (Path(listed) / f"{split}.txt").is_file():
        return Path(listed) / f"{split}.txt"
    children = sorted(
        fmt.root.iterdir(), key=lambda child: (not child.name.startswith(_FRAME_FOLDERS), child.name)
    )
    below = [child / split for child in children if _is_dir(child)]
    return next((folder for folder in [fmt.root / split, *below] if _is_dir(folder)), fmt.root)


#: The top folders of frames, whose split folder names a split before its labels' (Cityscapes, DAVIS, IDD).
_FRAME_FOLDERS = ("leftImg8bit", "JPEGImages", "images")


def _is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; False where it cannot be looked at (`unreadable_folders` says so)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def unreadable_folders(root: Path) -> list[Problem]:
    """A problem for each folder under ``root`` that cannot be listed (its files would go unseen).

    A data set given as one file (a video) has none.
    """
    problems: list[Problem] = []
    if not root.is_dir():
        return problems

    def report(error: OSError) -> None:
        why = "permission denied" if isinstance(error, PermissionError) else error.strerror
        problems.append(
            Problem(Path(error.filename), f"{why}: cannot list the folder; its files are not checked")
        )

    for _ in os.walk(root, onerror=report):
        pass
    return problems
