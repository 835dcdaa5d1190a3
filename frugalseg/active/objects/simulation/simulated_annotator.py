"""The simulated corrective annotator of paper 002 (EVA-VOS): clicks where a mask is most wrong.

Given a predicted object mask and its ground truth, the errors are the missed foreground (false
negatives) and the false positives. The annotator clicks in the largest 8-connected error region:
a positive click when it is missed foreground, a negative one when it is a false positive. The
click goes to the region's *centre*, defined as the pixel farthest from the region's boundary (the
maximum of its Euclidean distance transform, the image border counting as boundary), which always
lies inside the region, unlike a centroid. Ties are broken deterministically: between regions of
equal area the missed foreground wins, then the region met first in raster order; between pixels
of equal distance, see `region_centre`.

`simulate_corrective_clicks` runs the interactive loop with a SAM image predictor: each click is
added to the previous ones, SAM is prompted with all of them plus its previous low-resolution
logits, and (as the simulated annotator of EVA-VOS does) the candidate mask closest to the ground
truth is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from frugalseg.autolabel.objects import iou
from frugalseg.metrics.mask_scores import region_similarity

if TYPE_CHECKING:
    from frugalseg.autolabel.refine import ImagePredictor


@dataclass(frozen=True)
class CorrectiveClick:
    """A click at pixel column ``x``, row ``y``; ``positive`` for missed foreground.

    ``region_area`` is the area of the error region clicked and ``depth`` the click's distance
    from that region's boundary in pixels.
    """

    x: int
    y: int
    positive: bool
    region_area: int
    depth: float


def inner_distance(region: np.ndarray) -> np.ndarray:
    """Each pixel's distance (float H×W) to the nearest pixel outside a bool region (the border is out)."""
    padded = np.pad(region.astype(np.uint8), 1)
    distance: np.ndarray = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return distance


