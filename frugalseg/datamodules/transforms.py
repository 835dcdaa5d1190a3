"""Clip-consistent augmentation that runs on the batch's device, after transfer.

Every frame of a clip and its label get the same random scale, crop and flip (one affine matrix
per sample, applied with kornia), so the past frames a video student reads stay aligned with
the frame it is trained on. Labels are warped with nearest sampling and padded with the ignore
index, never with class 0. Sparse labels (clicks) are moved point by point instead, so that shrinking
a frame cannot drop a one-pixel click between the sampled pixels.
"""

from __future__ import annotations

from typing import Any

import torch
from kornia.geometry.transform import warp_affine
from torch import nn

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.errors import ConfigError


class Normalize(nn.Module):
    """uint8 RGB frames (…×3×H×W) → float, standardised with the per-channel mean and std."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1) * 255, persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Standardised float frames."""
        return (frames.float() - self.mean) / self.std


def in_precision(frames: torch.Tensor, trainer: Any) -> torch.Tensor:
    """``frames`` made on the device, in the dtype of a true precision (``bf16-true``) the Trainer runs.

    Lightning converts a batch before it reaches the device and leaves its uint8 frames alone, so the
    float frames made from them there had met bfloat16 weights as float32.

    Args:
        frames: normalised float frames.
        trainer: the datamodule's Trainer, or None outside one (the frames are returned as they are).
    """
    return frames if trainer is None else trainer.precision_plugin.convert_input(frames)


class ClipRandomGeometry(nn.Module):
    """Random scale, crop and horizontal flip shared by all frames of a sample and its label.

    Args:
        crop_size: output (height, width); regions outside the scaled frame are padded (frames
            with ``fill``, labels with ``ignore_index``).
        scale_range: the frame is resized by a factor drawn uniformly from this range first.
        flip_prob: probability of a horizontal flip.
        ignore_index: the label value of padded pixels.
        fill: the colour of padded frame pixels, per channel (0: the mean colour of normalised
            frames; the mean in 0…255 for raw frames, which then normalise to 0 as well).
    """

    fill: torch.Tensor

    def __init__(
        self,
        crop_size: tuple[int, int],
        scale_range: tuple[float, float] = (0.5, 2.0),
        flip_prob: float = 0.5,
        ignore_index: int = IGNORE_INDEX,
        fill: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        super().__init__()
        self.register_buffer("fill", torch.tensor(fill, dtype=torch.float32), persistent=False)
        if scale_range[0] <= 0 or scale_range[0] > scale_range[1]:
            raise ConfigError("scale_range", f"must be 0 < low <= high, got {scale_range}")
        crop_height, crop_width = crop_size
        self.crop_size = (crop_height, crop_width)
        self.scale_range = tuple(scale_range)
        self.flip_prob = flip_prob
        self.ignore_index = ignore_index
        #: Where the draws come from: None, torch's default generator of the device; a process of a
        #: distributed run sets its own (`VideoSegDataModule.on_after_batch_transfer`).
        self.generator: torch.Generator | None = None

    def sample_matrices(self, batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        """One 2×3 affine matrix (input pixel → output pixel) per sample."""
        crop_h, crop_w = self.crop_size
        low, high = self.scale_range
        drawn = self.generator
        scale = torch.empty(batch, device=device).uniform_(low, high, generator=drawn)
        flip = torch.rand(batch, device=device, generator=drawn) < self.flip_prob
        spare_x = (width * scale - crop_w).clamp(min=0)
        spare_y = (height * scale - crop_h).clamp(min=0)
        offset_x = torch.rand(batch, device=device, generator=drawn) * spare_x
        offset_y = torch.rand(batch, device=device, generator=drawn) * spare_y
        sign = torch.where(flip, -1.0, 1.0)
        matrices = torch.zeros(batch, 2, 3, device=device)
        matrices[:, 0, 0] = sign * scale
        matrices[:, 0, 2] = torch.where(flip, scale * (width - 1), torch.zeros_like(scale)) - offset_x
        matrices[:, 1, 1] = scale
        matrices[:, 1, 2] = -offset_y
        return matrices

    def forward(
        self, frames: torch.Tensor, label: torch.Tensor, sparse: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames B×T×C×H×W float, label B×H×W long → the same, cropped to ``crop_size``.

        ``sparse`` (B bool) marks sparse labels, whose labelled pixels are also carried to their
        transformed position (`splat_labels`).
        """
        batch, steps, channels, height, width = frames.shape
        matrices = self.sample_matrices(batch, height, width, frames.device)
        warped_frames = warp_affine(
            frames.reshape(batch * steps, channels, height, width),
            matrices.repeat_interleave(steps, dim=0),
            dsize=self.crop_size,
            mode="bilinear",
            padding_mode="fill",
            align_corners=True,
            fill_value=self.fill.to(frames.device, frames.dtype),
        ).view(batch, steps, channels, *self.crop_size)
        # Shift labels by one so that zero padding marks "outside" instead of class 0.
        shifted = warp_affine(
            (label.float() + 1).unsqueeze(1),
            matrices,
            dsize=self.crop_size,
            mode="nearest",
            align_corners=True,
        ).squeeze(1)
        warped_label = (shifted - 1).round().long()
        warped_label[warped_label < 0] = self.ignore_index
        if sparse is not None and bool(sparse.any()):
            warped_label[sparse] = splat_labels(
                label[sparse], matrices[sparse], warped_label[sparse], self.ignore_index
            )
        return warped_frames, warped_label


def splat_labels(
    label: torch.Tensor, matrices: torch.Tensor, base: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """``base`` (B×h×w) with every labelled pixel of ``label`` (B×H×W) written where it lands.

    Positions are those of the pixel affine maps ``matrices`` (B×2×3), rounded; pixels mapped outside
    are dropped.
    """
    out = base.clone()
    height, width = base.shape[-2:]
    sample, y, x = torch.nonzero(label != ignore_index, as_tuple=True)
    points = torch.stack([x, y, torch.ones_like(x)], dim=-1).to(matrices.dtype)  # N×3
    moved = torch.einsum("nij,nj->ni", matrices[sample], points).round().long()
    inside = (moved[:, 0] >= 0) & (moved[:, 0] < width) & (moved[:, 1] >= 0) & (moved[:, 1] < height)
    out[sample[inside], moved[inside, 1], moved[inside, 0]] = label[sample, y, x][inside]
    return out
