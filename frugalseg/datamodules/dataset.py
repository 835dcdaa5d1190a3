"""Map-style dataset: one (clip, offset, label kind) sample → the frames a student reads + its label."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from frugalseg.autolabel.store import confidence_path
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind
from frugalseg.data.formats import Format
from frugalseg.data.io import read_label
from frugalseg.datamodules.frames import FrameReader, resize_by, resize_sparse
from frugalseg.datamodules.recipes import Sample
from frugalseg.errors import ConfigError, DataError
from frugalseg.flow import DISFlow, FlowCache, forward_backward_mask_np

logger = logging.getLogger(__name__)


class ClipSampleDataset(Dataset):
    """Decodes the ``num_frames`` frames ending at a sample's offset and the sample's label.

    Frames before the start of a clip repeat its first frame (as TMANet's authors do for the
    first frames of a video). With ``temporal_pair`` one more past frame is returned with the DIS
    flows between the last two frames and ``flow_reliable`` (H×W bool, where the two flows pass the
    forward-backward check), computed here, in the loader workers, so that the temporal-consistency
    metric needs neither a flow nor a check on the training device. An image student's pair at a
    clip's first frame takes the frame after it instead.

    With ``neighbours`` K > 0 (WeClick's memory-flow distillation, paper 004) each sample also
    carries K unlabelled frames drawn at random, without repeats, among the ``neighbour_window``
    frames before its frame (earliest first; before the clip's start the first frame repeats):
    ``neighbours`` K×3×H×W, ``neighbour_offsets`` K (relative to the sample's frame) and
    ``neighbour_flows`` K×2×H×W, the DIS flow from the sample's frame to each neighbour, which
    backward-warps a neighbour's prediction onto the sample's frame.

    A frame a partial snippet lacks is replaced by the next frame that exists towards the sample's.

    Args:
        fmt: the data set's format, which decodes its labels.
        clips: the clips the samples refer to.
        samples: which (clip, offset, kind) make the set.
        num_frames: frames the student reads (T).
        scale: resize factor applied on load (e.g. 0.5 to train on half-size Cityscapes).
        temporal_pair: also return frame t−1's window and the flows between t−1 and t.
        neighbours: unlabelled neighbour frames per sample, with their flows (0: none).
        neighbour_window: how many frames before the sample's frame the neighbours come from.
        same_frame: every frame of the window is the sample's own frame (TDNet's first stage).
        frame_cache: folder where frames resized by ``scale`` < 1 are kept after their first decoding
            (`FrameReader`); None decodes them in full every time.
        flow_cache: folder where the DIS flows are kept after they are first computed (`FlowCache`);
            None computes them every time.
        min_confidence: pixels of a stored label whose confidence map
            (`frugalseg.autolabel.store.confidence_path`) is below this value (0…1) are ignored; labels
            without a confidence map are kept whole. 0 keeps every pixel.
    """

    def __init__(
        self,
        fmt: Format,
        clips: Sequence[Clip],
        samples: Sequence[Sample],
        num_frames: int,
        scale: float = 1.0,
        temporal_pair: bool = False,
        neighbours: int = 0,
        neighbour_window: int = 4,
        same_frame: bool = False,
        frame_cache: str | Path | None = None,
        flow_cache: str | Path | None = None,
        min_confidence: float = 0.0,
    ) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigError("min_confidence", f"must lie in 0…1, got {min_confidence}")
        if not 0 <= neighbours <= neighbour_window:
            raise ConfigError(
                "neighbours",
                f"need 0 <= neighbours <= neighbour_window, got {neighbours} and {neighbour_window}",
            )
        self.fmt = fmt
        self.clips = {clip.clip_id: clip for clip in clips}
        self.samples = list(samples)
        self.num_frames = num_frames
        self.scale = scale
        self.temporal_pair = temporal_pair
        self.neighbours = neighbours
        self.neighbour_window = neighbour_window
        self.same_frame = same_frame
        self.min_confidence = min_confidence
        self.frames = FrameReader(scale, frame_cache)
        self.flow: FlowCache | DISFlow | None = None
        if temporal_pair or neighbours:
            self.flow = (
                FlowCache(DISFlow("medium"), flow_cache) if flow_cache is not None else DISFlow("medium")
            )
        refs = [(sample.kind, self._label_ref(sample).path) for sample in self.samples]
        if min_confidence > 0:
            _check_confidence_maps(refs, min_confidence)

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
        offsets = [
            sample.offset
            if self.same_frame
            else clip.nearest_frame(max(first, sample.offset - back), sample.offset)
            for back in reversed(range(steps))
        ]
        if self.temporal_pair and self.num_frames == 1 and offsets[0] == offsets[1] and not self.same_frame:
            # at a clip's first frame the frame before repeats it, and the pair compared a frame with
            # itself (a loss and a TC of exactly 0 and 1): an image student's pair takes the frame after
            offsets[0] = clip.nearest_frame(min(clip.offsets[-1], sample.offset + 1), sample.offset)
        paths = [clip.frame_path(offset) for offset in offsets]
        decoded = {path: self.frames(path) for path in dict.fromkeys(paths)}  # a repeated frame is read once
        frames = [decoded[path] for path in paths]
        full_label = self._confident(self.fmt.read_label(ref), ref.path)
        label = (
            resize_sparse(full_label, self.scale)
            if sample.kind is LabelKind.CLICKS
            else resize_by(full_label, self.scale, nearest=True)
        )
        if label.shape != frames[-1].shape[:2]:
            raise DataError(
                ref.path,
                f"label size {full_label.shape[1]}×{full_label.shape[0]} does not fit its frame {paths[-1]}"
                f" ({frames[-1].shape[1]}×{frames[-1].shape[0]} at load scale {self.scale:g})",
            )
        item = {
            "frames": torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(),
            "label": torch.from_numpy(label).long(),
            "kind": sample.kind.code,
            "meta": {
                "clip_id": clip.clip_id,
                "offset": sample.offset,
                "kind": sample.kind.value,
                "label_path": str(ref.path),
            },
        }
        if self.temporal_pair:
            previous, current = frames[-2], frames[-1]
            to_prev, from_prev = self._flow(current, previous), self._flow(previous, current)
            item["flow_to_prev"] = _flow_tensor(to_prev)
            item["flow_from_prev"] = _flow_tensor(from_prev)
            item["flow_reliable"] = torch.from_numpy(forward_backward_mask_np(to_prev, from_prev))
        if self.neighbours:
            item.update(self._neighbours(clip, sample.offset, frames[-1], decoded))
        return item

    def _confident(self, label: np.ndarray, path: Path) -> np.ndarray:
        """``label`` with the pixels its confidence map puts below ``min_confidence`` set to ignore."""
        if self.min_confidence <= 0.0:
            return label
        confidence_file = confidence_path(path)
        if not confidence_file.exists():
            return label
        confidence = read_label(confidence_file)
        if confidence.shape != label.shape:
            raise DataError(
                confidence_file,
                f"confidence map of size {confidence.shape[1]}×{confidence.shape[0]} does not fit its "
                f"label's {label.shape[1]}×{label.shape[0]}",
            )
        label = label.copy()
        label[confidence < round(255 * self.min_confidence)] = IGNORE_INDEX
        return label

    def _neighbours(
        self, clip: Clip, offset: int, target: np.ndarray, decoded: dict[Path, np.ndarray]
    ) -> dict[str, torch.Tensor]:
        """Random earlier frames of ``clip`` and the flows from the target frame to each of them.

        Frames of the window, in ``decoded``, are not read again.
        """
        back = torch.randperm(self.neighbour_window)[: self.neighbours] + 1
        chosen = [
            clip.nearest_frame(max(clip.offsets[0], offset - step), offset)
            for step in sorted(back.tolist(), reverse=True)
        ]
        for path in (clip.frame_path(o) for o in chosen):
            if path not in decoded:
                decoded[path] = self.frames(path)
        frames = [decoded[clip.frame_path(o)] for o in chosen]
        return {
            "neighbours": torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(),
            "neighbour_offsets": torch.tensor([o - offset for o in chosen]),
            "neighbour_flows": torch.stack([_flow_tensor(self._flow(target, frame)) for frame in frames]),
        }

    def _flow(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The flow first → second (H×W×2); only a dataset with temporal pairs or neighbours has flows."""
        if self.flow is None:
            raise RuntimeError("this dataset computes no flow: it has no temporal pair and no neighbours")
        return self.flow(first, second)


def _flow_tensor(flow: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(flow).permute(2, 0, 1).contiguous()


def _check_confidence_maps(refs: Sequence[tuple[LabelKind, Path]], min_confidence: float) -> None:
    """Say when ``min_confidence`` filters nothing; refuse a stored label whose confidence map is gone.

    The flow engine writes a confidence map beside each pseudo-label it makes: pseudo-labels of which some
    have one and some not lost files; of which none has one (SAM 2's), they are not filtered. Other kinds
    (clicks, coarse) never have one.
    """
    for kind in sorted({kind for kind, _ in refs if kind is LabelKind.PSEUDO}, key=lambda k: k.value):
        paths = [path for each, path in refs if each is kind]
        missing = [path for path in paths if not confidence_path(path).is_file()]
        if missing and len(missing) < len(paths):
            raise DataError(
                confidence_path(missing[0]),
                f"confidence map missing, though the other {kind.value} labels have theirs: run the command "
                "that made the store again with the same --out: it makes such labels again",
            )
        if missing:
            logger.warning(
                "data.labels.min_confidence %s filters none of the %d %s labels: they have no confidence map "
                "(the flow engine writes one)", min_confidence, len(paths), kind.value,
            )  # fmt: skip
