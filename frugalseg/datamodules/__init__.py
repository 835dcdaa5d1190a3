"""LightningDataModules: clips, recipes of label sources, and the loaders students train from.

The data modules and their options are imported when first asked for, so the frame helpers of
`frugalseg.datamodules.frames` (the annotation loop's) load without Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULES = {
    "AugmentOptions": "options",
    "LabelOptions": "options",
    "LoaderOptions": "options",
    "OneVideoDataModule": "one_video",
    "PredictOptions": "options",
    "RecipeOptions": "options",
    "SplitOptions": "options",
    "TemporalOptions": "options",
    "VOSDataModule": "vos",
    "VideoSegDataModule": "datamodule",
}
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


def __getattr__(name: str) -> Any:
    """A data module or options class, importing its module on first use."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
