"""How far an answer of the cut (`graph_cut`) may move from the mask it changes, as far as its clicks explain.

* `strays`: from an empty mask, an answer that grows or loses more of the answer before it than its last
  click explains is cut again (`graph_cut.cut`'s ``previous``);
* `bounded_change`: a part of a change larger than its clicks' depths explain keeps to a band along the
  mask's boundary (a click beside a thin part moves the boundary, it does not grow a blob), and for a box's
  click to the stretch of it beside the click;
* `clicked_parts`: a correction changes only the parts of the change that hold a click;
* `the_clicks_part`: the answer to a next click changes the answer before it in the part at the click, and
  elsewhere only in parts its depth explains;
* `parts_unlike_their_clicks`: a correction's part that holds a positive click whose own colour is not among
  the part's is not the region the click is in (a click on a line thinner than a working pixel);
* `answer_before`, `one_way`: which answer the last click changes, and that it only adds to it (a positive
  click) or only removes from it (a negative one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from frugalseg.active.objects.tools.graph_cut import Point

#: Clicks from an empty mask: an answer that adds more than `POSITIVE_GROWTH` of the previous answer's area
#: or loses more than `POSITIVE_LOSS` of it after a positive click, or adds more than `NEGATIVE_GROWTH` after
#: a negative one, is cut again with its colour models learnt first from the previous answer (a click on a
#: patch of the background's colours had taught the object them: a mask at IoU 0.89 spilt over the frame).
POSITIVE_GROWTH = 0.5
POSITIVE_LOSS = 0.3
NEGATIVE_GROWTH = 0.3
#: A part of a change larger than its budget is kept only within `BAND_PER_DEPTH` · d of the prior's boundary,
#: d its clicks' deepest distance to the prior's other label (`graph_cut.CHANGE_PER_DEPTH` gives the budget).
BAND_PER_DEPTH = 1.0
#: A correction's part of the change that holds a positive click is dropped when the click's own colour (Lab)
#: lies further from the part's median colour than `CLICK_COLOUR_SPREAD` × the distance within which
#: `PART_COLOUR_SHARE` of the part's colours lie. On kite-surf a click on a 2-px line in the sky had grown the
#: whole patch of grey sky around it, 10,294 px (IoU 0.73 → 0.39): the line is thinner than a working pixel,
#: so the coarse cut sees the sky. Of 203 propagated DAVIS frames' first 5 clicks, those lowering IoU by more
#: than 0.05 went 41 → 19, the other clips level (`benchmarks/results/interactive.md`, stop 59).
CLICK_COLOUR_SPREAD = 1.5
PART_COLOUR_SHARE = 0.9
#: That distance is at least `PART_COLOUR_FLOOR` Lab units: a part of one flat colour (a drawing, a rendered
#: frame) keeps a click on a pixel a few units off it, as JPEG's noise puts it (on the 203 DAVIS frames it
#: changes one answer, parkour frame 12's 5th click: 0.818 → 0.837).
PART_COLOUR_FLOOR = 8.0
#: A part of a next click's change is the click's own when it comes within `CLICK_PART_REACH` px of the click
#: (the coarse cut brought to full size may leave the click's own pixel unchanged).
CLICK_PART_REACH = 3
#: The constants a click model records in its settings (with `graph_cut.SETTINGS`).
SETTINGS = (
    "POSITIVE_GROWTH",
    "POSITIVE_LOSS",
    "NEGATIVE_GROWTH",
    "BAND_PER_DEPTH",
    "CLICK_COLOUR_SPREAD",
    "PART_COLOUR_SHARE",
    "PART_COLOUR_FLOOR",
    "CLICK_PART_REACH",
)


def strays(found: np.ndarray, before: np.ndarray, *, positive: bool) -> bool:
    """Whether ``found`` strays from ``before`` (bool masks) further than the last click explains.

    It does when it adds more than `POSITIVE_GROWTH` (a negative click: `NEGATIVE_GROWTH`) of the
    area of ``before`` or, after a positive click, loses more than `POSITIVE_LOSS` of it.

    Args:
        found: the answer to all the clicks.
        before: the answer to all the clicks but the last.
        positive: whether the last click is positive.
    """
    area = max(int(before.sum()), 1)
    kept = int((found & before).sum())
    added, lost = (int(found.sum()) - kept) / area, (area - kept) / area
    if positive:
        return added > POSITIVE_GROWTH or lost > POSITIVE_LOSS
    return added > NEGATIVE_GROWTH


def bounded_change(
    region: np.ndarray,
    found: np.ndarray,
    prior: np.ndarray,
    clicks: Sequence[Point],
    *,
    per_depth: float,
    near_per_depth: float | None = None,
) -> np.ndarray:
    """Where ``found`` may change ``prior``: ``region``, as far as the clicks' depths explain.

    A click's depth d is its distance to the prior's other label (a positive click's to the prior's object, a
    negative click's to its background). Each connected part of the change (``found`` against ``prior`` in
    ``region``) that holds clicks and is larger than ``per_depth`` · Σ d² of them is kept only within
    `BAND_PER_DEPTH` · max d of the prior's boundary: a click beside the boundary moves the boundary, it does
    not grow a blob; with ``near_per_depth``, only within ``near_per_depth`` · max d of a click too (it moves
    the boundary beside it, not all around the object). Parts without a click are left as they are.

    Args:
        region: where the change may land (bool H×W).
        found: the new mask (bool H×W).
        prior: the mask it changes (bool H×W): a correction's prior, or the answer to the clicks before.
        clicks: the clicks that made the change, in full-size pixels.
        per_depth: the pixels a part may change per squared pixel of its clicks' depth.
        near_per_depth: how far from a click, in its part's max d, a bounded part may change; or None
            (as far as the band goes).
    """
    as_bytes = prior.astype(np.uint8)
    inside = cv2.distanceTransform(as_bytes, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - as_bytes, cv2.DIST_L2, 5)
    count, parts = cv2.connectedComponents((region & (found != prior)).astype(np.uint8), connectivity=8)
    budget, deepest, held = np.zeros(count), np.zeros(count), np.zeros(count, bool)
    for click in clicks:
        part = int(parts[click.y, click.x])
        depth = float((outside if click.positive else inside)[click.y, click.x])
        budget[part] += per_depth * depth * depth
        deepest[part] = max(deepest[part], depth)
        held[part] = part > 0
    bounded = held & (np.bincount(parts.ravel(), minlength=count) > budget)
    far = np.maximum(inside, outside) > BAND_PER_DEPTH * deepest[parts]
    if near_per_depth is not None and clicks:
        away = np.ones(prior.shape, np.uint8)
        for click in clicks:
            away[click.y, click.x] = 0
        far |= cv2.distanceTransform(away, cv2.DIST_L2, 5) > near_per_depth * np.maximum(deepest[parts], 1.0)
    result: np.ndarray = region & ~(bounded[parts] & far)
    return result


def the_clicks_part(found: np.ndarray, before: np.ndarray, click: Point, *, per_depth: float) -> np.ndarray:
    """Where ``found`` may change ``before`` (bool masks) after ``click``: its part, small parts elsewhere.

    The change's 8-connected parts (within a pixel of each other: one) that come within
    `CLICK_PART_REACH` of the click may land; any other only if it holds at most ``per_depth`` · d²
    pixels, d the click's depth (its distance to ``before``'s other label): a click on a missed arm had
    grown the grass under the feet, which touched the mask, not the arm.

    Args:
        found: the answer to all the clicks.
        before: the answer to all the clicks but ``click``.
        click: the last click, in full-size pixels.
        per_depth: the pixels a part away from the click may change per squared pixel of its depth.
    """
    changed = (found != before).astype(np.uint8)
    count, parts = cv2.connectedComponents(cv2.dilate(changed, np.ones((3, 3), np.uint8)), connectivity=8)
    reach = CLICK_PART_REACH
    near = parts[max(0, click.y - reach) : click.y + reach + 1, max(0, click.x - reach) : click.x + reach + 1]
    own = np.zeros(count, bool)
    own[np.unique(near)] = True
    own[0] = False
    side = before.astype(np.uint8) if not click.positive else 1 - before.astype(np.uint8)
    depth = float(cv2.distanceTransform(side, cv2.DIST_L2, 5)[click.y, click.x])
    small = np.bincount(parts[changed > 0], minlength=count) <= per_depth * depth * depth
    result: np.ndarray = (changed == 0) | own[parts] | small[parts]
    return result


def clicked_parts(changed: np.ndarray, clicks: Sequence[Point]) -> np.ndarray:
    """The parts of ``changed`` (uint8, working scale) that hold a click (or lie within a pixel of one).

    Parts within a pixel of each other are one. A click changes the region it is in: where the cut
    differs from the prior away from every click (the coarse scale's own view of the prior's
    boundary), the prior stands.

    Args:
        changed: where the cut differs from the prior (uint8 0/1, working scale).
        clicks: the clicks, in working-scale pixels.
    """
    _, parts = cv2.connectedComponents(cv2.dilate(changed, np.ones((3, 3), np.uint8)), connectivity=8)
    clicked = {int(parts[click.y, click.x]) for click in clicks} - {0}
    result: np.ndarray = (changed > 0) & np.isin(parts, sorted(clicked))
    return result.astype(np.uint8)


def parts_unlike_their_clicks(
    image: np.ndarray, region: np.ndarray, found: np.ndarray, prior: np.ndarray, clicks: Sequence[Point]
) -> np.ndarray:
    """``region`` less each part of the change that a positive click's colour is not among the colours of.

    A part (8-connected, of ``found`` against ``prior`` in ``region``) is dropped when a positive click in it
    has a Lab colour further from the part's median colour than `CLICK_COLOUR_SPREAD` × the distance within
    which `PART_COLOUR_SHARE` of its pixels' colours lie (at least `PART_COLOUR_FLOOR`): the cut took a region
    the click is not in.

    Args:
        image: the frame, H×W×3 uint8 RGB.
        region: where the change may land (bool H×W).
        found: the new mask (bool H×W).
        prior: the mask it changes (bool H×W).
        clicks: the clicks, in full-size pixels.
    """
    count, parts = cv2.connectedComponents((region & (found != prior)).astype(np.uint8), connectivity=8)
    clicked = [
        (click, int(parts[click.y, click.x]))
        for click in clicks
        if click.positive and parts[click.y, click.x]
    ]
    if not clicked:
        return region
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    unlike = np.zeros(count, bool)
    for click, part in clicked:
        colours = lab[parts == part]
        centre = np.median(colours, axis=0)
        spread = max(
            PART_COLOUR_FLOOR, float(np.quantile(np.linalg.norm(colours - centre, axis=1), PART_COLOUR_SHARE))
        )
        unlike[part] |= float(np.linalg.norm(lab[click.y, click.x] - centre)) > CLICK_COLOUR_SPREAD * spread
    result: np.ndarray = region & ~unlike[parts]
    return result


def answer_before(
    prior: np.ndarray | None,
    previous: np.ndarray | None,
    *,
    box: tuple[int, int, int, int] | None,
    clicks: Sequence[Point],
) -> np.ndarray | None:
    """The answer the last click changes (bool H×W): ``previous`` with a box or from an empty mask; or None.

    From an empty mask (no ``prior`` and no box) only from the second click on; a correction of a prior
    changes the prior instead, and an empty ``previous`` is nothing to change.

    Args:
        prior: the object's current mask (bool H×W), or None.
        previous: the answer to all the clicks but the last (bool H×W), or None.
        box: the box the object lies in, or None.
        clicks: the clicks.
    """
    if previous is None or not np.any(previous):
        return None
    from_empty = (prior is None or not np.any(prior)) and box is None
    if box is None and not (from_empty and len(clicks) > 1):
        return None
    return np.asarray(previous, bool)


def one_way(found: np.ndarray, before: np.ndarray, *, positive: bool) -> np.ndarray:
    """``found`` only adding to ``before`` (the last click positive) or only removing from it (negative)."""
    result: np.ndarray = found | before if positive else found & before
    return result
