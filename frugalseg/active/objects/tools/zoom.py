"""Zoom-in (as RITM's): clicks on a small object are cut in a crop around it, at a finer working scale.

A cut has at most `graph_cut.WORK_PIXELS` working pixels, so a crop gives a small object more of them. A
correction is cut in a crop around the mask it corrects and the clicks; a box's clicks in a crop around the
box, its answer and the clicks; from an empty mask, each click after the first in a crop around the answer
before it and the clicks (`zoom_window`), while that crop is at most `ZOOM_SHARE` of the frame. Outside the
crop the mask corrected (or the background) stands (`zoomed`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from frugalseg.active.objects.tools.grabcut import Box
    from frugalseg.active.objects.tools.graph_cut import ObjectPrior, Point

#: The crop holds the mask the clicks change and the clicks with `ZOOM_MARGIN` of its sides (at least
#: `ZOOM_PAD` px) around them, and is used while it is at most `ZOOM_SHARE` of the frame (`interactive_dev`
#: clicks, all 320: NoC@85 / NoC@90 6.02 / 8.13 → 5.82 / 7.97; on objects under 3 % of the image
#: 8.33 / 11.22 → 7.70 / 10.72; crops of up to half the frame lost on objects of 3–10 %;
#: `benchmarks/results/interactive.md`, stop 64).
ZOOM_SHARE = 0.25
ZOOM_MARGIN = 0.4
ZOOM_PAD = 40
#: The constants a click model records in its settings (with `graph_cut.SETTINGS`).
SETTINGS = "ZOOM_SHARE ZOOM_MARGIN ZOOM_PAD".split()

#: How a crop is cut: ``(crop, clicks, *, prior, known, previous) -> bool mask of the crop``.
CropCut = Callable[..., np.ndarray]


def zoom_window(
    mask: np.ndarray, clicks: Sequence[Point], *, box: Box | None = None
) -> tuple[slice, slice] | None:
    """The crop (rows, columns) the clicks on ``mask`` are cut in, or None (the whole frame).

    The box of ``mask``, the clicks and ``box`` (its part on the frame), grown by `ZOOM_MARGIN` of its sides
    (at least `ZOOM_PAD` px); None when that is over `ZOOM_SHARE` of the frame.

    Args:
        mask: the mask a correction changes, a box's answer, or the answer before a next click from an empty
            mask (bool H×W).
        clicks: the clicks, in full-size pixels.
        box: the box the object lies in, (x0, y0, x1, y1) corners included; or None.
    """
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    xs = [c.x for c in clicks] + ([int(cols.min()), int(cols.max())] if cols.size else [])
    ys = [c.y for c in clicks] + ([int(rows.min()), int(rows.max())] if rows.size else [])
    if box is not None:
        xs += [min(max(box[0], 0), width - 1), min(max(box[2], 0), width - 1)]
        ys += [min(max(box[1], 0), height - 1), min(max(box[3], 0), height - 1)]
    pad_x = max(ZOOM_PAD, ZOOM_MARGIN * (max(xs) - min(xs)))
    pad_y = max(ZOOM_PAD, ZOOM_MARGIN * (max(ys) - min(ys)))
    left, right = int(max(0, min(xs) - pad_x)), int(min(width, max(xs) + pad_x + 1))
    top, bottom = int(max(0, min(ys) - pad_y)), int(min(height, max(ys) + pad_y + 1))
    if (right - left) * (bottom - top) > ZOOM_SHARE * height * width:
        return None
    return slice(top, bottom), slice(left, right)


def zoomed(
    cut_crop: CropCut,
    image: np.ndarray,
    clicks: Sequence[Point],
    window: tuple[slice, slice],
    known: ObjectPrior | None,
    *,
    prior: np.ndarray | None = None,
    previous: np.ndarray | None = None,
    box: Box | None = None,
) -> np.ndarray:
    """The full-size mask (bool H×W): ``cut_crop``'s answer in ``window``, ``prior`` (or background) outside.

    Args:
        cut_crop: cuts the crop (`graph_cut.segment` without zoom), given it and everything else cropped.
        image: the frame, H×W×3 uint8 RGB.
        clicks: the clicks, in full-size pixels.
        window: the crop (`zoom_window`).
        known: what the session knows of the object (its confidence and neighbouring frame are cropped).
        prior: the mask a correction changes (bool H×W), or None.
        previous: the answer to all the clicks but the last (bool H×W), or None.
        box: the box (x0, y0, x1, y1) the object lies in, moved into the crop as the clicks are; or None.
    """
    rows, cols = window
    if known is not None:
        neighbour, confidence = known.neighbour, known.confidence
        known = replace(
            known,
            neighbour=None if neighbour is None else np.ascontiguousarray(neighbour[window]),
            confidence=None if confidence is None else confidence[window],
        )
    inner = [replace(click, x=click.x - cols.start, y=click.y - rows.start) for click in clicks]
    boxed = {}
    if box is not None:  # the box moves with the clicks
        x0, y0, x1, y1 = box
        boxed["box"] = (x0 - cols.start, y0 - rows.start, x1 - cols.start, y1 - rows.start)
    result = np.zeros(image.shape[:2], bool) if prior is None else prior.copy()
    result[window] = cut_crop(
        np.ascontiguousarray(image[window]),
        inner,
        prior=None if prior is None else prior[window],
        known=known,
        previous=None if previous is None else np.asarray(previous, bool)[window],
        **boxed,
    )
    return result
