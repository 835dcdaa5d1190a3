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


def test_keypoints_of_both_labels_answered_at_once_each_keep_the_others() -> None:
    """Two requests of one task answered at once (the backend's thread pool) had each read the keypoints, then
    kept its own: the later one dropped the other's click. Kept in the order clicked, a label's repeated."""
    from frugalseg.active.objects.simulation.annotation_types import GivenClick

    boxes = LastBoxes()
    frame = ("blackswan", 6)
    boxes.remember("7", frame, 1, (10, 10, 29, 29))
    positive, negative, second = (
        GivenClick(1, 12, 12, True),
        GivenClick(1, 25, 12, False),
        GivenClick(1, 14, 20, True),
    )
    assert boxes.with_clicks("7", 1, "object", [positive]) == (("object", positive),)
    assert boxes.with_clicks("7", 1, "background", [negative]) == (
        ("object", positive),
        ("background", negative),
    )
    assert boxes.with_clicks("7", 1, "object", [positive, second]) == (
        ("object", positive),
        ("background", negative),
        ("object", second),
    )
    assert boxes.with_clicks("8", 1, "object", [positive]) == (("object", positive),)  # no rectangle: its own
