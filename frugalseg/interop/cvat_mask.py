"""CVAT's "Segmentation mask 1.1" export read into shapes.

CVAT Segmentation mask 1.1 (the zip CVAT gives, or its folder unzipped): ``labelmap.txt``
(``# label:color_rgb:parts:actions`` then ``name:r,g,b::`` lines), ``SegmentationClass/<image>.png``
with each pixel in its label's colour, and optionally ``SegmentationObject/<image>.png`` with each
object in a colour of its own.
Each (label, object) region is a mask. CVAT paints object k in colour k of the Pascal VOC palette
(`voc_colour`: 1 is (128, 0, 0), 2 is (0, 128, 0), 3 is (128, 128, 0) …), so an object's instance id
is the palette index of its colour, the same on every image it is on. Colours outside the palette
(not CVAT's) take the ids no palette colour of the image takes, 1, 2 …, in the order of the colours
(sorted RGB). A colour that ``labelmap.txt`` does not list is an error naming the image and the pixel.
"""

from __future__ import annotations

import zipfile
import zlib
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from frugalseg.errors import DataError
from frugalseg.interop.registry import ToolFormat, register_reader
from frugalseg.interop.shapes import Frame, Shape, ToolExport
from frugalseg.interop.tool_files import AnyPath, png_files, read_png

#: CVAT's Segmentation mask 1.1: the zip CVAT exports, or its folder.
CVAT_MASK = ToolFormat("cvat-mask", ".zip", "1.1")


def read_labelmap(path: AnyPath) -> dict[tuple[int, int, int], str]:
    """CVAT's ``labelmap.txt``: RGB colour → label name."""
    if not path.is_file():
        raise DataError(str(path), "file does not exist: a CVAT Segmentation mask export holds labelmap.txt")
    colours: dict[tuple[int, int, int], str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(str(path), f"cannot read ({err})") from err
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        try:
            r, g, b = (int(v) for v in rest.split(":")[0].split(","))
        except ValueError as err:
            raise DataError(str(path), f"line {number}: expected 'name:r,g,b::', got {line!r}") from err
        colours[(r, g, b)] = name
    return colours


def voc_colour(index: int) -> tuple[int, int, int]:
    """Colour ``index`` (0…255) of the Pascal VOC palette: its bits 3j, 3j+1, 3j+2 are bit 7−j of R, G, B."""
    rgb = [0, 0, 0]
    for j in range(8):
        for channel in range(3):
            rgb[channel] |= (index >> (3 * j + channel) & 1) << (7 - j)
    return rgb[0], rgb[1], rgb[2]


#: Packed RGB (`_colour_ids`) of each VOC palette colour → its index, the object ids CVAT paints.
VOC_INDEX = {(r << 16) | (g << 8) | b: k for k in range(256) for r, g, b in [voc_colour(k)]}


def _object_numbers(codes: set[int]) -> dict[int, int]:
    """Object colour (packed RGB) → instance id: its VOC palette index; others free ids 1, 2 … in order."""
    numbers = {code: VOC_INDEX[code] for code in codes if code in VOC_INDEX}
    free = (k for k in range(1, len(codes) + 1) if k not in numbers.values())
    return numbers | {code: next(free) for code in sorted(codes - set(numbers))}


def _colour_ids(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return np.asarray((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])


def _region_keys(png: AnyPath, objects_png: AnyPath) -> np.ndarray:
    """Per pixel, its class colour · 2²⁴ + its object colour (0 where the export has no objects)."""
    classes = _colour_ids(cv2.cvtColor(read_png(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    if not objects_png.is_file():
        return classes << 24
    objects = _colour_ids(cv2.cvtColor(read_png(objects_png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    if objects.shape != classes.shape:
        raise DataError(str(objects_png), f"object PNG of {objects.shape[::-1]} differs from {png}'s size")
    return np.asarray((classes << 24) + objects)


def _region(png: AnyPath, objects_png: AnyPath, key: int) -> np.ndarray:
    return np.asarray(_region_keys(png, objects_png) == key)


def _root(path: Path) -> AnyPath:
    """The export's folder, or its zip's root; `DataError` naming a file that is no zip or a damaged one."""
    if path.is_dir():
        return path
    if not path.is_file():
        raise DataError(path, "does not exist: a cvat-mask export is CVAT's zip or its folder")
    try:
        return zipfile.Path(zipfile.ZipFile(path))
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(
            path, f"not a zip file, or a damaged one ({err}): a cvat-mask export is CVAT's zip or its folder"
        ) from err


@register_reader(CVAT_MASK)
def read_cvat_mask(path: str | Path) -> ToolExport:
    """Read a CVAT Segmentation mask 1.1 export, its zip or its folder (module docstring)."""
    path = Path(path)
    root = _root(path)
    colours = read_labelmap(root / "labelmap.txt")
    codes = {(r << 16) | (g << 8) | b: name for (r, g, b), name in colours.items()}
    folder = root / "SegmentationClass"
    if not folder.is_dir():
        raise DataError(str(folder), "folder does not exist: a CVAT Segmentation mask export holds it")
    pngs = png_files(folder)
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
        numbers = _object_numbers({key & 0xFFFFFF for key in present} - {0})
        for key in present:
            label = codes[key >> 24]
            shape = Shape(
                "mask", label, f"mask {name} label {label!r}", instance_id=numbers.get(key & 0xFFFFFF)
            )
            shape.decode, shape.mask_size = partial(_region, png, objects_png, key), size
            frame.shapes.append(shape)
        frames.append(frame)
    return ToolExport(path, "cvat-mask", frames, tuple(colours.values()))