def region_centre(region: np.ndarray) -> tuple[int, int, float]:
    """(x, y, distance) of the pixel of a bool region farthest from its boundary (`inner_distance`).

    Where several pixels are equally far (the ridge of an elongated region), the one nearest to
    their mean position is taken, the first in raster order on a further tie.
    """
    distance = inner_distance(region)
    rows, cols = np.nonzero(distance >= distance.max() - 1e-4)
    spread = (rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2
    pick = int(np.argmin(spread))
    y, x = int(rows[pick]), int(cols[pick])
    return x, y, float(distance[y, x])


def errors_of(
    prediction: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(missed object, spill) of ``prediction`` against ``truth``; ``ignore``'s pixels in neither."""
    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {prediction.shape} and truth {truth.shape} differ in size")
    valid = np.ones(truth.shape, bool) if ignore is None else ~np.asarray(ignore, bool)
    return truth & ~prediction & valid, prediction & ~truth & valid


def corrective_click(
    prediction: np.ndarray, truth: np.ndarray, *, ignore: np.ndarray | None = None
) -> CorrectiveClick | None:
    """The annotator's next click on ``prediction`` given ``truth`` (bool H×W), or None if no error.

    Pixels set in ``ignore`` (e.g. unlabelled ground truth) are not counted as errors.
    """
    best: tuple[int, int, int, np.ndarray] | None = None  # (-area, kind, first pixel, region)
    for kind, errors in enumerate(errors_of(prediction, truth, ignore)):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(errors.astype(np.uint8), connectivity=8)
        for index in range(1, count):
            region = labels == index
            key = (-int(stats[index, cv2.CC_STAT_AREA]), kind, int(np.argmax(region.ravel())))
            if best is None or key < best[:3]:
                best = (*key, region)
    if best is None:
        return None
    x, y, depth = region_centre(best[3])
    return CorrectiveClick(x, y, positive=best[1] == 0, region_area=-best[0], depth=depth)


def deepest_error_click(
    prediction: np.ndarray,
    truth: np.ndarray,
    *,
    ignore: np.ndarray | None = None,
    clicked: Sequence[tuple[int, int]] = (),
) -> CorrectiveClick | None:
    """The next click as RITM's evaluation clicker makes it, or None if no error is left.

    All the missed object is one error and all the spill the other, each pixel's depth its distance to the
    error's edge (`inner_distance`: the frame's border is an edge). The click is positive where the missed
    object reaches deeper than the spill (a tie is negative), at the first pixel in raster order of the
    greatest depth; pixels clicked before (``clicked``, (x, y)) are not clicked again. `corrective_click`
    instead picks the larger connected error region by area. ``region_area`` is the area of the connected
    error region clicked (8-neighbours).

    Args:
        prediction: the mask shown (bool H×W).
        truth: the object's ground truth (bool H×W).
        ignore: pixels that are no error either way (bool H×W), or None.
        clicked: the pixels clicked before, as (x, y).
    """
    missed, spill = errors_of(prediction, truth, ignore)
    depths = [inner_distance(missed), inner_distance(spill)]
    for column, row in clicked:
        for depth in depths:
            depth[row, column] = 0.0
    deepest = [float(depth.max()) for depth in depths]
    if max(deepest) <= 0.0:
        return None
    positive = deepest[0] > deepest[1]
    depth = depths[0] if positive else depths[1]
    y, x = divmod(int(np.argmax(depth)), depth.shape[1])  # the first of the greatest, in raster order
    _, labels = cv2.connectedComponents((missed if positive else spill).astype(np.uint8), connectivity=8)
    area = int(np.count_nonzero(labels == labels[y, x]))
    return CorrectiveClick(x, y, positive=positive, region_area=area, depth=float(depth[y, x]))


def best_of_corrections(
    shown: np.ndarray,
    truth: np.ndarray,
    answer: Callable[[list[CorrectiveClick]], np.ndarray],
    *,
    clicks: int,
    ignore: np.ndarray | None = None,
    kept: np.ndarray | None = None,
) -> tuple[np.ndarray, list[CorrectiveClick]]:
    """Up to ``clicks`` corrective clicks, each on the mask shown last, answered by ``answer(clicks so far)``.

    A person undoes a click that made the mask worse: returned is the best (J with ``truth``) of ``kept``
    and the answers, with the clicks made (fewer when no error is left).

    Args:
        shown: the mask before the first click (bool H×W).
        truth: the object's ground truth (bool H×W).
        answer: the tool: all the clicks so far → the mask it shows.
        clicks: the most clicks to make.
        ignore: pixels that are no error either way (bool H×W), or None.
        kept: the mask the person has before the first click, kept on ties (None: ``shown``); a tool may
            show another (SAM its own fit of it).
    """
    best = shown if kept is None else kept
    best_score = region_similarity(best, truth, ignore)
    made: list[CorrectiveClick] = []
    for _ in range(clicks):
        click = corrective_click(shown, truth, ignore=ignore)
        if click is None:
            break
        made.append(click)
        shown = answer(list(made))
        score = region_similarity(shown, truth, ignore)
        if score > best_score:
            best, best_score = shown, score
    return best, made


def simulate_corrective_clicks(
    predictor: ImagePredictor,
    image: np.ndarray,
    truth: np.ndarray,
    *,
    num_clicks: int = 3,
    initial: np.ndarray | None = None,
) -> tuple[np.ndarray, list[CorrectiveClick]]:
    """Improve a mask of ``image`` with up to ``num_clicks`` corrective clicks and SAM.

    Starts from ``initial`` (an empty mask when None) and stops early when the mask is exact.
    Returns the final mask and the clicks made.
    """
    truth = np.asarray(truth, bool)
    mask = np.zeros(truth.shape, bool) if initial is None else np.asarray(initial, bool)
    predictor.set_image(image)
    clicks: list[CorrectiveClick] = []
    logits: np.ndarray | None = None
    for _ in range(num_clicks):
        click = corrective_click(mask, truth)
        if click is None:
            break
        clicks.append(click)
        masks, _, low_res = predictor.predict(
            point_coords=np.array([[c.x, c.y] for c in clicks], np.float32),
            point_labels=np.array([int(c.positive) for c in clicks], np.int32),
            mask_input=logits,
            multimask_output=True,
        )
        candidates = np.asarray(masks) > 0.5
        scores = [iou(candidate, truth) for candidate in candidates]
        best = int(np.argmax(scores))
        mask, logits = candidates[best], np.asarray(low_res)[best][None]
    return mask, clicks
