"""CVAT Segmentation mask 1.1: object k is painted in colour k of the VOC palette on every image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from frugalseg.interop import read_export
from frugalseg.interop.cvat_mask import voc_colour

CAR = (250, 50, 83)


def _image(folder: Path, name: str, regions: dict[tuple[int, int, int], tuple[slice, slice]]) -> None:
    """SegmentationClass and SegmentationObject PNGs of ``name``: each object colour's region a car."""
    classes, objects = np.zeros((4, 6, 3), np.uint8), np.zeros((4, 6, 3), np.uint8)
    for colour, region in regions.items():
        classes[region], objects[region] = CAR, colour
    for sub, image in (("SegmentationClass", classes), ("SegmentationObject", objects)):
        (folder / sub).mkdir(exist_ok=True)
        cv2.imwrite(str(folder / sub / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def test_the_voc_palette_is_pascal_s():
    assert [voc_colour(k) for k in (0, 1, 2, 3, 4, 7, 8, 255)] == [
        (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 128, 128), (64, 0, 0),
        (224, 224, 192),
    ]  # fmt: skip


def test_an_object_keeps_its_palette_index_as_id_on_every_image(tmp_path):
    (tmp_path / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar:250,50,83::\n", encoding="utf-8"
    )
    # frame 10: objects 1 (128, 0, 0) and 2 (0, 128, 0); frame 20: object 2 alone, then 3 (128, 128, 0)
    # and a colour of no palette index, which takes the first id no object of the image has
    _image(tmp_path, "frame_000010.png", {(128, 0, 0): (slice(0, 1), slice(0, 2)), (0, 128, 0): (2, 5)})
    _image(
        tmp_path,
        "frame_000020.png",
        {(0, 128, 0): (slice(1, 3), 4), (128, 128, 0): (3, slice(0, 3)), (9, 9, 9): (0, 0)},
    )
    export = read_export("cvat-mask", tmp_path)
    objects = {
        (frame.key, shape.instance_id): np.argwhere(shape.get_mask()).tolist()
        for frame in export.frames
        for shape in frame.shapes
        if shape.label == "car"
    }
    assert objects == {
        ("frame_000010.png", 1): [[0, 0], [0, 1]],
        ("frame_000010.png", 2): [[2, 5]],
        ("frame_000020.png", 2): [[1, 4], [2, 4]],
        ("frame_000020.png", 3): [[3, 0], [3, 1], [3, 2]],
        ("frame_000020.png", 1): [[0, 0]],
    }
