"""The data core (no Lightning): clips and label kinds, class tables, IO, costs, and the data set formats."""

from frugalseg.data.classes import CITYSCAPES, ClassTable
from frugalseg.data.clips import IGNORE_INDEX, TRAIN_IDS, Clip, LabelKind, LabelRef
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.data.formats import FORMATS, Format, Problem, detect_format, get_format
from frugalseg.data.io import cache_dir, read_frame, read_label
from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "CITYSCAPES",
    "DEFAULT_COSTS",
    "FORMATS",
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TRAIN_IDS",
    "AnnotationCosts",
    "ClassTable",
    "Clip",
    "Format",
    "LabelKind",
    "LabelRef",
    "Problem",
    "cache_dir",
    "detect_format",
    "get_format",
    "read_frame",
    "read_label",
]
