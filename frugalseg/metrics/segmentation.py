"""Dataset-level mIoU and mean class accuracy with the semantic-segmentation convention.

Both metrics sum one confusion matrix over the whole dataset (rows: target class, columns: predicted
class), so they are exact under DDP and are not a mean of per-batch values. They hold the same
state and update it the same way, so in one ``MetricCollection`` they form a compute group and the
matrix is counted once per batch. (They are named ``Dataset…`` because torchmetrics'
``segmentation.DatasetMeanIoU`` averages per image: a different number.)

Averaging convention (mmseg / Cityscapes): the mean runs over the classes that occur, i.e. a
nan-mean of per-class values where a class without data is NaN.

- IoU of class c is NaN when c is absent from both target and prediction (union 0). A class that
  appears only in the prediction has IoU 0 and counts.
- Accuracy (recall) of class c is NaN when c is absent from the target; a class that occurs only in
  the prediction does not drag the mean down.

Pixels whose target is ``ignore_index`` are left out.

On the CPU the matrix is one joint histogram of the two class maps as uint8 (``cv2.calcHist``, a
single pass that skips ignored pixels by its value range); other devices use ``bincount``. Both
give the same counts.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

Backend = Literal["auto", "opencv", "torch"]

#: ``cv2.calcHist`` counts in float32, exact up to 2**24 per bin: no call sees more pixels.
HISTOGRAM_PIXELS = 2**24


def joint_histogram(
    rows: np.ndarray, cols: np.ndarray, num_rows: int, num_cols: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """``num_rows``×``num_cols`` int64 counts of the value pairs ``(rows[i], cols[i])`` of two uint8 arrays.

    Pairs with a row value outside ``[0, num_rows)`` or a column value outside ``[0, num_cols)``
    are not counted, nor are pixels where ``mask`` (uint8, same shape) is 0. One ``cv2.calcHist``
    per :data:`HISTOGRAM_PIXELS` pixels keeps its float32 counts exact.

    Args:
        rows: uint8 array, the values that pick the row.
        cols: uint8 array of the same shape, the values that pick the column.
        num_rows: number of rows (row values counted: 0 … ``num_rows`` − 1).
        num_cols: number of columns (column values counted: 0 … ``num_cols`` − 1).
        mask: uint8 array of the same shape; pixels where it is 0 are not counted (None: all are).

    Returns:
        The int64 matrix of counts.
    """
    rows, cols = rows.reshape(1, -1), cols.reshape(1, -1)
    flat_mask = None if mask is None else mask.reshape(1, -1)
    total = np.zeros((num_rows, num_cols), np.int64)
    for start in range(0, rows.shape[1], HISTOGRAM_PIXELS):
        part = slice(start, start + HISTOGRAM_PIXELS)
        hist = cv2.calcHist(
            [rows[:, part], cols[:, part]],
            [0, 1],
            None if flat_mask is None else flat_mask[:, part],
            [num_rows, num_cols],
            [0, num_rows, 0, num_cols],
        )
        total += hist.astype(np.int64)
    return total


def class_indices(preds: Tensor) -> Tensor:
    """Predictions as class indices: B×C×H×W float logits by their argmax, integer maps as they are."""
    if not preds.is_floating_point():
        return preds
    if preds.dim() != 4:
        raise ValueError(
            f"float predictions must be B×C×H×W logits (class indices are an integer tensor), got shape "
            f"{tuple(preds.shape)}"
        )
    return preds.argmax(1)


def fits_uint8(values: np.ndarray) -> bool:
    """Whether every value of an integer array lies in [0, 255] (one OR-reduction, no min and max)."""
    if values.dtype == np.uint8 or values.size == 0:
        return True
    return 0 <= int(np.bitwise_or.reduce(values, axis=None)) <= 255


class ConfusionMatrix(Metric):
    """A C×C confusion matrix of class maps summed over a dataset (the state of mIoU and mAcc).

    ``backend="auto"`` counts CPU tensors with one ``cv2.calcHist`` (uint8 maps: fewer than 256
    classes and an ignore index, if any, in [C, 255]) and other tensors with ``bincount``.

    Args:
        num_classes: number of classes C.
        ignore_index: target value of pixels that are not counted.
        validate_args: check that predictions and targets hold class indices (or the ignore index);
            switch off where the inputs are already known to (arg-max predictions, checked labels).
        backend: ``auto``, ``opencv`` (CPU histogram) or ``torch`` (``bincount``, any device).
        **kwargs: `torchmetrics.Metric` arguments.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True
    confmat: Tensor

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        validate_args: bool = True,
        backend: Backend = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if backend not in ("auto", "opencv", "torch"):
            raise ValueError(f"backend must be 'auto', 'opencv' or 'torch', got {backend!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.backend = backend
        #: uint8 maps hold every class, and values ≥ C (the ignore index) fall out of the histogram
        self._uint8_fits = num_classes <= 255 and (ignore_index is None or num_classes <= ignore_index <= 255)
        if backend == "opencv" and not self._uint8_fits:
            raise ValueError(
                f"the OpenCV backend needs fewer than 256 classes and an ignore index in "
                f"[num_classes, 255] (or None), got {num_classes} classes and {ignore_index}; "
                "use backend='torch'"
            )
        self.add_state(
            "confmat", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum"
        )

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Count ``preds`` (B×H×W class indices or B×C×H×W logits) against ``target`` (B×H×W)."""
        preds = class_indices(preds)
        if preds.shape != target.shape:
            raise ValueError(
                f"predictions of shape {tuple(preds.shape)} do not match targets of shape "
                f"{tuple(target.shape)}"
            )
        if self.use_opencv(target):
            counts = self._counts_opencv(preds, target)
        else:
            counts = self._counts_torch(preds, target)
        self.confmat += counts.to(self.confmat)

    def use_opencv(self, target: Tensor) -> bool:
        """Whether an update with ``target`` counts on the CPU with OpenCV (see ``backend``)."""
        return self.backend == "opencv" or (
            self.backend == "auto" and self._uint8_fits and target.device.type == "cpu"
        )

    def _counts_torch(self, preds: Tensor, target: Tensor) -> Tensor:
        """C×C counts by ``bincount`` of ``target · C + preds`` (any device)."""
        if self.validate_args:
            self._check(target.long(), preds.long())
        cells = self.num_classes**2
        index = target.to(torch.int32) * self.num_classes + preds.to(torch.int32)  # half int64's traffic
        if self.ignore_index is not None:  # an extra bin for the pixels not counted
            index.masked_fill_(target == self.ignore_index, cells)
        if index.device.type == "cpu":  # numpy's bincount is about 3x torch's on the CPU
            counts = torch.from_numpy(np.bincount(index.numpy().ravel(), minlength=cells + 1))
        else:
            counts = torch.bincount(index.flatten(), minlength=cells + 1)
        return counts[:cells].view(self.num_classes, self.num_classes)

    def _counts_opencv(self, preds: Tensor, target: Tensor) -> Tensor:
        """C×C counts on the CPU: one joint histogram of the uint8 maps (numpy and OpenCV, no torch kernel).

        Ignored pixels hold a value ≥ C in the uint8 target and fall outside the histogram's range.
        """
        target_np, pred_np = target.detach().cpu().numpy(), preds.detach().cpu().numpy()
        if self.validate_args:
            self.check_np(target_np, pred_np)
        n = self.num_classes
        hist = joint_histogram(
            target_np.astype(np.uint8, copy=False), pred_np.astype(np.uint8, copy=False), n, n
        )
        return torch.from_numpy(hist)

    def _range_error(self, name: str, low: int, high: int) -> ValueError:
        """The refusal of ``name``'s values ``low…high``; only a target may hold the ignore index."""
        target = name == "target" and self.ignore_index is not None
        ignored = f" (or be the ignore index {self.ignore_index})" if target else ""
        return ValueError(f"{name} values must lie in 0…{self.num_classes - 1}{ignored}, got {low}…{high}")

    def _check(self, target: Tensor, preds: Tensor) -> None:
        """Raise unless targets and predictions hold class indices (targets may hold the ignore index)."""
        counted = (
            target != self.ignore_index
            if self.ignore_index is not None
            else torch.ones_like(target, dtype=torch.bool)
        )
        for name, values in (("target", target[counted]), ("prediction", preds)):
            if values.numel() and (values.min() < 0 or values.max() >= self.num_classes):
                raise self._range_error(name, int(values.min().item()), int(values.max().item()))

    def check_np(self, target: np.ndarray, preds: np.ndarray) -> None:
        """``_check`` on numpy arrays (the same error), without torch's threaded kernels."""
        counted = target if self.ignore_index is None else target[target != self.ignore_index]
        for name, values in (("target", counted), ("prediction", preds)):
            if values.size:
                low, high = int(values.min()), int(values.max())
                if low < 0 or high >= self.num_classes:
                    raise self._range_error(name, low, high)

    def compute(self) -> Tensor:
        """The matrix itself (subclasses turn it into their score)."""
        return self.confmat


def iou_from_confmat(confmat: Tensor) -> Tensor:
    """Per-class IoU from a C×C confusion matrix (rows target, columns prediction); NaN where union is 0."""
    confmat = confmat.double()
    intersection = torch.diag(confmat)
    union = confmat.sum(0) + confmat.sum(1) - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.full_like(union, float("nan")))


