"""Exports made of PNG masks: CVAT's "Segmentation mask 1.1" and MOTS PNG, read into shapes.

CVAT Segmentation mask 1.1 (the zip CVAT gives, or its folder unzipped): ``labelmap.txt``
(``# label:color_rgb:parts:actions`` then ``name:r,g,b::`` lines), ``SegmentationClass/<image>.png``
with each pixel in its label's colour, and optionally ``SegmentationObject/<image>.png`` with each
object in a colour of its own.
Each (label, object) region is a mask; objects are numbered per image in the order of their colours
(sorted RGB), so instance ids are stable. A colour that ``labelmap.txt`` does not list is an error
naming the image and the pixel.

MOTS PNG (a folder holding ``labels.txt`` and the 16-bit ``<image>.png`` instance maps, or one
holding ``instances/``): a pixel value ``v`` is object ``v`` of class ``labels[v // 1000 − 1]``
(KITTI MOTS numbering, one-based class lines); 0 is background, 10000 an ignored region.
Frames are keyed by the PNG's path in its folder (``car-shadow/00000.png`` where a task's frames lie
in sub-folders; its stem matches frames of any extension).
"""

from __future__ import annotations

import zipfile
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from frugalseg.errors import DataError
from frugalseg.interop.shapes import Frame, Shape, ToolExport

MOTS_IGNORE = 10000

#: A file in a folder or inside a zip.
AnyPath = Path | zipfile.Path


def _read_png(path: AnyPath, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    try:
        data = path.read_bytes()
    except (OSError, KeyError) as err:
        raise DataError(str(path), f"cannot read ({err})") from err
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise DataError(str(path), "cannot decode image (corrupt or not an image)")
    return image


def read_labelmap(path: AnyPath) -> dict[tuple[int, int, int], str]:
    """CVAT's ``labelmap.txt``: RGB colour → label name."""
    if not path.is_file():
        raise DataError(str(path), "file does not exist: a CVAT Segmentation mask export holds labelmap.txt")
    colours: dict[tuple[int, int, int], str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        try:
            r, g, b = (int(v) for v in rest.split(":")[0].split(","))
        except ValueError as err:
            raise DataError(str(path), f"line {number}: expected 'name:r,g,b::', got {line!r}") from err
        colours[(r, g, b)] = name
    return colours


def _colour_ids(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]


def _region_keys(png: AnyPath, objects_png: AnyPath) -> np.ndarray:
    """Per pixel, its class colour · 2²⁴ + its object colour (0 where the export has no objects)."""
    classes = _colour_ids(cv2.cvtColor(_read_png(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    if not objects_png.is_file():
        return classes << 24
    objects = _colour_ids(cv2.cvtColor(_read_png(objects_png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    if objects.shape != classes.shape:
        raise DataError(str(objects_png), f"object PNG of {objects.shape[::-1]} differs from {png}'s size")
    return (classes << 24) + objects


def _pngs(folder: AnyPath, prefix: str = "") -> list[tuple[str, AnyPath]]:
    """The PNGs under ``folder`` with their paths in it (``car-shadow/00000.png``), sorted by path.

    A tool names a frame by its path in the task, so frames of several clips lie in sub-folders.
    """
    found: list[tuple[str, AnyPath]] = []
    for entry in folder.iterdir():
        if entry.is_dir():
            found += _pngs(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".png"):
            found.append((prefix + entry.name, entry))
    return sorted(found, key=lambda item: item[0])


def _region(png: AnyPath, objects_png: AnyPath, key: int) -> np.ndarray:
    return np.asarray(_region_keys(png, objects_png) == key)


def read_cvat_mask(path: str | Path) -> ToolExport:
    """Read a CVAT Segmentation mask 1.1 export, its zip or its folder (module docstring)."""
    path = Path(path)
    root: AnyPath = zipfile.Path(path) if zipfile.is_zipfile(path) else path
    colours = read_labelmap(root / "labelmap.txt")
    codes = {(r << 16) | (g << 8) | b: name for (r, g, b), name in colours.items()}
    folder = root / "SegmentationClass"
    if not folder.is_dir():
        raise DataError(str(folder), "folder does not exist: a CVAT Segmentation mask export holds it")
    pngs = _pngs(folder)
    if not pngs:
        raise DataError(str(folder), "holds no PNG masks")
    frames = []
    for name, png in pngs:
        objects_png = (root / "SegmentationObject").joinpath(*name.split("/"))
        keys = _region_keys(png, objects_png)
        unknown = ~np.isin(keys >> 24, list(codes))
        if unknown.any():
            y, x = np.argwhere(unknown)[0]
            code = int(keys[y, x] >> 24)
            rgb = f"{code >> 16},{code >> 8 & 255},{code & 255}"
            raise DataError(
                str(png), f"pixel (x={x}, y={y}) has colour {rgb}, which labelmap.txt does not list"
            )
        size = (keys.shape[0], keys.shape[1])
        frame = Frame(name, size, element=f"mask {name}")
        present = np.unique(keys).tolist()
        numbers = {
            code: k for k, code in enumerate(sorted({key & 0xFFFFFF for key in present} - {0}), start=1)
        }
        for key in present:
            label = codes[key >> 24]
            shape = Shape(
                "mask", label, f"mask {name} label {label!r}", instance_id=numbers.get(key & 0xFFFFFF)
            )
            shape.decode, shape.mask_size = partial(_region, png, objects_png, key), size
            frame.shapes.append(shape)
        frames.append(frame)
    return ToolExport(path, "cvat-mask", frames, tuple(colours.values()))


def read_mots(path: str | Path) -> ToolExport:
    """Read a MOTS PNG folder (``labels.txt`` and 16-bit instance PNGs, or one holding ``instances/``)."""
    path = Path(path)
    folder = path / "instances" if (path / "instances").is_dir() else path
    labels_file = folder / "labels.txt"
    if not labels_file.is_file():
        raise DataError(labels_file, "file does not exist: a MOTS export lists its classes in labels.txt")
    labels = [line.strip() for line in labels_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    frames = []
    for name, png in _pngs(folder):
        ids = _read_png(png)
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
        frames.append(frame)
    return ToolExport(path, "mots", [f for f in frames if f.shapes], tuple(labels))


def _mots_object(png: AnyPath, value: int) -> np.ndarray:
    """The mask of object ``value`` in a MOTS instance map."""
    return np.asarray(_read_png(png) == value)
