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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric


class ConfusionMatrix(Metric):
    """A C×C confusion matrix of class maps summed over a dataset (the state of mIoU and mAcc).

    Args:
        num_classes: number of classes C.
        ignore_index: target value of pixels that are not counted.
        validate_args: check that predictions and targets hold class indices (or the ignore index);
            switch off where the inputs are already known to (arg-max predictions, checked labels).
        **kwargs: `torchmetrics.Metric` arguments.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True
    confmat: Tensor

    def __init__(
        self, num_classes: int, ignore_index: int | None = 255, validate_args: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.add_state(
            "confmat", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum"
        )

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Count ``preds`` (B×H×W class indices or B×C×H×W logits) against ``target`` (B×H×W)."""
        if preds.is_floating_point():
            preds = preds.argmax(1)
        if preds.shape != target.shape:
            raise ValueError(
                f"predictions of shape {tuple(preds.shape)} do not match targets of shape "
                f"{tuple(target.shape)}"
            )
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
        self.confmat += counts[:cells].view(self.num_classes, self.num_classes).to(self.confmat)

    def _check(self, target: Tensor, preds: Tensor) -> None:
        """Raise unless targets and predictions hold class indices (targets may hold the ignore index)."""
        counted = (
            target != self.ignore_index
            if self.ignore_index is not None
            else torch.ones_like(target, dtype=torch.bool)
        )
        for name, values in (("target", target[counted]), ("prediction", preds)):
            if values.numel() and (values.min() < 0 or values.max() >= self.num_classes):
                raise ValueError(
                    f"{name} values must lie in 0…{self.num_classes - 1} (or be the ignore index "
                    f"{self.ignore_index}), got {values.min().item()}…{values.max().item()}"
                )

    def compute(self) -> Tensor:
        """The matrix itself (subclasses turn it into their score)."""
        return self.confmat


def iou_from_confmat(confmat: Tensor) -> Tensor:
    """Per-class IoU from a C×C confusion matrix (rows target, columns prediction); NaN where union is 0."""
    confmat = confmat.double()
    intersection = torch.diag(confmat)
    union = confmat.sum(0) + confmat.sum(1) - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.full_like(union, float("nan")))


class DatasetMeanIoU(ConfusionMatrix):
    """mIoU over a dataset: the mean, over classes that occur, of intersection over union.

    Args:
        num_classes: number of classes C.
        ignore_index: target value of pixels that are not counted.
        validate_args: check that inputs hold class indices (see `ConfusionMatrix`).
        **kwargs: `torchmetrics.Metric` arguments.
    """

    def per_class(self) -> Tensor:
        """Per-class IoU (float64, NaN where the class never occurred)."""
        return iou_from_confmat(self.confmat)

    def compute(self) -> Tensor:
        """Mean IoU over the classes that occur (NaN if no pixel was counted)."""
        return self.per_class().nanmean().float()


class DatasetMeanAccuracy(ConfusionMatrix):
    """Mean class accuracy (per-class recall) over a dataset; same inputs as :class:`DatasetMeanIoU`.

    Args:
        num_classes: number of classes C.
        ignore_index: target value of pixels that are not counted.
        validate_args: check that inputs hold class indices (see `ConfusionMatrix`).
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
