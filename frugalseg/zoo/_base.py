"""The student interface every zoo model implements, and small helpers shared by the models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch.nn.functional as F
from timm.models import FeatureInfo
from torch import Tensor, nn


class Student(nn.Module):
    """A segmentation student: a clip of ``num_frames`` frames in, logits of its last frame out.

    Subclasses implement :meth:`forward`; models with auxiliary heads also override
    :meth:`forward_train` and declare the loss weight of each auxiliary output in ``aux_weights``.

    Args:
        num_classes: output classes (channels of the logits).
        num_frames: frames per clip that :meth:`forward` reads (1 for image models).
        aux_weights: loss weight of each auxiliary output of :meth:`forward_train`, by its key.
    """

    def __init__(self, num_classes: int, num_frames: int = 1, aux_weights: dict[str, float] | None = None):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.num_classes = num_classes
        self.num_frames = num_frames
        self.aux_weights: dict[str, float] = dict(aux_weights or {})

    def check_frames(self, frames: Tensor) -> None:
        """Raise a ValueError unless ``frames`` is B×T×3×H×W with T == ``num_frames``."""
        expected = f"B×{self.num_frames}×3×H×W"
        received = "×".join(str(s) for s in frames.shape)
        name = type(self).__name__
        if frames.dim() != 5:
            raise ValueError(
                f"{name} expects frames of shape {expected} (5-D), received a {frames.dim()}-D tensor "
                f"of shape {received}"
            )
        if frames.shape[1] != self.num_frames:
            raise ValueError(
                f"{name} expects frames of shape {expected} ({self.num_frames} frames per clip), "
                f"received {received}"
            )
        if frames.shape[2] != 3:
            raise ValueError(f"{name} expects frames of shape {expected} (3 channels), received {received}")
        if not frames.is_floating_point():
            raise ValueError(f"{name} expects ImageNet-normalised float frames, received {frames.dtype}")

    def forward(self, frames: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Logits B×C×H×W of the last frame of ``frames`` (B×T×3×H×W), at the input resolution."""
        raise NotImplementedError

    def forward_train(self, frames: Tensor) -> dict[str, Tensor]:
        """All outputs that carry a loss: ``"out"`` plus one key per entry of ``aux_weights``."""
        return {"out": self(frames)}


@runtime_checkable
class StreamingStudent(Protocol):
    """A video student that also segments a video frame by frame, keeping a memory (TMANet, TDNet).

    ``isinstance(model, StreamingStudent)`` tells whether a model has the two methods, by name alone: STM
    has both with other arguments (its ``reset`` takes the first frame and its masks), so tell a semantic
    student by ``model_config(name).task == "semantic"`` first.
    """

    def reset(self) -> None:
        """Forget the frames seen so far: the next :meth:`step` starts a new video."""

    def step(self, frame: Tensor) -> Tensor:
        """Logits B×C×H×W of the next frame B×3×H×W of the video."""
        ...


class ImageStudent(Student):
    """A student that looks at one image: subclasses implement :meth:`segment` on B×3×H×W."""

    def forward(self, frames: Tensor) -> Tensor:
        """Logits of the last frame of the clip at the input resolution."""
        self.check_frames(frames)
        image = frames[:, -1]
        return resize_to(self.segment(image), image.shape[-2:])

    def segment(self, image: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Logits B×C×h×w for a B×3×H×W image (any resolution; :meth:`forward` resizes)."""
        raise NotImplementedError


def feature_info(model: nn.Module) -> FeatureInfo:
    """The channels and strides of the outputs of a timm ``features_only`` model (its ``feature_info``)."""
    info = model.feature_info
    if not isinstance(info, FeatureInfo):
        raise TypeError(f"{type(model).__name__} is no timm features_only model: it has no FeatureInfo")
    return info


def resize_to(logits: Tensor, size: Sequence[int], align_corners: bool = False) -> Tensor:
    """Bilinearly resize ``logits`` to ``size`` (H, W) unless it already has that size.

    Args:
        logits: B×C×h×w map.
        size: target (H, W).
        align_corners: True reproduces official models that resize that way (TDNet, TMANet on
            Cityscapes).
    """
    target = (int(size[0]), int(size[1]))
    if tuple(logits.shape[-2:]) == target:
        return logits
    return F.interpolate(logits, size=target, mode="bilinear", align_corners=align_corners)


def pad_to_multiple(image: Tensor, multiple: int) -> Tensor:
    """Zero-pad a B×C×H×W tensor at the bottom/right so H and W are multiples of ``multiple``.

    Zero is the mean colour of an ImageNet-normalised image; crop the result back with
    ``[..., :H, :W]``.

    Args:
        image: B×C×H×W tensor.
        multiple: the stride H and W must become multiples of.
    """
    h, w = image.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    return F.pad(image, (0, pad_w, 0, pad_h))