def without_ignored(scores: Tensor, ignore_index: int | None) -> Tensor:
    """Per-class ``scores`` with an ``ignore_index`` among the classes NaN (in place), out of the mean.

    It is never a target: predicting it is an error of the other classes.

    Args:
        scores: one score per class (float).
        ignore_index: the label of unlabelled pixels, or None.
    """
    if ignore_index is not None and 0 <= ignore_index < len(scores):
        scores[ignore_index] = float("nan")
    return scores


class DatasetMeanIoU(ConfusionMatrix):
    """mIoU over a dataset: the mean, over classes that occur, of intersection over union.

    Args:
        num_classes: number of classes C.
        ignore_index: target value of pixels that are not counted.
        validate_args: check that inputs hold class indices (see `ConfusionMatrix`).
        backend: how the matrix is counted (see `ConfusionMatrix`).
        **kwargs: `torchmetrics.Metric` arguments.
    """

    def per_class(self) -> Tensor:
        """Per-class IoU (float64, NaN where the class never occurred, and for an ``ignore_index`` class)."""
        return without_ignored(iou_from_confmat(self.confmat), self.ignore_index)

    def compute(self) -> Tensor:
        """Mean IoU over the classes that occur (NaN if no pixel was counted)."""
        return self.per_class().nanmean().float()


class DatasetMeanAccuracy(ConfusionMatrix):
    """Mean class accuracy (per-class recall) over a dataset; same inputs as :class:`DatasetMeanIoU`.

    Args:
        num_classes: number of classes C.
        ignore_index: target value of pixels that are not counted.
        validate_args: check that inputs hold class indices (see `ConfusionMatrix`).
        backend: how the matrix is counted (see `ConfusionMatrix`).
        **kwargs: `torchmetrics.Metric` arguments.
    """

    def per_class(self) -> Tensor:
        """Per-class accuracy tp / (tp + fn) (float64, NaN where the class is absent from the target)."""
        confmat = self.confmat.double()
        support = confmat.sum(1)
        return torch.where(
            support > 0, torch.diag(confmat) / support.clamp(min=1), torch.full_like(support, float("nan"))
        )

    def compute(self) -> Tensor:
        """Mean accuracy over the classes present in the target (NaN if none)."""
        return self.per_class().nanmean().float()
