"""LightningModules: how students are trained and evaluated."""

from frugalseg.lightning_modules.distillation import DistillationModule, KDTerm
from frugalseg.lightning_modules.segmentation import VideoSegmentationModule
from frugalseg.lightning_modules.vos import VOSModule

__all__ = ["DistillationModule", "KDTerm", "VideoSegmentationModule", "VOSModule"]
