"""A video of an annotation session: its frame files, the loop's frames among them, and how they are read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frugalseg.active.objects.session.proposals import Proposal
from frugalseg.active.objects.simulation.annotation_types import neighbour_index, video_priors
from frugalseg.active.objects.state import VideoState
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.data.formats.video import mixed_frame_kinds
from frugalseg.data.io import TRUNCATED_IMAGE, image_size, read_frame, whole_image
from frugalseg.errors import ConfigError, DataError


@dataclass
class SessionVideo:
    """A video of the session: its name, the loop's frame files, their sequence indices, all its frames."""

    name: str
    frame_paths: list[Path]
    indices: list[int]
    sequence_paths: list[Path]

    def loop_index(self, frame: int) -> int:
        """The loop's index of sequence frame ``frame``; `ConfigError` when the loop does not use it."""
        if frame in self.indices:
            return self.indices.index(frame)
        stride = self.indices[1] - self.indices[0] if len(self.indices) > 1 else 1
        used = f"{self.indices[0]}…{self.indices[-1]}" + (f" every {stride}" if stride > 1 else "")
        raise ConfigError(
            "frame",
            f"{frame} is out of range: video {self.name!r} ({self.frame_paths[0].parent}) has frames {used} "
            f"in this session (a frame's number is its place in the video, from 0: frame "
            f"{self.indices[0]} is {self.frame_paths[0].name})",
        )

    def frame_names(self) -> list[str]:
        """The loop frames' file names less their suffix where they name the masks (`VideoState.frame_names`).

        None where the frames are numbered as DAVIS's (``00012.jpg``, a video's frame 12) or two share a name.
        """
        names = [path.stem for path in self.frame_paths]
        if names == [f"{n:05d}" for n in self.indices] or len(set(names)) < len(names):
            return []
        return names

    def first_proposal(self) -> Proposal:
        """The first annotation of the video: its first frame, drawn as a mask."""
        return Proposal(
            self.name, self.indices[0], str(self.frame_paths[0]), [], "mask", "first annotation of the video"
        )

    def check(self) -> None:
        """Refuse the video unless every frame it reads is whole and of its first frame's size.

        Cheap, before anything is written: each file's header size (`image_size`) and end (`whole_image`,
        a truncated file), for the loop's frames and their neighbours; `load` decodes them all strictly.

        Raises:
            DataError: naming the first frame that cannot be read, is truncated or is of another size,
                or a frame of another kind than most of the folder's (`mixed_frame_kinds`).
        """
        used = self.sequence_paths[: max(self.indices[-1], 1) + 1]
        for problem in mixed_frame_kinds(self.sequence_paths)[:1]:
            raise problem.error()
        first = image_size(used[0])
        for path in used:
            size = image_size(path)
            if size != first:
                raise DataError(
                    path, f"is {size[0]}×{size[1]}, the video's first frame {first[0]}×{first[1]}"
                )
            if not whole_image(path):
                raise DataError(path, TRUNCATED_IMAGE)

    def check_state(self, state: VideoState, state_file: Path) -> None:
        """Refuse a saved state made on other frames than the folder holds now (frames added or removed).

        A state keeps its annotations and masks by loop index: with a frame gone, each would stand on
        the frame after it. Compared: the count, the frame names where the state keeps them, the
        sequence numbers where it keeps them (a stride).

        Raises:
            DataError: naming the video's folder, what the session holds and what the folder holds now.
        """
        now = len(self.frame_paths)
        same_names = not state.frame_names or state.frame_names == self.frame_names()
        same_numbers = not state.numbers or state.numbers == self.indices
        if state.num_frames == now and same_names and same_numbers:
            return
        held = f"{state.num_frames} frames"
        if state.frame_names:
            held += f" ({state.frame_names[0]} … {state.frame_names[-1]})"
        raise DataError(
            self.frame_paths[0].parent,
            f"its frames changed since the session annotated them: {state_file} holds {held}, the folder "
            f"{now} ({self.frame_paths[0].stem} … {self.frame_paths[-1].stem}); put the frames back as they "
            "were, or annotate them in a new session (another --state)",
        )

    def load(self) -> list[np.ndarray]:
        """The frames the loop uses, H×W×3 uint8 RGB.

        A person's own frames are decoded strictly (`read_frame`): a JPEG with a damaged stretch is refused
        naming it, not propagated over the pixels a decoder makes up; so is a frame of another size
        than the first (no engine can carry a mask across it).
        """
        frames = [read_frame(path, strict=True) for path in self.frame_paths]
        height, width = frames[0].shape[:2]
        for path, frame in zip(self.frame_paths, frames, strict=True):
            if frame.shape[:2] != (height, width):
                size = f"{frame.shape[1]}×{frame.shape[0]}"
                raise DataError(path, f"is {size}, the video's first frame {width}×{height}")
        return frames

    def frame(self, t: int) -> np.ndarray:
        """Loop frame ``t``, H×W×3 uint8 RGB (decoded strictly, as `load`)."""
        return read_frame(self.frame_paths[t], strict=True)

    def neighbour(self, t: int, shape: tuple[int, ...]) -> np.ndarray | None:
        """The sequence frame next to loop frame ``t`` (`neighbour_index`), adjacent with a stride too.

        Raises:
            DataError: if it is not of ``shape`` (H, W), the size of frame ``t``.
        """
        index = neighbour_index(self.indices[t], len(self.sequence_paths))
        if index is None:
            return None
        path = self.sequence_paths[index]
        neighbour = read_frame(path, strict=True)
        if neighbour.shape[:2] != shape:
            size = "×".join(map(str, neighbour.shape[:2]))
            raise DataError(
                path, f"is {size}, the frame next to it ({self.frame_paths[t].name}) {shape[0]}×{shape[1]}"
            )
        return neighbour

    def priors(
        self, state: VideoState | None, t: int, current: np.ndarray, objects: Sequence[int]
    ) -> dict[int, ObjectPrior]:
        """`video_priors` of ``objects`` on loop frame ``t``, with its neighbour's motion."""
        neighbour = self.neighbour(t, current.shape[:2])
        return video_priors(state, t, current, objects, self.frame, neighbour)
