"""Per-class Boundary IoU (Cheng et al. 2021) for semantic segmentation, eq. (8) of HVSA.

For class c the boundary of a mask M = (labels == c) is its inner band of width d: the pixels of M
within Chebyshev distance d of a pixel outside M, the image border counting as outside. This is
the reference ``mask − erode(pad(M, 1), ones(3×3), iterations=d)`` of ``boundary-iou-api``.

All classes at once: a pixel lies in the band of *its own* class iff its (2d+1)² neighbourhood in
the label map is not uniform or reaches past the image border. One grey dilation (max) and one
grey erosion (min) of the label map, compared, plus the d-pixel frame along the border, give every
band in one filter pass per map instead of one erosion per class. On CPU, OpenCV's morphological
gradient (dilation − erosion, non-zero exactly on the bands) does this on uint8 maps, and a single
masked ``cv2.calcHist`` per image over (target label, predicted label, band flags) visits only the
band pixels and yields all per-class counts; other devices use ``max_pool2d`` and ``bincount``.
Both give the same counts as the per-class reference.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from frugalseg.metrics.segmentation import HISTOGRAM_PIXELS, class_indices, without_ignored

Backend = Literal["auto", "opencv", "torch"]


def _mark_border(band: np.ndarray | Tensor, width: int, value: bool | int = True) -> None:
    """Set the outer ``width`` rows and columns (last two dims) of ``band`` to ``value`` in place."""
    band[..., :width, :] = value
    band[..., -width:, :] = value
    band[..., :, :width] = value
    band[..., :, -width:] = value


def _to_uint8(labels: np.ndarray) -> np.ndarray | None:
    """``labels`` as uint8 if all lie in [0, 255] (checked by one OR-reduction), else None."""
    if labels.dtype == np.uint8:
        return labels
    bits = int(np.bitwise_or.reduce(labels, axis=None))
    return labels.astype(np.uint8) if 0 <= bits <= 255 else None


def boundary_band_np(
    labels: np.ndarray, width: int, value: int = 255, out: np.ndarray | None = None
) -> np.ndarray:
    """H×W uint8 map, ``value`` on pixels in the width-``width`` inner band of their own label, else 0.

    ``labels`` is a uint8 label map. The band is where the morphological gradient (dilation minus
    erosion, one OpenCV call) is non-zero; pixels within ``width`` of the image border are always
    boundary, so the filters may use OpenCV's default (neutral) border. ``out`` is reused if given.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * width + 1, 2 * width + 1))
    gradient = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, kernel)
    band = cv2.threshold(gradient, 0, value, cv2.THRESH_BINARY, dst=out)[1]
    _mark_border(band, width, value)
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


def _cut_where_unknown(pred: np.ndarray, target: np.ndarray, ignore: int) -> np.ndarray:
    """A copy of uint8 ``pred`` holding ``ignore`` wherever ``target`` does (no full-size temporaries)."""
    unknown: np.ndarray = cv2.inRange(target, ignore, ignore)  # 255 where ignored, else 0
    cut: np.ndarray
    if ignore == 255:
        cut = cv2.max(pred, unknown)
    else:
        cut = pred.copy()
        cut[unknown > 0] = ignore
    return cut


