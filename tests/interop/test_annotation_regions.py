"""`annotation_regions`: which regions are objects, and which rectangles and keypoints made them."""

from __future__ import annotations

import numpy as np

from frugalseg.interop.label_studio_regions import annotation_regions
from frugalseg.interop.shapes import Shape


def _shape(kind: str, label: str = "") -> Shape:
    points = {"box": [[2.0, 3.0], [12.0, 13.0]], "points": [[5.0, 5.0]]}.get(kind)
    return Shape(kind, label, "r", points=None if points is None else np.array(points))


def test_a_rectangle_beside_its_objects_brush_is_the_box_it_was_drawn_in_and_its_keypoints_made_it() -> None:
    shapes = [_shape("box", "a"), _shape("points", "a"), _shape("mask", "a"), _shape("mask", "b")]
    found = annotation_regions(shapes, [{"id": str(k)} for k in range(4)], [1, 1, 1, 2])
    assert ([s.type for s in found.shapes], found.objects) == (["mask", "mask"], [1, 2])
    assert (found.rectangles, found.clicked, found.stray, found.box) == (
        {1: (2, 3, 11, 12)},
        {1: [(5, 5, True)]},
        [],
        None,
    )


def test_keypoints_of_an_object_whose_region_is_a_rectangle_are_not_stray() -> None:
    """Rect A + keypoints A + brush B had been refused: "keypoints of object 1 … draw its region"."""
    shapes = [_shape("box", "a"), _shape("points", "a"), _shape("mask", "b")]
    found = annotation_regions(shapes, [{"id": str(k)} for k in range(3)], [1, 1, 2])
    assert found.stray == [] and found.clicked == {1: [(5, 5, True)]}
    assert ([s.type for s in found.shapes], found.objects) == (["box", "mask"], [1, 2])


def test_a_keypoint_without_a_label_is_the_one_object_with_a_region_else_its_own() -> None:
    # the keypoint's own object (a new one, 3) has no region: beside one brush it is the brush's
    found = annotation_regions([_shape("points"), _shape("mask", "b")], [{"id": "k"}, {"id": "m"}], [3, 2])
    assert (found.clicked, found.stray) == ({2: [(5, 5, True)]}, [])
    # beside two objects' regions it stays its own, and is refused as stray
    shapes = [_shape("points"), _shape("mask", "b"), _shape("mask", "c")]
    found = annotation_regions(shapes, [{"id": "k"}, {"id": "m"}, {"id": "n"}], [3, 2, 4])
    assert (found.clicked, found.stray) == ({3: [(5, 5, True)]}, [3])
