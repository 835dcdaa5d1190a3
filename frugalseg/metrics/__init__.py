"""Segmentation metrics as torchmetrics ``Metric``s with summed states (exact under DDP).

The metrics are imported when first asked for, so `frugalseg.metrics.mask_scores` (what the annotation
tools score with) loads without torchmetrics, which imports torchvision and scipy's signal and stats.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frugalseg.metrics.boundary import BoundaryIoU
    from frugalseg.metrics.jf import JF
    from frugalseg.metrics.segmentation import DatasetMeanAccuracy, DatasetMeanIoU
    from frugalseg.metrics.temporal import TemporalConsistency

_MODULES = {
    "BoundaryIoU": "boundary",
    "JF": "jf",
    "DatasetMeanAccuracy": "segmentation",
    "DatasetMeanIoU": "segmentation",
    "TemporalConsistency": "temporal",
}
__all__ = ["BoundaryIoU", "JF", "DatasetMeanAccuracy", "DatasetMeanIoU", "TemporalConsistency"]


def __getattr__(name: str) -> Any:
    """A metric class, importing its module on first use."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
