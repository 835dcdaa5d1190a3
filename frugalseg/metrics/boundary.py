"""Per-class Boundary IoU (Cheng et al. 2021) for semantic segmentation, eq. (8) of HVSA.

For class c the boundary of a mask M = (labels == c) is its inner band of width d: the pixels of M
within Chebyshev distance d of a pixel outside M, the image border counting as outside. This is
the reference ``mask − erode(pad(M, 1), ones(3×3), iterations=d)`` of ``boundary-iou-api``.

All classes at once: a pixel lies in the band of *its own* class iff its (2d+1)² neighbourhood in
the label map is not uniform or reaches past the image border. One grey dilation (max) and one
grey erosion (min) of the label map, compared, plus the d-pixel frame along the border, give every
band in two filter passes instead of one erosion per class. OpenCV runs the filters on CPU (uint8
maps, per-class counts by ``cv2.calcHist``), ``max_pool2d`` on other devices; both give the same
counts as the per-class reference.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

Backend = Literal["auto", "opencv", "torch"]


def _mark_border(band: np.ndarray | Tensor, width: int) -> None:
    """Set the outer ``width`` rows and columns (last two dims) of ``band`` to True in place."""
    band[..., :width, :] = True
    band[..., -width:, :] = True
    band[..., :, :width] = True
    band[..., :, -width:] = True


def boundary_band_np(labels: np.ndarray, width: int) -> np.ndarray:
    """H×W bool: pixels in the width-``width`` inner band of their own label's region (OpenCV).

    ``labels`` is a uint8 or uint16 label map. Pixels within ``width`` of the image border are
    always boundary, so the filters may use OpenCV's default (neutral) border.
    """
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    band = cv2.dilate(labels, kernel) != cv2.erode(labels, kernel)
    _mark_border(band, width)
    return band


def boundary_band_torch(labels: Tensor, width: int) -> Tensor:
    """Batched B×H×W bool band (see :func:`boundary_band_np`) by ``max_pool2d`` on any device."""
    values = labels[:, None].float()
    size = 2 * width + 1
    high = F.max_pool2d(values, size, stride=1, padding=width)
    low = -F.max_pool2d(-values, size, stride=1, padding=width)
    band = (high != low)[:, 0]
    _mark_border(band, width)
    return band


class BoundaryIoU(Metric):
    """Per-class Boundary IoU accumulated over a dataset (summed intersection and union per class).

    ``update(preds, target)``: preds B×H×W class indices or B×C×H×W logits, target B×H×W with
    ``ignore_index`` for unlabelled pixels. Ignored pixels act as "not class c" when the bands
    are drawn and are left out of both counts. ``compute`` is the mean over classes whose
    boundary union is non-empty; :meth:`per_class` gives each class (NaN where the union is 0).
    ``backend="auto"`` uses OpenCV for CPU tensors (fewer than 255 classes) and ``max_pool2d``
    otherwise.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True
    intersection: Tensor
    union: Tensor

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        width: int = 2,
        backend: Backend = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if width < 1:
            raise ValueError(f"width must be ≥ 1 pixel, got {width}")
        if backend not in ("auto", "opencv", "torch"):
            raise ValueError(f"backend must be 'auto', 'opencv' or 'torch', got {backend!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.width = width
        self.backend = backend
        self.add_state("intersection", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("union", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add the boundary intersections and unions of one batch."""
        if preds.is_floating_point():
            preds = preds.argmax(1)
        if preds.shape != target.shape or target.dim() != 3:
            raise ValueError(
                f"expected preds B×H×W (or logits B×C×H×W) and target B×H×W of the same size, "
                f"got preds {tuple(preds.shape)} and target {tuple(target.shape)}"
            )
        use_torch = self.backend == "torch" or (
            self.backend == "auto" and (target.device.type != "cpu" or self.num_classes >= 255)
        )
        counts = self._counts_torch(preds, target) if use_torch else self._counts_opencv(preds, target)
        inter, gt_count, pred_count = (c.to(self.intersection.device) for c in counts)
        self.intersection += inter
        self.union += gt_count + pred_count - inter

    def _check_preds(self, low: int, high: int) -> None:
        if low < 0 or high >= self.num_classes:
            raise ValueError(f"preds hold class {low if low < 0 else high} outside [0, {self.num_classes})")

    def _target_error(self, value: int) -> ValueError:
        return ValueError(f"target holds class {value} outside [0, {self.num_classes}) that is not ignore_index")

    def _counts_opencv(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Counts (intersection, |B_gt|, |B_pred|) on CPU with uint8 OpenCV filters and histograms."""
        n = self.num_classes
        if n >= 255:
            raise ValueError(f"the OpenCV backend handles fewer than 255 classes, got {n}; use backend='torch'")
        # lut: class c -> c, ignore -> n (an extra label that cuts regions but is never counted), else 255.
        lut = np.full(256, 255, np.uint8)
        lut[:n] = np.arange(n)
        ignore = self.ignore_index
        # numpy, not torch, for the full-size passes: torch's threaded kernels are slower on CPU here.
        target_np, pred = target.cpu().numpy(), preds.cpu().numpy()
        self._check_preds(int(pred.min()), int(pred.max()))
        if ignore is not None and not 0 <= ignore <= 255:
            target_np = np.where(target_np == ignore, n, target_np)
            ignore = n
        if ignore is not None:
            lut[ignore] = n
        low, high = int(target_np.min()), int(target_np.max())
        if low < 0 or high > 255:
            raise self._target_error(low if low < 0 else high)
        gt = cv2.LUT(target_np.astype(np.uint8, copy=False).reshape(-1, target_np.shape[-1]), lut)
        if (gt == 255).any():
            raise self._target_error(int(target_np.reshape(gt.shape)[gt == 255][0]))
        gt = gt.reshape(target_np.shape)
        pred = pred.astype(np.uint8, copy=False)
        inter, gt_count, pred_count = (np.zeros(n, np.int64) for _ in range(3))
        bins, ranges = [n + 1], [0, n + 1]
        for g, p in zip(gt, pred):
            band_gt = boundary_band_np(g, self.width).view(np.uint8)
            band_pred = boundary_band_np(p, self.width).view(np.uint8) & (g != n).view(np.uint8)
            both = band_gt & band_pred & (g == p).view(np.uint8)
            for out, labels, mask in ((gt_count, g, band_gt), (pred_count, p, band_pred), (inter, g, both)):
                out += cv2.calcHist([labels], [0], mask, bins, ranges).ravel()[:n].astype(np.int64)
        return torch.from_numpy(inter), torch.from_numpy(gt_count), torch.from_numpy(pred_count)

    def _counts_torch(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Counts (intersection, |B_gt|, |B_pred|) batched with ``max_pool2d`` (for GPUs)."""
        n = self.num_classes
        preds, target = preds.long(), target.long()
        low, high = torch.aminmax(preds)
        self._check_preds(int(low), int(high))
        valid = target != self.ignore_index if self.ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
        bad = target[valid & ((target < 0) | (target >= n))]
        if bad.numel():
            raise self._target_error(int(bad[0]))
        target = target.masked_fill(~valid, n)
        bands = boundary_band_torch(torch.cat((target, preds)), self.width)
        band_gt, band_pred = bands[: len(target)] & valid, bands[len(target) :] & valid
        both = band_gt & band_pred & (target == preds)
        return (
            torch.bincount(target[both], minlength=n),
            torch.bincount(target[band_gt], minlength=n),
            torch.bincount(preds[band_pred], minlength=n),
        )

    def per_class(self) -> Tensor:
        """Boundary IoU of each class (float64, NaN where the boundary union is empty)."""
        union = self.union.double()
        return torch.where(union > 0, self.intersection.double() / union.clamp(min=1), torch.full_like(union, float("nan")))

    def compute(self) -> Tensor:
        """Mean Boundary IoU over the classes with a non-empty boundary union."""
        return self.per_class().nanmean().float()
