"""LightningDataModules: clips, recipes of label sources, and the loaders students train from."""

from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.one_video import OneVideoDataModule
from frugalseg.datamodules.options import (
    AugmentOptions,
    LabelOptions,
    LoaderOptions,
    PredictOptions,
    RecipeOptions,
    SplitOptions,
    TemporalOptions,
)
from frugalseg.datamodules.vos import VOSDataModule

__all__ = [
    "AugmentOptions",
    "LabelOptions",
    "LoaderOptions",
    "OneVideoDataModule",
    "PredictOptions",
    "RecipeOptions",
    "SplitOptions",
    "TemporalOptions",
    "VOSDataModule",
    "VideoSegDataModule",
]
