"""LightningModules: how students are trained and evaluated."""

from frugalseg.lightning_modules.segmentation import VideoSegmentationModule

__all__ = ["VideoSegmentationModule"]
