"""MOTS PNG exports read into shapes.

MOTS PNG (a folder holding ``labels.txt`` and the 16-bit ``<image>.png`` instance maps, or one
holding ``instances/``): a pixel value ``v`` is object ``v`` of class ``labels[v // 1000 − 1]``
(KITTI MOTS numbering, one-based class lines); 0 is background, 10000 an ignored region: its
pixels are 255 (ignore) in the imported label and no object in its instance ids, whatever the
mapping (`Shape.ignored`). A map of no object (background and ignored regions alone) is left out.
Frames are keyed by the PNG's path in its folder (``car-shadow/00000.png`` where a task's frames lie
in sub-folders; its stem matches frames of any extension).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from frugalseg.data.io import read_text
from frugalseg.errors import DataError
from frugalseg.interop.raster import IGNORE
from frugalseg.interop.registry import ToolFormat, register_reader
from frugalseg.interop.shapes import Frame, Shape, ToolExport
from frugalseg.interop.tool_files import AnyPath, png_files, read_png

#: MOTS PNG 1.0 (CVAT's name): a folder of 16-bit instance PNGs and labels.txt.
MOTS = ToolFormat("mots", "", "1.0")

MOTS_IGNORE = 10000


@register_reader(MOTS)
def read_mots(path: str | Path) -> ToolExport:
    """Read a MOTS PNG folder (``labels.txt`` and 16-bit instance PNGs, or one holding ``instances/``)."""
    path = Path(path)
    folder = path / "instances" if (path / "instances").is_dir() else path
    labels_file = folder / "labels.txt"
    if not labels_file.is_file():
        raise DataError(labels_file, "file does not exist: a MOTS export lists its classes in labels.txt")
    labels = [line.strip() for line in read_text(labels_file).splitlines() if line.strip()]
    frames = []
    for name, png in png_files(folder):
        ids = read_png(png)
        if ids.ndim != 2:
            raise DataError(str(png), "a MOTS instance map must be a single-channel PNG")
        frame = Frame(name, (ids.shape[0], ids.shape[1]), element=f"instances {name}")
        for value in np.unique(ids[(ids > 0) & (ids != MOTS_IGNORE)]).tolist():
            class_index = value // 1000 - 1
            if not 0 <= class_index < len(labels):
                problem = f"object {value}: class {value // 1000} is not a line of labels.txt ({len(labels)})"
                raise DataError(str(png), problem)
            element = f"instances {name} object {value}"
            shape = Shape("mask", labels[class_index], element, instance_id=value, mask_size=frame.size)
            shape.decode = partial(_mots_object, png, value)
            frame.shapes.append(shape)
        if frame.shapes and (ids == MOTS_IGNORE).any():
            ignored = Shape("mask", IGNORE, f"instances {name} ignored region {MOTS_IGNORE}", ignored=True)
            ignored.decode, ignored.mask_size = partial(_mots_object, png, MOTS_IGNORE), frame.size
            frame.shapes.append(ignored)
        frames.append(frame)
    return ToolExport(path, "mots", [f for f in frames if f.shapes], tuple(labels))


def _mots_object(png: AnyPath, value: int) -> np.ndarray:
    """The mask of object ``value`` in a MOTS instance map."""
    return np.asarray(read_png(png) == value)
