"""Map-style dataset: one (clip, offset, label kind) sample → the frames a student reads + its label."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from frugalseg.datamodules.clips import Clip, LabelKind
from frugalseg.datamodules.io import DataError, read_frame, read_label
from frugalseg.datamodules.recipes import Sample
from frugalseg.flow import DISFlow


def resize_by(image: np.ndarray, scale: float, nearest: bool = False) -> np.ndarray:
    """``image`` scaled by ``scale``: nearest for label maps, else area to shrink and bilinear to enlarge."""
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=interpolation)


class ClipSampleDataset(Dataset):
    """Decodes the ``num_frames`` frames ending at a sample's offset and the sample's label.

    Frames before the start of a clip repeat its first frame (as TMANet's authors do for the
    first frames of a video). With ``temporal_pair`` one more past frame is returned and the DIS
    flows between the last two frames are computed here, in the loader workers, so that the
    temporal-consistency metric needs no flow on the training device.

    With ``neighbours`` K > 0 (WeClick's memory-flow distillation, paper 004) each sample also
    carries K unlabelled frames drawn at random, without repeats, among the ``neighbour_window``
    frames before its frame (earliest first; before the clip's start the first frame repeats):
    ``neighbours`` K×3×H×W, ``neighbour_offsets`` K (relative to the sample's frame) and
    ``neighbour_flows`` K×2×H×W, the DIS flow from the sample's frame to each neighbour, which
    backward-warps a neighbour's prediction onto the sample's frame.

    Args:
        clips: the clips the samples refer to.
        samples: which (clip, offset, kind) make the set.
        num_frames: frames the student reads (T).
        num_classes: label values must be below this or the ignore index.
        scale: resize factor applied on load (e.g. 0.5 to train on half-size Cityscapes).
        temporal_pair: also return frame t−1's window and the flows between t−1 and t.
        neighbours: unlabelled neighbour frames per sample, with their flows (0: none).
        neighbour_window: how many frames before the sample's frame the neighbours come from.
        same_frame: every frame of the window is the sample's own frame (TDNet's first stage).
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        samples: Sequence[Sample],
        num_frames: int,
        num_classes: int,
        scale: float = 1.0,
        temporal_pair: bool = False,
        neighbours: int = 0,
        neighbour_window: int = 4,
        same_frame: bool = False,
    ) -> None:
        if not 0 <= neighbours <= neighbour_window:
            raise ValueError(
                f"need 0 <= neighbours <= neighbour_window, got {neighbours} and {neighbour_window}"
            )
        self.clips = {clip.clip_id: clip for clip in clips}
        self.samples = list(samples)
        self.num_frames = num_frames
        self.num_classes = num_classes
        self.scale = scale
        self.temporal_pair = temporal_pair
        self.neighbours = neighbours
        self.neighbour_window = neighbour_window
        self.same_frame = same_frame
        self._flow = DISFlow("medium") if temporal_pair or neighbours else None
        for sample in self.samples:
            self._label_ref(sample)

    def __len__(self) -> int:
        return len(self.samples)

    def _label_ref(self, sample: Sample):
        clip = self.clips.get(sample.clip_id)
        if clip is None:
            raise KeyError(f"sample refers to unknown clip {sample.clip_id!r}")
        frame = clip.frame_path(sample.offset)
        ref = clip.label(sample.offset, sample.kind)
        if ref is None:
            hints = {
                LabelKind.PSEUDO: " (make them with `frugalseg label propagate …`)",
                LabelKind.CLICKS: " (make them with `frugalseg label clicks …`)",
            }
            hint = hints.get(sample.kind, "")
            raise DataError(
                frame,
                f"clip {clip.clip_id} has no {sample.kind.value} label at offset {sample.offset:+d}{hint}",
            )
        return ref

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        clip = self.clips[sample.clip_id]
        ref = self._label_ref(sample)
        steps = self.num_frames + int(self.temporal_pair)
        first = clip.offsets[0]
        paths = [
            clip.frame_path(sample.offset if self.same_frame else max(first, sample.offset - back))
            for back in reversed(range(steps))
        ]
        frames = [read_frame(path) for path in paths]
        label = read_label(ref.path, self.num_classes)
        if label.shape != frames[-1].shape[:2]:
            raise DataError(
                ref.path,
                f"label size {label.shape[1]}×{label.shape[0]} differs from its frame "
                f"{paths[-1]} ({frames[-1].shape[1]}×{frames[-1].shape[0]})",
            )
        frames = [resize_by(frame, self.scale) for frame in frames]
        item = {
            "frames": torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(),
            "label": torch.from_numpy(resize_by(label, self.scale, nearest=True)).long(),
            "kind": sample.kind.index,
            "meta": {"clip_id": clip.clip_id, "offset": sample.offset, "label_path": str(ref.path)},
        }
        if self.temporal_pair:
            previous, current = frames[-2], frames[-1]
            item["flow_to_prev"] = _flow_tensor(self._flow(current, previous))
            item["flow_from_prev"] = _flow_tensor(self._flow(previous, current))
        if self.neighbours:
            item.update(self._neighbours(clip, sample.offset, frames[-1]))
        return item

    def _neighbours(self, clip: Clip, offset: int, target: np.ndarray) -> dict[str, torch.Tensor]:
        """Random earlier frames of ``clip`` and the flows from the target frame to each of them."""
        back = torch.randperm(self.neighbour_window)[: self.neighbours] + 1
        chosen = [max(clip.offsets[0], offset - step) for step in sorted(back.tolist(), reverse=True)]
        frames = [resize_by(read_frame(clip.frame_path(o)), self.scale) for o in chosen]
        return {
            "neighbours": torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(),
            "neighbour_offsets": torch.tensor([o - offset for o in chosen]),
            "neighbour_flows": torch.stack([_flow_tensor(self._flow(target, frame)) for frame in frames]),
        }


def _flow_tensor(flow: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(flow).permute(2, 0, 1).contiguous()
