"""frugalseg: video segmentation on a fraction of the manual labels."""

__version__ = "0.1.0"
