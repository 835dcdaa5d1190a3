"""LightningModules: how students are trained and evaluated, all built on `BaseTask`."""

from frugalseg.lightning_modules.base import BaseTask, poly_schedule
from frugalseg.lightning_modules.distillation import DistillationModule, KDTerm
from frugalseg.lightning_modules.segmentation import VideoSegmentationModule
from frugalseg.lightning_modules.vos import VOSModule

__all__ = [
    "BaseTask",
    "DistillationModule",
    "KDTerm",
    "VOSModule",
    "VideoSegmentationModule",
    "poly_schedule",
]
