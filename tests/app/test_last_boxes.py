"""`LastBoxes`: which of an annotation's objects a task's last interactive rectangles made."""

from __future__ import annotations

import numpy as np

from frugalseg.app.last_boxes import LastBoxes
from frugalseg.interop.label_studio_regions import AnnotationRegions
from frugalseg.interop.shapes import Shape


def test_only_the_backends_answer_inside_a_rectangle_is_booked_as_its_box() -> None:
    """A hand-painted region (another id), or one leaving the rectangle, is no box; each object its own."""
    boxes = LastBoxes()
    frame = ("blackswan", 6)
    boxes.remember("7", frame, 1, (10, 10, 29, 29))
    boxes.remember("7", frame, 2, (40, 10, 59, 29))
    inside = np.zeros((48, 64), bool)
    inside[12:20, 12:20] = True
    leaving = np.zeros((48, 64), bool)
    leaving[12:20, 45:64] = True
    shapes = [Shape("mask", "a", "r"), Shape("mask", "b", "r")]
    answered = AnnotationRegions(shapes, [{"id": "frugalseg-1"}, {"id": "frugalseg-2"}], [1, 2])
    drawn = boxes.drawn("7", frame, answered, {1: inside, 2: leaving})
    assert list(drawn) == [1] and drawn[1].corners == (10, 10, 30, 30)
    painted = AnnotationRegions(shapes, [{"id": "Xy12"}, {"id": "frugalseg-2"}], [1, 2])
    assert boxes.drawn("7", frame, painted, {1: inside, 2: leaving}) == {}
    assert boxes.drawn("7", ("blackswan", 5), answered, {1: inside}) == {}  # another frame
    boxes.forget("7")
    assert boxes.drawn("7", frame, answered, {1: inside}) == {}
