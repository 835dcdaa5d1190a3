"""Each Label Studio task's last interactive rectangle, for the keypoints and the annotation after it.

Label Studio's editor sends an interactive request the regions of the type and label just drawn
only: a smart keypoint clicked after a smart rectangle comes without it, and a keypoint of the
background label without the object's keypoints before it. The ML backend keeps each task's last
rectangle of each object and the keypoints that corrected it last (`LastBoxes`), so that keypoints
inside it correct the box's mask with the other label's, in the order clicked, as the page's clicks
after a box do, and the annotation then submitted with that answer books its object as a box with those
keypoints as its corrective clicks. A task's rectangles are forgotten once the task is annotated,
skipped or opened again.
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
#: A rectangle's corrective keypoints in the order clicked, each with its label's kind (object, background).
KindClicks = tuple[tuple[str, GivenClick], ...]


class LastBoxes:
    """Task id → each object's last interactive rectangle, with the keypoints that corrected it last.

    ``most`` tasks are kept, the oldest forgotten first.
    """

    def __init__(self, most: int = 100) -> None:
        self.most = most
        self._boxes: OrderedDict[str, dict[int, tuple[tuple[str, int], Corners, KindClicks]]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(
        self, task: str, frame: tuple[str, int], obj: int, corners: Corners, clicks: KindClicks = ()
    ) -> None:
        """Keep ``corners`` as the task's last rectangle of object ``obj`` on ``frame`` (its mask made).

        ``clicks`` are the keypoints that corrected it (none: a new rectangle).
        """
        with self._lock:
            boxes = self._boxes.pop(task, {})
            boxes.pop(obj, None)  # the object's rectangle is the task's latest
            self._boxes[task] = {**boxes, obj: (frame, corners, clicks)}
            while len(self._boxes) > self.most:
                self._boxes.popitem(last=False)

    def with_clicks(self, task: str, obj: int, kind: str, sent: Sequence[GivenClick]) -> KindClicks:
        """Keep ``sent`` as label ``kind``'s keypoints on the task's last rectangle of ``obj``; return all.

        ``sent`` are all the keypoints of that label (the editor sends a request every keypoint of the label
        just clicked, the new one last); the other label's are kept, in the order clicked. Read and kept
        under one lock: requests of one task answered at once each keep the other's keypoints.
        """
        with self._lock:
            boxes = self._boxes.get(task, {})
            if obj not in boxes:
                return tuple((kind, c) for c in sent)
            frame, corners, held = boxes[obj]
            kept = [(k, c) for k, c in held if k != kind or c in sent]
            merged = (*kept, *((kind, c) for c in sent if (kind, c) not in kept))
            boxes[obj] = (frame, corners, merged)
        return merged

    def holding(self, task: str, frame: tuple[str, int], points: Sequence[tuple[int, int]]) -> int | None:
        """The object of the task's latest rectangle on ``frame`` that holds every one of ``points``."""
        with self._lock:
            boxes = list(self._boxes.get(task, {}).items())
        for obj, (at, (x0, y0, x1, y1), _) in reversed(boxes):
            if at == frame and points and all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in points):
                return obj
        return None

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
