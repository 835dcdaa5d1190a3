"""OneVideoDataModule: the frames of one video and their sparse labels, for test-time fine-tuning (paper 000).

Every frame is a training item, labelled or not: frame t with its label (ignore where no one
labelled) and a consecutive neighbour — frame t−1, or frame 1 for frame 0 — with the flows from t to
the neighbour and back, which the temporal-consistency loss needs. Prediction reads every frame in
order. The frames and labels are held in memory (a video at the resolution it is labelled at).

The flows of the N − 1 consecutive pairs, both ways, are computed once, in :meth:`setup`, and kept
for every epoch; with ``flow_cache`` they are also kept on disk (`frugalseg.flow.FlowCache`), so the
next iteration of the annotation loop, which fine-tunes on the same video with more labels, reads
them instead of computing them again.

Batches are dicts: ``frames`` and ``neighbour_frames`` B×T×3×H×W (float, ImageNet-normalised on the
device; the T frames ending at the item's frame, the first frame repeated before the video starts),
``label`` B×H×W (long), ``flow_to_neighbour`` and ``flow_from_neighbour`` B×2×H×W and ``index`` B
(the frame's index); prediction batches carry ``frames`` and ``index`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.datamodules.transforms import Normalize
from frugalseg.errors import ConfigError
from frugalseg.flow import DISFlow, FlowCache
from frugalseg.flow.cache import FlowEngine


def neighbour(t: int) -> int:
    """The consecutive frame that frame ``t``'s prediction is held consistent with: t − 1, or 1 for 0."""
    return t - 1 if t > 0 else 1


class OneVideoDataset(Dataset):
    """Items of one video: frame windows, labels and (for training) the neighbour and its flows.

    Args:
        frames: N×3×H×W uint8 frames.
        labels: N×H×W uint8 sparse labels.
        num_frames: frames per window (T).
        flows: frame pair (a, b) → the 2×H×W flow a → b, for training items; None for prediction.
    """

    def __init__(
        self,
        frames: Tensor,
        labels: Tensor,
        num_frames: int,
        flows: dict[tuple[int, int], Tensor] | None = None,
    ) -> None:
        self.frames = frames
        self.labels = labels
        self.num_frames = num_frames
        self.flows = flows

    def __len__(self) -> int:
        return len(self.frames)

    def window(self, t: int) -> Tensor:
        """The T×3×H×W frames ending at frame ``t``, the first frame repeated before the start."""
        return self.frames[[max(0, t - back) for back in reversed(range(self.num_frames))]]

    def __getitem__(self, t: int) -> dict[str, Tensor | int]:
        if self.flows is None:
            return {"frames": self.window(t), "index": t}
        n = neighbour(t)
        return {
            "frames": self.window(t),
            "neighbour_frames": self.window(n),
            "label": self.labels[t].long(),
            "flow_to_neighbour": self.flows[t, n],
            "flow_from_neighbour": self.flows[n, t],
            "index": t,
        }


