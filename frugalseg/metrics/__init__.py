"""Segmentation metrics as torchmetrics ``Metric``s with summed states (exact under DDP)."""

from frugalseg.metrics.boundary import BoundaryIoU
from frugalseg.metrics.jf import JF
from frugalseg.metrics.segmentation import DatasetMeanAccuracy, DatasetMeanIoU
from frugalseg.metrics.temporal import TemporalConsistency

__all__ = ["BoundaryIoU", "JF", "DatasetMeanAccuracy", "DatasetMeanIoU", "TemporalConsistency"]
