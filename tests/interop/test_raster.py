"""Shapes are drawn within their box: the same pixels as drawing each on a mask of the whole frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from frugalseg.data.clips import LabelKind
from frugalseg.interop.raster import FrameLabel, rasterize
from frugalseg.interop.rle import polygon_mask
from frugalseg.interop.shapes import Frame, Shape


def _full_frame(shapes: list[Shape], size: tuple[int, int]) -> dict[LabelKind, np.ndarray]:
    """Each shape drawn on a mask of the whole frame, the way shapes were drawn before."""
    out: dict[LabelKind, FrameLabel] = {}
    kinds = {"polygon": LabelKind.FINE, "box": LabelKind.BOXES}
    for i, shape in enumerate(shapes):
        target = out.setdefault(
            kinds.get(shape.type, LabelKind.CLICKS), FrameLabel(np.full(size, 255, np.uint8))
        )
        assert shape.points is not None
        masks = []
        if shape.type == "polygon":
            masks = [polygon_mask(shape.points, *size)]
        elif shape.type == "box":
            (x0, y0), (x1, y1) = (
                np.floor(shape.points.min(0)).astype(int),
                np.ceil(shape.points.max(0)).astype(int),
            )
            masks = [np.zeros(size, bool)]
            masks[0][y0:y1, x0:x1] = True
        elif shape.type == "points":
            for x, y in np.floor(shape.points).astype(int).tolist():
                masks.append(np.zeros(size, bool))
                masks[-1][y, x] = True
        else:
            canvas = np.zeros(size, np.uint8)
            vertices = np.floor(shape.points).astype(np.int32).clip(0, [size[1] - 1, size[0] - 1])
            cv2.polylines(canvas, [vertices.reshape(-1, 1, 2)], isClosed=False, color=1, thickness=1)
            masks = [canvas.astype(bool)]
        for mask in masks:
            target.paint(mask, i, i + 1)
    return {kind: np.stack([label.label, label.instances]) for kind, label in out.items()}  # type: ignore[list-item]


def _random_shapes(rng: np.random.Generator, size: tuple[int, int]) -> list[Shape]:
    """Random polygons, boxes, points and polylines, on the frame's edges too (x = W, y = H)."""
    height, width = size
    shapes = []
    for i in range(40):
        kind = ("polygon", "box", "points", "polyline")[i % 4]
        count = int(rng.integers(3, 8)) if kind in ("polygon", "polyline") else 2
        points = rng.uniform(0, 1, (count, 2)) * (width, height)
        points[rng.uniform(size=points.shape) < 0.1] = 0.0
        if kind in ("polygon", "box"):
            edge = rng.uniform(size=count) < 0.1
            points[edge, 0] = width
        if kind == "points":
            points = np.minimum(points, (width - 0.5, height - 0.5))
        if kind == "box":
            points[1] = np.maximum(points[1], points[0] + 1)
            points = np.minimum(points, (width, height))
        shapes.append(Shape(kind, "object", f"shape {i}", points=np.round(points * 4) / 4, instance_id=i + 1))
    return shapes


@pytest.mark.parametrize("seed", range(5))
def test_shapes_drawn_within_their_box_match_the_full_frame_drawing(seed):
    size = (37, 53)
    shapes = _random_shapes(np.random.default_rng(seed), size)
    drawn = rasterize(Frame(0, size, shapes, "frame 0"), size, list(range(len(shapes))))
    expected = _full_frame(shapes, size)
    assert sorted(drawn) == sorted(expected)
    for kind, label in drawn.items():
        np.testing.assert_array_equal(
            np.stack([label.label, label.instances]), expected[kind], err_msg=kind.value
        )