class OneVideoDataModule(L.LightningDataModule):
    """One video's frames and sparse labels (see the module docstring).

    Args:
        frames: the video's frames in order, H×W×3 uint8 RGB (at least 2).
        labels: the label of each frame (H×W class ids, ``ignore_index`` where unlabelled), None for
            a frame with no label at all; None labels nothing.
        num_frames: frames per clip the student reads (T; 1 for image students).
        batch_size: frames per training and prediction batch.
        ignore_index: the label value of unlabelled pixels.
        flow_engine: the optical flow engine; None uses OpenCV's DIS (`frugalseg.flow.DISFlow`).
        flow_cache: folder where the flows are kept across runs and loop iterations; None keeps them
            in memory for this datamodule only.
        num_workers: loader worker processes (0 reads in the main process).
    """

    def __init__(
        self,
        frames: Sequence[np.ndarray],
        labels: Sequence[np.ndarray | None] | None = None,
        num_frames: int = 1,
        batch_size: int = 2,
        ignore_index: int = IGNORE_INDEX,
        flow_engine: FlowEngine | None = None,
        flow_cache: str | Path | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.video = [np.asarray(frame) for frame in frames]
        self.sparse_labels = _labels(self.video, labels, ignore_index)
        if num_frames < 1 or batch_size < 1:
            raise ConfigError(
                "num_frames", f"num_frames and batch_size must be ≥ 1, got {num_frames}, {batch_size}"
            )
        self.num_frames = num_frames
        self.batch_size = batch_size
        self.ignore_index = ignore_index
        self.flow_engine = flow_engine if flow_engine is not None else DISFlow()
        self.flow_cache = flow_cache
        self.num_workers = num_workers
        self.normalize = Normalize()
        self.flows: dict[tuple[int, int], Tensor] | None = None

    def setup(self, stage: str) -> None:
        """Compute the flows of every consecutive pair both ways, once (``flows``)."""
        if self.flows is not None:
            return
        compute = (
            self.flow_engine if self.flow_cache is None else FlowCache(self.flow_engine, self.flow_cache)
        )
        flows = {}
        for t in range(1, len(self.video)):
            for a, b in ((t, t - 1), (t - 1, t)):
                flows[a, b] = (
                    torch.from_numpy(compute(self.video[a], self.video[b])).permute(2, 0, 1).contiguous()
                )
        self.flows = flows

    def _tensors(self) -> tuple[Tensor, Tensor]:
        frames = torch.from_numpy(np.stack(self.video)).permute(0, 3, 1, 2).contiguous()
        return frames, torch.from_numpy(np.stack(self.sparse_labels))

    def train_dataloader(self) -> DataLoader:
        """Every frame with its neighbour and flows, shuffled."""
        self.setup("fit")
        dataset = OneVideoDataset(*self._tensors(), self.num_frames, self.flows)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers)

    def predict_dataloader(self) -> DataLoader:
        """Every frame, in order."""
        dataset = OneVideoDataset(*self._tensors(), self.num_frames)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Normalise the frames on the device."""
        normalize = self.normalize.to(batch["frames"].device)
        for key in ("frames", "neighbour_frames"):
            if key in batch:
                batch[key] = normalize(batch[key])
        return batch


def _labels(
    frames: list[np.ndarray], labels: Sequence[np.ndarray | None] | None, ignore_index: int
) -> list[np.ndarray]:
    """The label of every frame as H×W uint8, checked against the frames; all ignore where None."""
    if not 0 <= ignore_index <= 255:
        raise ConfigError("ignore_index", f"must lie in 0…255 (labels are uint8 maps), got {ignore_index}")
    if len(frames) < 2:
        raise ConfigError(
            "frames", f"fine-tuning on a video needs at least 2 frames (consecutive pairs), got {len(frames)}"
        )
    shape = frames[0].shape
    for t, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.shape != shape:
            raise ConfigError(
                "frames",
                f"frame {t} is {frame.dtype} of shape {frame.shape}; every frame must be H×W×3 uint8 "
                f"RGB of frame 0's shape {shape}",
            )
    if labels is None:
        labels = [None] * len(frames)
    if len(labels) != len(frames):
        raise ConfigError("labels", f"{len(labels)} labels for a video of {len(frames)} frames")
    out = []
    for t, label in enumerate(labels):
        if label is None:
            out.append(np.full(shape[:2], ignore_index, np.uint8))
            continue
        if label.shape != shape[:2]:
            raise ConfigError(
                "labels",
                f"the label of frame {t} is {label.shape[1]}×{label.shape[0]}, "
                f"its frame {shape[1]}×{shape[0]}",
            )
        values = np.asarray(label)
        if values.size and (values.min() < 0 or values.max() > 255):
            raise ConfigError(
                "labels",
                f"the label of frame {t} holds {values.min()}…{values.max()}: class ids and the ignore index "
                "lie in 0…255",
            )
        out.append(values.astype(np.uint8))
    return out
