"""Check a data set for every problem in one pass, so a user fixes them all at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from frugalseg.datamodules.clips import Clip
from frugalseg.datamodules.formats import get_format
from frugalseg.datamodules.io import DataError, read_frame, read_label


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _problem(error: DataError) -> Problem:
    return Problem(error.path, error.problem)


def _check_clip(clip: Clip, num_classes: int, problems: list[Problem]) -> None:
    """Decode every frame and label of ``clip``; compare label and frame sizes."""
    frame_shapes: dict[int, tuple[int, int]] = {}
    for offset in clip.offsets:
        path = clip.frame_path(offset)
        if not path.is_file():
            continue  # already reported by the format's scan as a missing frame
        try:
            frame_shapes[offset] = read_frame(path).shape[:2]
        except DataError as error:
            problems.append(_problem(error))
    sizes = set(frame_shapes.values())
    if len(sizes) > 1:
        anchor = frame_shapes.get(0, next(iter(sizes)))
        for offset, shape in frame_shapes.items():
            if shape != anchor:
                problems.append(
                    Problem(
                        clip.frame_path(offset),
                        f"frame size {shape[1]}×{shape[0]} differs from the clip's {anchor[1]}×{anchor[0]}",
                    )
                )
    for offset, refs in clip.labels.items():
        for ref in refs:
            try:
                label = read_label(ref.path, num_classes)
            except DataError as error:
                problems.append(_problem(error))
                continue
            shape = frame_shapes.get(offset)
            if shape is not None and label.shape != shape:
                problems.append(
                    Problem(
                        ref.path,
                        f"label size {label.shape[1]}×{label.shape[0]} differs from its frame's "
                        f"{shape[1]}×{shape[0]} ({clip.frame_path(offset).name})",
                    )
                )


def check_dataset(root: str | Path, format_name: str = "cityscapes", num_classes: int = 19) -> list[Problem]:
    """Every problem in the data set at ``root``: missing snippet frames, files that cannot be
    decoded, labels whose size differs from their frame, and label values outside
    0…num_classes−1 and 255. Does not stop at the first problem."""
    problems: list[Problem] = []
    try:
        data = get_format(format_name, root)
    except DataError as error:
        return [_problem(error)]
    clips: list[Clip] = []
    for split in data.splits():
        split_clips, errors = data.scan(split)
        clips.extend(split_clips)
        problems.extend(_problem(error) for error in errors)
    if not clips and not problems:
        problems.append(Problem(Path(root), f"no clips found in the {format_name} layout"))
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"checking {root}", total=len(clips))
        for clip in clips:
            _check_clip(clip, num_classes, problems)
            progress.advance(task)
    return problems
