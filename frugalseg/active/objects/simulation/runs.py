"""The videos of a simulated run, and its folder read back.

`video_sources` says where each video's frames and ground truth are; `run_loop_folders` finds the
saved loops of each video that policy and QNet training learn from, and `check_run_engine` that
they were made by the engine given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from frugalseg.active.objects.simulation.loop import Video
from frugalseg.active.objects.state import STATE_FILE
from frugalseg.active.run_folder import RUN_FILE
from frugalseg.data.formats.davis import DavisFormat, first_mask_only
from frugalseg.data.io import read_frame, read_json_object
from frugalseg.errors import ConfigError, DataError

if TYPE_CHECKING:
    from frugalseg.active.objects.engines import LoopEngine

#: What a run's ``run.json`` holds, for error messages.
RUN_FORM = "the settings of an `annotate simulate` run (format, root, split, engine…)"


@dataclass
class VideoSource:
    """Where one video's frames and masks are, and which of them the loop uses (every ``stride``-th)."""

    name: str
    frame_paths: list[Path]
    mask_paths: list[Path]
    indices: list[int]

    def load(self) -> Video:
        """The frames and ground-truth masks of the video, checked to be of one size."""
        frames = [read_frame(self.frame_paths[i]) for i in self.indices]
        truth = [DavisFormat.read_mask(self.mask_paths[i]) for i in self.indices]
        for i, (frame, mask) in zip(self.indices, zip(frames, truth, strict=True), strict=True):
            if frame.shape[:2] != mask.shape:
                raise DataError(
                    self.mask_paths[i],
                    f"mask size {mask.shape[::-1]} differs from its frame's {frame.shape[1::-1]}",
                )
        return Video(self.name, frames, truth, list(self.indices))


def video_sources(
    fmt: DavisFormat, split: str, *, stride: int = 1, max_frames: int | None = None
) -> list[VideoSource]:
    """Every sequence of ``split``, checked to have a ground-truth mask on every frame the loop uses."""
    if stride < 1:
        raise ConfigError("stride", f"must be ≥ 1, got {stride}")
    if max_frames is not None and max_frames < 2:
        raise ConfigError("max_frames", f"must be ≥ 2, got {max_frames}")
    sources = []
    for seq in fmt.sequences(split):
        frames = fmt.numbered_frame_paths(seq)
        masks = fmt.mask_paths(seq)
        horizon = len(frames) if max_frames is None else min(len(frames), max_frames)
        indices = list(range(0, horizon, stride))
        lacking = [i for i in indices if masks[i] is None]
        if lacking:
            raise DataError(
                fmt.mask_dir / seq,
                f"simulating the annotator needs ground truth on every frame; {len(lacking)} of the "
                f"{len(indices)} frames used have no mask (first: {frames[lacking[0]].name})"
                + first_mask_only(fmt.name, masks),
            )
        sources.append(VideoSource(seq, frames, masks, indices))  # type: ignore[arg-type]
    if not sources:
        raise DataError(fmt.root, f"split {split!r} has no sequence")
    return sources


def run_loop_folders(
    run: str | Path, videos: Sequence[str] | None = None, loops: Sequence[str] | None = None
) -> Iterator[tuple[VideoSource, list[Path]]]:
    """Each video of a `simulate` run folder and the folders of its saved loop states.

    Args:
        run: the run's folder (``run.json`` and ``runs/<frames>-<types>/seed<k>/<video>/``).
        videos: only these videos (None: all); e.g. the training clips of a split by clip.
        loops: only the loops of these strategies and seeds, ``<frames>-<types>/seed<k>`` (None: all).

    Raises:
        DataError: the folder holds no run, or its data set cannot be read as the loop reads it.
    """
    from frugalseg.data.formats import get_format

    run = Path(run)
    if not (run / RUN_FILE).is_file():
        raise DataError(run, f"no {RUN_FILE}: not an `annotate simulate` run folder")
    settings = read_json_object(run / RUN_FILE, RUN_FORM)
    fmt = get_format(settings["format"], settings["root"])
    if not isinstance(fmt, DavisFormat):
        raise DataError(run / RUN_FILE, f"the loop reads DAVIS-style videos, not {fmt.name!r}")
    sources = video_sources(
        fmt, settings["split"], stride=settings["stride"], max_frames=settings["max_frames"]
    )
    for source in sources:
        if videos is not None and source.name not in videos:
            continue
        folders = sorted(
            p.parent
            for p in run.glob(f"runs/*/seed*/{source.name}/{STATE_FILE}")
            if loops is None or f"{p.parent.parent.parent.name}/{p.parent.parent.name}" in loops
        )
        if folders:
            yield source, folders


def check_run_engine(runs: Sequence[str | Path], engine: LoopEngine) -> None:
    """Check that each of ``runs`` (`simulate` run folders) recorded ``engine`` with its settings.

    Raises:
        DataError: a folder holds no run.
        ConfigError: a run was simulated with another engine or other settings.
    """
    described = json.loads(json.dumps({"name": engine.name, **engine.settings}))
    for run in runs:
        path = Path(run) / RUN_FILE
        if not path.is_file():
            raise DataError(Path(run), f"no {RUN_FILE}: not an `annotate simulate` run folder")
        recorded = read_json_object(path, RUN_FORM).get("engine")
        if recorded != described:
            raise ConfigError(
                "engine",
                f"{run} was simulated with engine {recorded}, not {described}: give the same engine "
                "options, so that the masks QNet learns from are the loop's",
            )
