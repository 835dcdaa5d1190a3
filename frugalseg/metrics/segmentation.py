"""Dataset-level mIoU and mean class accuracy with the semantic-segmentation convention.

Both metrics accumulate summed states over the whole dataset (a confusion matrix for
:class:`MeanIoU`, per-class tp/fp/tn/fn for :class:`MeanAccuracy`), so they are exact under DDP
and are not a mean of per-batch values.

Averaging convention (mmseg / Cityscapes): the mean runs over the classes that occur, i.e. a
nan-mean of per-class values where a class without data is NaN.

- IoU of class c is NaN when c is absent from both target and prediction (union 0). A class that
  appears only in the prediction has IoU 0 and counts. torchmetrics' ``average="macro"`` already
  drops union-0 classes, but its per-class (``average="none"``) output reports them as 0.
- Accuracy (recall) of class c is NaN when c is absent from the target. torchmetrics'
  ``average="macro"`` instead counts a class that occurs only in the prediction as accuracy 0 and
  drags the mean down; :class:`MeanAccuracy` overrides ``compute`` to follow the convention.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex


def iou_from_confmat(confmat: Tensor) -> Tensor:
    """Per-class IoU from a C×C confusion matrix (rows target, columns prediction); NaN where union is 0."""
    confmat = confmat.double()
    intersection = torch.diag(confmat)
    union = confmat.sum(0) + confmat.sum(1) - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.full_like(union, float("nan")))


class MeanIoU(MulticlassJaccardIndex):
    """mIoU over a dataset: preds B×H×W class indices or B×C×H×W logits, target B×H×W long.

    ``compute`` returns the mean IoU over classes present in target or prediction;
    :meth:`per_class` returns the C per-class IoUs (NaN for absent classes) for a table.
    """

    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int | None = 255, **kwargs: Any) -> None:
        super().__init__(num_classes=num_classes, average="macro", ignore_index=ignore_index, **kwargs)

    def per_class(self) -> Tensor:
        """Per-class IoU (float64, NaN where the class never occurred)."""
        return iou_from_confmat(self.confmat)

    def compute(self) -> Tensor:
        """Mean IoU over the classes that occur (NaN if no pixel was counted)."""
        return self.per_class().nanmean().float()


class MeanAccuracy(MulticlassAccuracy):
    """Mean class accuracy (per-class recall) over a dataset; same inputs as :class:`MeanIoU`.

    Averages over the classes present in the target (see the module docstring for how this
    differs from torchmetrics' ``average="macro"``).
    """

    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int | None = 255, **kwargs: Any) -> None:
        super().__init__(num_classes=num_classes, average="macro", ignore_index=ignore_index, **kwargs)

    def per_class(self) -> Tensor:
        """Per-class accuracy tp / (tp + fn) (float64, NaN where the class is absent from the target)."""
        tp = self.tp.double()
        support = tp + self.fn.double()
        return torch.where(support > 0, tp / support.clamp(min=1), torch.full_like(support, float("nan")))

    def compute(self) -> Tensor:
        """Mean accuracy over the classes present in the target (NaN if none)."""
        return self.per_class().nanmean().float()
