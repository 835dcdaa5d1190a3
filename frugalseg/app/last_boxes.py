"""Each Label Studio task's last interactive rectangle, for the keypoints and the annotation after it.

Label Studio's editor sends an interactive request the regions of the type and label just drawn
only: a smart keypoint clicked after a smart rectangle comes without it. The ML backend keeps each
task's last rectangle of each object (`LastBoxes`), so that keypoints inside it correct the box's
mask, as the page's clicks after a box do, and the annotation then submitted with that answer books
its object as a box with those keypoints as its corrective clicks. A task's rectangles are forgotten
once the task is annotated, skipped or opened again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np

from frugalseg.active.objects.session.given import MAX_BOX_CLICKS, DrawnBox
from frugalseg.active.objects.simulation.annotation_types import GivenClick
from frugalseg.interop.label_studio_regions import AnnotationRegions

#: A rectangle's pixels, (x0, y0, x1, y1) corners included.
Corners = tuple[int, int, int, int]


class LastBoxes:
    """Task id → each object's last interactive rectangle: (video, frame) and corners (``most`` tasks)."""

    def __init__(self, most: int = 100) -> None:
        self.most = most
        self._boxes: OrderedDict[str, dict[int, tuple[tuple[str, int], Corners]]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, task: str, frame: tuple[str, int], obj: int, corners: Corners) -> None:
        """Keep ``corners`` as the task's last rectangle of object ``obj`` on ``frame`` (its mask made)."""
        with self._lock:
            boxes = self._boxes.pop(task, {})
            self._boxes[task] = {**boxes, obj: (frame, corners)}
            while len(self._boxes) > self.most:
                self._boxes.popitem(last=False)

    def forget(self, task: str) -> None:
        """Forget the task's rectangles: the task was annotated, skipped or opened again."""
        with self._lock:
            self._boxes.pop(task, None)

    def _last(self, task: str, frame: tuple[str, int], obj: int) -> Corners | None:
        with self._lock:
            last = self._boxes.get(task, {}).get(obj)
        return None if last is None or last[0] != frame else last[1]

    def corrected(
        self, task: str, frame: tuple[str, int], obj: int, clicks: Sequence[GivenClick]
    ) -> Corners | None:
        """The task's last rectangle of ``obj`` on ``frame`` where ``clicks`` correct it (each inside it)."""
        corners = self._last(task, frame, obj)
        if corners is None or not clicks:
            return None
        x0, y0, x1, y1 = corners
        return corners if all(x0 <= c.x <= x1 and y0 <= c.y <= y1 for c in clicks) else None

    def drawn(
        self, task: str, frame: tuple[str, int], regions: AnnotationRegions, masks: Mapping[int, np.ndarray]
    ) -> dict[int, DrawnBox]:
        """The objects of an annotation of ``frame`` the box tool made, each with its corrective keypoints.

        One painted beside a rectangle and keypoints of its own (`AnnotationRegions`), and one whose region
        is the answer to the task's last rectangle of it: the backend's brush (``frugalseg-<object>``)
        inside that rectangle.

        Args:
            task: the task's id.
            frame: its (video, frame).
            regions: the annotation's regions.
            masks: object → its mask in the annotation.
        """
        made = {obj: corners for obj, corners in regions.rectangles.items() if obj in regions.clicked}
        answers = {
            o
            for o, r in zip(regions.objects, regions.results, strict=True)
            if r.get("id") == f"frugalseg-{o}"
        }
        for obj in answers - set(made):
            corners = self._last(task, frame, obj)
            if corners is not None and obj in masks and _inside(masks[obj], corners):
                made[obj] = corners
        return {
            obj: DrawnBox(x0, y0, x1 + 1, y1 + 1, min(len(regions.clicked.get(obj, ())), MAX_BOX_CLICKS))
            for obj, (x0, y0, x1, y1) in made.items()
            if obj in masks
        }


def _inside(mask: np.ndarray, corners: Corners) -> bool:
    """Whether every pixel of ``mask`` lies within ``corners`` (included)."""
    x0, y0, x1, y1 = corners
    outside = mask.copy()
    outside[y0 : y1 + 1, x0 : x1 + 1] = False
    return bool(mask.any()) and not outside.any()
