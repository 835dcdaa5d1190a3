"""Weight-free tools that give an object's mask in a few gestures: intelligent scissors, a superpixel brush.

* `IntelligentScissors` — OpenCV's ``segmentation.IntelligentScissorsMB`` (the edge-following tool
  CVAT ships): between consecutive anchor points the contour follows the image's edges (the
  cheapest path on a cost of Canny edges, gradient magnitude and direction, Mortensen & Barrett
  1995); closing it fills the polygon. Each path is searched in a window around its two anchors
  (`scissors_window`), not the whole frame, and one call searches at most `MAX_SCISSORS_WORK`
  pixels, counted before any search: OpenCV's search costs about 0.3 µs a pixel, so 500 anchors
  each searched over an 854×480 frame took 132 s.
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

from frugalseg.active.objects.tools.graph_cut import image_key
from frugalseg.errors import ConfigError

#: The scissors' edge features, as OpenCV's sample and CVAT set them: Canny thresholds, gradient cap.
CANNY_THRESHOLDS = (32, 100)
GRADIENT_LIMIT = 200
#: The superpixels' mean side in pixels (about 1600 superpixels at 854×480) and SLIC's compactness.
SUPERPIXEL_SIDE = 16
COMPACTNESS = 10.0

#: The scissors' window: the anchors' box widened on each side by half their distance (an edge that
#: bulges away from the line between them stays inside), and by at least this many pixels.
SCISSORS_MARGIN = 16
#: The most pixels one call of the scissors searches in windows not searched before (about 0.6 s; an
#: 854×480 frame is 410k pixels, a person's next anchor some thousands).
MAX_SCISSORS_WORK = 2_000_000
#: The most paths the scissors keep (of one image); more start afresh.
MAX_KEPT_PATHS = 10_000

Point = tuple[int, int]


def scissors_window(start: Point, end: Point, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The part of a frame of ``shape`` (H, W, …) the path from ``start`` to ``end`` is searched in.

    Returns:
        ``(x0, y0, x1, y1)``, ends excluded: the anchors' box widened by `SCISSORS_MARGIN` or half
        their distance, whichever is more, and cut to the frame.
    """
    margin = max(SCISSORS_MARGIN, int(np.hypot(end[0] - start[0], end[1] - start[1])) // 2 + 1)
    x0, x1 = max(0, min(start[0], end[0]) - margin), min(shape[1], max(start[0], end[0]) + margin + 1)
    y0, y1 = max(0, min(start[1], end[1]) - margin), min(shape[0], max(start[1], end[1]) + margin + 1)
    return x0, y0, x1, y1


def _scissors(image: np.ndarray) -> cv2.segmentation.IntelligentScissorsMB:
    """OpenCV's scissors on ``image`` with `CANNY_THRESHOLDS` and `GRADIENT_LIMIT`."""
    tool = cv2.segmentation.IntelligentScissorsMB()
    tool.setEdgeFeatureCannyParameters(*CANNY_THRESHOLDS)
    tool.setGradientMagnitudeMaxLimit(GRADIENT_LIMIT)
    tool.applyImage(np.ascontiguousarray(image))
    return tool


class IntelligentScissors:
    """Contours that follow the image's edges between anchor points (module docstring); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._paths: dict[tuple[Point, Point], np.ndarray] = {}

    def _segment(self, image: np.ndarray, start: Point, end: Point) -> np.ndarray:
        """The edge-following path from ``start`` to ``end`` (N×2 x, y, both ends included)."""
        if (start, end) not in self._paths:
            x0, y0, x1, y1 = scissors_window(start, end, image.shape)
            tool = _scissors(image[y0:y1, x0:x1])
            tool.buildMap((start[0] - x0, start[1] - y0))
            path = tool.getContour((end[0] - x0, end[1] - y0)).reshape(-1, 2)
            self._paths[start, end] = path + np.array([x0, y0], path.dtype)
        return self._paths[start, end]

    def work(self, image: np.ndarray, anchors: Sequence[Point], *, closed: bool = False) -> int:
        """The pixels `contour` would search for these arguments: the windows of the paths not kept."""
        with self._lock:
            return self._work(image, self._ends(image, anchors, closed))

    def _ends(self, image: np.ndarray, anchors: Sequence[Point], closed: bool) -> list[Point]:
        """The anchors in order, the first again last when ``closed``; keeps only the paths of ``image``."""
        key = image_key(image)
        if key != self._key or len(self._paths) > MAX_KEPT_PATHS:
            self._key, self._paths = key, {}
        return [*anchors, anchors[0]] if closed and len(anchors) > 1 else list(anchors)

    def _work(self, image: np.ndarray, ends: list[Point]) -> int:
        new = {pair for pair in zip(ends[:-1], ends[1:], strict=True) if pair not in self._paths}
        windows = [scissors_window(a, b, image.shape) for a, b in new]
        return sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in windows)

    def contour(
        self,
        image: np.ndarray,
        anchors: Sequence[Point],
        *,
        closed: bool = False,
        max_work: int = MAX_SCISSORS_WORK,
    ) -> np.ndarray:
        """The contour through ``anchors`` in order (N×2 int32 x, y), back to the first when ``closed``.

        Args:
            image: the frame, H×W×3 uint8 RGB.
            anchors: the anchor points (x, y) inside the frame, at least one.
            closed: add the path from the last anchor back to the first.
            max_work: the most pixels to search (`work`); more is refused before any search.

        Raises:
            ConfigError: the paths not kept would search more than ``max_work`` pixels.
        """
        with self._lock:
            ends = self._ends(image, anchors, closed)
            work = self._work(image, ends)
            if work > max_work:
                raise ConfigError(
                    "scissors",
                    f"the paths through these {len(anchors)} anchor points would search {work:,} pixels, "
                    f"more than the {max_work:,} of one request; place anchor points closer together, "
                    "a few at a time",
                )
            pieces = [np.array([ends[0]], np.int32)]
            pieces += [self._segment(image, a, b)[1:] for a, b in zip(ends[:-1], ends[1:], strict=True)]
        return np.concatenate(pieces).astype(np.int32)

    def mask(self, image: np.ndarray, anchors: Sequence[Point]) -> np.ndarray:
        """The closed contour through ``anchors`` filled, its outline included (bool H×W); see `contour`."""
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
