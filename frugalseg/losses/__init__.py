"""Segmentation losses and a registry that builds them by name.

Every loss is an ``nn.Module`` with ``forward(logits, target, batch=None) -> scalar``; ``batch``
carries the extras some losses need (neighbours, flow, clicks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from frugalseg.losses.cross_entropy import CrossEntropy
from frugalseg.losses.distillation import consistency_weight, kd_loss, mfd_loss
from frugalseg.losses.gated_crf import GatedCRFLoss, PartialCrossEntropy, gated_crf_loss
from frugalseg.losses.phuber import PHuberCrossEntropy, confidence_filter, iou_filter, phuber_cross_entropy
from frugalseg.losses.temporal import temporal_consistency_loss


def _ohem_ce(**kwargs: Any) -> CrossEntropy:
    kwargs.setdefault("ohem_threshold", 0.7)
    return CrossEntropy(**kwargs)


#: Loss name → factory taking the loss's keyword arguments.
LOSSES: dict[str, Callable[..., nn.Module]] = {
    "ce": CrossEntropy,
    "ohem_ce": _ohem_ce,
    "phuber_ce": PHuberCrossEntropy,
    "partial_ce": PartialCrossEntropy,
    "gated_crf": GatedCRFLoss,
}


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the loss registered as ``name`` with ``kwargs``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}")
    return LOSSES[name](**kwargs)


__all__ = [
    "LOSSES",
    "CrossEntropy",
    "GatedCRFLoss",
    "PHuberCrossEntropy",
    "PartialCrossEntropy",
    "build_loss",
    "confidence_filter",
    "consistency_weight",
    "gated_crf_loss",
    "iou_filter",
    "kd_loss",
    "mfd_loss",
    "phuber_cross_entropy",
    "temporal_consistency_loss",
]