class BoundaryIoU(Metric):
    """Per-class Boundary IoU accumulated over a dataset (summed intersection and union per class).

    ``update(preds, target)``: preds B×H×W class indices or B×C×H×W logits, target B×H×W with
    ``ignore_index`` for unlabelled pixels. Ignored pixels act as "not class c" in both maps when
    the bands are drawn (where the target is unknown, so is the prediction's boundary: a prediction
    equal to the target wherever it is labelled scores 1) and are left out of both counts.
    ``compute`` is the mean over classes whose boundary union is non-empty; :meth:`per_class` gives
    each class (NaN where the union is 0). ``backend="auto"`` uses OpenCV for CPU tensors (fewer
    than 255 classes) and ``max_pool2d`` otherwise.

    Args:
        num_classes: number of classes C.
        ignore_index: label value of unlabelled pixels (None: every pixel is labelled).
        width: band width d, in pixels.
        backend: ``auto``, ``opencv`` (CPU) or ``torch`` (any device).
        validate_args: check that predictions and labels hold valid classes (an error names the
            first invalid one); ``False`` skips the passes that look, for inputs already checked.
        **kwargs: arguments of torchmetrics' ``Metric`` (``dist_sync_on_step``, …).
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
        validate_args: bool = True,
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
        self.validate_args = validate_args
        self.add_state("intersection", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("union", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add the boundary intersections and unions of one batch."""
        preds = class_indices(preds)
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

    def _pred_error(self, low: int, high: int) -> ValueError:
        return ValueError(f"preds hold class {low if low < 0 else high} outside [0, {self.num_classes})")

    def _target_error(self, value: int) -> ValueError:
        return ValueError(
            f"target holds class {value} outside [0, {self.num_classes}) that is not ignore_index"
        )

    def _counts_opencv(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Counts (intersection, |B_gt|, |B_pred|) on CPU: uint8 OpenCV filters, one histogram per image.

        ``state = 64·[pixel in target band] + 128·[pixel in prediction band]`` is both the mask
        and the third axis of one joint histogram ``hist[g, p, state // 64]`` over target label g
        (all 256 values), predicted class p; the masked histogram visits band pixels only. Then
        |B_gt| = hist[c, :, 1::2].sum(), |B_pred| = hist[:n, c, 2:].sum() (valid target labels
        only) and I = hist[c, c, 3]. Every label present in a map has band pixels, so hist also
        shows invalid target labels.
        """
        n = self.num_classes
        if n >= 255:
            raise ValueError(
                f"the OpenCV backend handles fewer than 255 classes, got {n}; use backend='torch'"
            )
        ignore = self.ignore_index
        # numpy, not torch, for the full-size passes: torch's threaded kernels stall on a busy CPU.
        target_np, pred_np = target.cpu().numpy(), preds.cpu().numpy()
        if ignore is not None and not n <= ignore <= 255:
            target_np = np.where(target_np == ignore, n, target_np)  # an extra label that only cuts regions
            ignore = n
        if self.validate_args:
            pred_all, gt_all = _to_uint8(pred_np), _to_uint8(target_np)
            if pred_all is None or pred_all.max() >= n:
                raise self._pred_error(int(pred_np.min()), int(pred_np.max()))
            if gt_all is None:
                low, high = int(target_np.min()), int(target_np.max())
                raise self._target_error(low if low < 0 else high)
        else:
            pred_all, gt_all = pred_np.astype(np.uint8, copy=False), target_np.astype(np.uint8, copy=False)
        inter, gt_count, pred_count = (np.zeros(n, np.int64) for _ in range(3))
        band_gt, band_pred, state = (np.empty(gt_all.shape[1:], np.uint8) for _ in range(3))
        diag = np.arange(n)
        for g, p in zip(gt_all, pred_all, strict=True):
            if ignore is not None:  # the prediction's bands as the target's: cut where it is unknown
                p = _cut_where_unknown(p, g, ignore)
            boundary_band_np(g, self.width, 64, band_gt)
            boundary_band_np(p, self.width, 128, band_pred)
            cv2.bitwise_or(band_gt, band_pred, dst=state)
            hist = np.zeros((256, n, 4), np.int64)
            for rows in _strips(g.shape, HISTOGRAM_PIXELS):  # float32 counts: exact up to 2**24 a call
                g_rows, p_rows, s_rows = g[rows], p[rows], state[rows]
                ranges = [0, 256, 0, n, 0, 256]
                hist += cv2.calcHist([g_rows, p_rows, s_rows], [0, 1, 2], s_rows, [256, n, 4], ranges).astype(
                    np.int64
                )
            per_label = hist[:, :, 1::2].sum((1, 2))
            if self.validate_args:
                bad = np.flatnonzero(per_label[n:]) + n
                bad = bad[bad != ignore]
                if bad.size:
                    raise self._target_error(int(bad[0]))
            gt_count += per_label[:n]
            pred_count += hist[:n, :, 2:].sum((0, 2))
            inter += hist[diag, diag, 3]
        return torch.from_numpy(inter), torch.from_numpy(gt_count), torch.from_numpy(pred_count)

    def _counts_torch(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Counts (intersection, |B_gt|, |B_pred|) batched with ``max_pool2d`` (for GPUs)."""
        n = self.num_classes
        preds, target = preds.long(), target.long()
        valid = (
            target != self.ignore_index
            if self.ignore_index is not None
            else torch.ones_like(target, dtype=torch.bool)
        )
        if self.validate_args:  # each check asks the device for a value
            low, high = (int(v) for v in torch.aminmax(preds))
            if low < 0 or high >= n:
                raise self._pred_error(low, high)
            bad = target[valid & ((target < 0) | (target >= n))]
            if bad.numel():
                raise self._target_error(int(bad[0]))
        target, preds = target.masked_fill(~valid, n), preds.masked_fill(~valid, n)
        bands = boundary_band_torch(torch.cat((target, preds)), self.width)
        band_gt, band_pred = bands[: len(target)] & valid, bands[len(target) :] & valid
        both = band_gt & band_pred & (target == preds)
        return (
            torch.bincount(target[both], minlength=n),
            torch.bincount(target[band_gt], minlength=n),
            torch.bincount(preds[band_pred], minlength=n),
        )

    def per_class(self) -> Tensor:
        """Boundary IoU of each class (float64; NaN where the boundary union is empty).

        An ``ignore_index`` class is NaN too, as in mIoU: never a target, predicting it is an error of
        the others.
        """
        union = self.union.double()
        iou = torch.where(
            union > 0, self.intersection.double() / union.clamp(min=1), torch.full_like(union, float("nan"))
        )
        return without_ignored(iou, self.ignore_index)

    def compute(self) -> Tensor:
        """Mean Boundary IoU over the classes with a non-empty boundary union."""
        return self.per_class().nanmean().float()


def _strips(shape: tuple[int, ...], pixels: int) -> list[slice]:
    """Slices of whole rows of an H×W image, each of at most ``pixels`` pixels (one row at least)."""
    height, width = shape
    step = max(1, pixels // max(width, 1))
    return [slice(top, top + step) for top in range(0, height, step)]
