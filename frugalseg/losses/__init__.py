"""Segmentation losses, the registry that builds them by name, and the per-kind `RoutedLoss`.

Every label loss is an ``nn.Module`` with ``forward(logits, target, *, image=None, valid=None)``
returning a scalar: ``image`` is the target frame as the student sees it (losses that read colour
use it) and ``valid`` the pixels inside the augmented frame. Each module's ``forward`` calls a
function that does the work (``phuber_cross_entropy``, ``gated_crf_loss``, …).
"""

from frugalseg.losses.cross_entropy import CrossEntropy
from frugalseg.losses.distillation import consistency_weight, kd_loss, mfd_loss
from frugalseg.losses.gated_crf import GatedCRFLoss, PartialCrossEntropy, gated_crf_loss
from frugalseg.losses.phuber import PHuberCrossEntropy, confidence_filter, iou_filter, phuber_cross_entropy
from frugalseg.losses.registry import LOSSES, get_loss
from frugalseg.losses.routing import DEFAULT_LOSSES, RoutedLoss
from frugalseg.losses.temporal import temporal_consistency_loss

__all__ = [
    "DEFAULT_LOSSES",
    "LOSSES",
    "CrossEntropy",
    "GatedCRFLoss",
    "PHuberCrossEntropy",
    "PartialCrossEntropy",
    "RoutedLoss",
    "confidence_filter",
    "consistency_weight",
    "gated_crf_loss",
    "get_loss",
    "iou_filter",
    "kd_loss",
    "mfd_loss",
    "phuber_cross_entropy",
    "temporal_consistency_loss",
]
