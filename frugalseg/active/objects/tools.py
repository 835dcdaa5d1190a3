"""Weight-free tools that give an object's mask in a few gestures: intelligent scissors, a superpixel brush.

* `IntelligentScissors` — OpenCV's ``segmentation.IntelligentScissorsMB`` (the edge-following tool
  CVAT ships): between consecutive anchor points the contour follows the image's edges (the
  cheapest path on a cost of Canny edges, gradient magnitude and direction, Mortensen & Barrett
  1995); closing it fills the polygon.
* `SuperpixelBrush` — a stroke paints every SLIC superpixel it crosses (scikit-image's ``slic``,
  a dependency already; OpenCV's own SLIC is in ``ximgproc``, which the ``opencv-python-headless``
  wheel does not have, and the contrib wheel would replace it).

Each keeps what it computed of the last image (the scissors' edge maps and paths, the
superpixels), so a person's next anchor or stroke on the same frame costs only what is new. A box
drag is a click model's (`click_models.ClickToMask.box`): SAM takes boxes as prompts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cv2
import numpy as np
from skimage.segmentation import slic

from frugalseg.active.objects.graph_cut import image_key

#: The scissors' edge features, as OpenCV's sample and CVAT set them: Canny thresholds, gradient cap.
CANNY_THRESHOLDS = (32, 100)
GRADIENT_LIMIT = 200
#: The superpixels' mean side in pixels (about 1600 superpixels at 854×480) and SLIC's compactness.
SUPERPIXEL_SIDE = 16
COMPACTNESS = 10.0

Point = tuple[int, int]


class IntelligentScissors:
    """Contours that follow the image's edges between anchor points (module docstring); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._tool: cv2.segmentation.IntelligentScissorsMB | None = None
        self._paths: dict[tuple[Point, Point], np.ndarray] = {}

    def _segment(self, start: Point, end: Point) -> np.ndarray:
        """The edge-following path from ``start`` to ``end`` (N×2 x, y, both ends included)."""
        if (start, end) not in self._paths:
            assert self._tool is not None
            self._tool.buildMap(start)
            self._paths[start, end] = self._tool.getContour(end).reshape(-1, 2)
        return self._paths[start, end]

    def contour(self, image: np.ndarray, anchors: Sequence[Point], *, closed: bool = False) -> np.ndarray:
        """The contour through ``anchors`` in order (N×2 int32 x, y), back to the first when ``closed``.

        Args:
            image: the frame, H×W×3 uint8 RGB.
            anchors: the anchor points (x, y) inside the frame, at least one.
            closed: add the path from the last anchor back to the first.
        """
        with self._lock:
            key = image_key(image)
            if key != self._key:
                tool = cv2.segmentation.IntelligentScissorsMB()
                tool.setEdgeFeatureCannyParameters(*CANNY_THRESHOLDS)
                tool.setGradientMagnitudeMaxLimit(GRADIENT_LIMIT)
                tool.applyImage(np.ascontiguousarray(image))
                self._key, self._tool, self._paths = key, tool, {}
            ends = [*anchors, anchors[0]] if closed and len(anchors) > 1 else list(anchors)
            pieces = [np.array([ends[0]], np.int32)]
            pieces += [self._segment(a, b)[1:] for a, b in zip(ends[:-1], ends[1:], strict=True)]
        return np.concatenate(pieces).astype(np.int32)

    def mask(self, image: np.ndarray, anchors: Sequence[Point]) -> np.ndarray:
        """The closed contour through ``anchors`` filled, its outline included (bool H×W)."""
        out = np.zeros(image.shape[:2], np.uint8)
        outline = self.contour(image, anchors, closed=True)
        cv2.fillPoly(out, [outline], 1)
        cv2.polylines(out, [outline], True, 1)
        result: np.ndarray = out > 0
        return result


def superpixels(image: np.ndarray) -> np.ndarray:
    """SLIC superpixels of ``image`` (int H×W labels 0…n-1) of about `SUPERPIXEL_SIDE` px a side."""
    count = max(1, image.shape[0] * image.shape[1] // SUPERPIXEL_SIDE**2)
    labels: np.ndarray = slic(image, n_segments=count, compactness=COMPACTNESS, start_label=0)
    return labels


class SuperpixelBrush:
    """Paints whole superpixels (`superpixels`) where a stroke passes; keeps the last image's; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._labels = np.zeros((0, 0), np.int64)

    def labels(self, image: np.ndarray) -> np.ndarray:
        """The superpixels of ``image`` (computed once per image)."""
        with self._lock:
            key = image_key(image)
            if key != self._key:
                self._labels, self._key = superpixels(image), key
            return self._labels

    def paint(self, image: np.ndarray, stroke: Sequence[Point]) -> np.ndarray:
        """Every superpixel the polyline ``stroke`` (x, y points inside the frame) crosses (bool H×W)."""
        labels = self.labels(image)
        line = np.zeros(labels.shape, np.uint8)
        cv2.polylines(line, [np.array(stroke, np.int32).reshape(-1, 1, 2)], False, 1)
        result: np.ndarray = np.isin(labels, np.unique(labels[line > 0]))
        return result
