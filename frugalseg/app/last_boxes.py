"""Each Label Studio task's last interactive rectangle, for the keypoints and the annotation after it.

Label Studio's editor sends an interactive request the regions of the type and label just drawn
only: a smart keypoint clicked after a smart rectangle comes without it. The ML backend keeps each
task's last rectangle (`LastBoxes`), so that keypoints inside it correct the box's mask, as the page's
clicks after a box do, and the annotation then submitted books its object as a box with those
keypoints as its corrective clicks. A task's rectangle is forgotten once the task is annotated or
skipped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from frugalseg.active.objects.session.given import MAX_BOX_CLICKS, DrawnBox
from frugalseg.active.objects.simulation.annotation_types import GivenClick
from frugalseg.interop.label_studio import AnnotationRegions

#: A rectangle's pixels, (x0, y0, x1, y1) corners included.
Corners = tuple[int, int, int, int]


class LastBoxes:
    """Task id → its last interactive rectangle: (video, frame), object and corners (the ``most`` latest)."""

    def __init__(self, most: int = 100) -> None:
        self.most = most
        self._boxes: OrderedDict[str, tuple[tuple[str, int], int, Corners]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, task: str, frame: tuple[str, int], obj: int, corners: Corners) -> None:
        """Keep ``corners`` as the task's last rectangle, of object ``obj`` on ``frame`` (its mask made)."""
        with self._lock:
            self._boxes.pop(task, None)
            self._boxes[task] = (frame, obj, corners)
            while len(self._boxes) > self.most:
                self._boxes.popitem(last=False)

    def forget(self, task: str) -> None:
        """Forget the task's rectangle: the task was annotated or skipped."""
        with self._lock:
            self._boxes.pop(task, None)

    def corrected(
        self, task: str, frame: tuple[str, int], obj: int, clicks: Sequence[GivenClick]
    ) -> Corners | None:
        """The task's last rectangle where ``clicks`` of ``obj`` on ``frame`` correct it (each inside it)."""
        with self._lock:
            last = self._boxes.get(task)
        if last is None or last[:2] != (frame, obj) or not clicks:
            return None
        x0, y0, x1, y1 = last[2]
        return last[2] if all(x0 <= c.x <= x1 and y0 <= c.y <= y1 for c in clicks) else None

    def drawn(
        self, task: str, frame: tuple[str, int], regions: AnnotationRegions, held: set[int]
    ) -> dict[int, DrawnBox]:
        """The objects of an annotation of ``frame`` the box tool made, each with its corrective keypoints.

        The object of the task's last rectangle, and one painted beside a rectangle and keypoints of
        its own (`frugalseg.interop.label_studio.annotation_regions`); ``held``: the annotation's objects.
        """
        made = {obj: corners for obj, corners in regions.rectangles.items() if obj in regions.clicked}
        with self._lock:
            last = self._boxes.get(task)
        if last is not None and last[0] == frame:
            made.setdefault(last[1], last[2])
        return {
            obj: DrawnBox(x0, y0, x1 + 1, y1 + 1, min(regions.clicked.get(obj, 0), MAX_BOX_CLICKS))
            for obj, (x0, y0, x1, y1) in made.items()
            if obj in held
        }
