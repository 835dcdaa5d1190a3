"""Zoom-in (as RITM's): clicks on a small object are cut in a crop around it, at a finer working scale.

A cut has at most `graph_cut.WORK_PIXELS` working pixels, so a crop gives a small object more of them. A
correction is cut in a crop around the mask it corrects and the clicks; a box's clicks in a crop around the
box, its answer and the clicks; from an empty mask, each click after the first in a crop around the answer
before it and the clicks (`zoom_window`), while that crop is at most `ZOOM_SHARE` of the frame. Outside the
crop the mask corrected (or the background) stands (`zoomed`).

Nothing tells a first click's object's size. It is cut on the whole frame, and while the click lies near the
edge of the answer kept (a flood from a small object), in smaller and smaller square crops around it
(`FIRST_CLICK_CROPS`); the answer kept is the one the click lies deepest in for its area (`first_click`).
The whole frame and the crops are cut two at once, each started before the cut before it has told whether it
is needed: the first crop beside the whole frame; once the answer is kept, the cuts still running give up
(`max_flow.stopped_by`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from frugalseg.active.objects.simulation.simulated_annotator import inner_distance
from frugalseg.active.objects.tools.max_flow import stop_flag, stopped_by
from frugalseg.flow.ahead import FlowsAhead, opencv_threads, usable_cores

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
#: A first click from an empty mask is cut on the whole frame, then in square crops centred on it, their sides
#: these shares of the frame's geometric mean side (at least `ZOOM_PAD` px each way), in turn while the answer
#: kept holds the click less deep than `FIRST_CLICK_DEEP` (d² / area, d the click's distance to the answer's
#: edge; a disc's is 1/π). A person clicks an object's middle, and a flood that leaks from a small object
#: leaves its click near an edge of a large answer: on a 665-px Cityscapes pedestrian the whole frame's answer
#: took 1.1 million px. A crop's answer that reaches one of its sides inside the frame did not fit its object,
#: and one under `FIRST_CLICK_LEAST_FILL` of its crop is a speck (a pizza's 25-px topping, IoU 0.87 → 0.00);
#: another is kept where its click lies deeper than in the answer kept.
FIRST_CLICK_CROPS = (0.5, 0.25, 0.125)
FIRST_CLICK_DEEP = 0.1
FIRST_CLICK_LEAST_FILL = 0.01
#: How many of a first click's cuts run at once (threads: the maximum flow, OpenCV and numpy release the
#: GIL), at most the cores this process may use: the first crop beside the whole frame, each next crop while
#: the one before is still cut (`flow.ahead.FlowsAhead`, OpenCV's own threads at one meanwhile, as a
#: propagation's flows); the cuts no longer wanted stop. The answer is the same. On a 2-core CPU a first
#: answer over 0.3 s: one cut at a time 26.9 % → two at once 7.5 % of every 2nd `interactive_dev` image,
#: 28.1 % → 15.6 % of the DAVIS frames 0/10/20/30 (`benchmarks/bench_first_click.py`); the whole frame cut
#: alone first, then the crops two at once, had left 28.7 % and 25.0 % where this leaves 13.8 % and 15.6 %
#: (every 4th `interactive_dev` image; `benchmarks/results/interactive.md`, stop 75).
FIRST_CLICK_THREADS = 2
#: The key of the whole frame's cut among a first click's cuts (the crops' are their indices).
WHOLE = "whole"
#: The constants a click model records in its settings (with `graph_cut.SETTINGS`).
SETTINGS = "ZOOM_SHARE ZOOM_MARGIN ZOOM_PAD FIRST_CLICK_CROPS FIRST_CLICK_DEEP FIRST_CLICK_LEAST_FILL".split()

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
        known = known.reframed(lambda frame: np.ascontiguousarray(frame[window]))
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


def first_click(
    cut_whole: Callable[[], np.ndarray],
    cut_crop: CropCut,
    image: np.ndarray,
    click: Point,
    known: ObjectPrior | None,
) -> np.ndarray:
    """A first click's answer (bool H×W): the whole frame's, or a crop's that holds it deeper for its area.

    Args:
        cut_whole: the whole frame's answer to the click.
        cut_crop: cuts a crop (`graph_cut.segment` without zoom), as `zoomed` calls it.
        image: the frame, H×W×3 uint8 RGB.
        click: the first click, positive, in full-size pixels.
        known: what the session knows of the object, or None.
    """
    height, width = image.shape[:2]
    windows = []
    for share in FIRST_CLICK_CROPS:
        half = max(ZOOM_PAD, round(share * np.sqrt(height * width) / 2))
        top, left = max(0, click.y - half), max(0, click.x - half)
        bottom, right = min(height, click.y + half + 1), min(width, click.x + half + 1)
        window = (slice(top, bottom), slice(left, right))
        # on a small frame two shares may come to the same ZOOM_PAD: that crop is cut once
        if (top, left, bottom, right) != (0, 0, height, width) and window not in windows:
            windows.append(window)
    if not windows:
        return cut_whole()
    cuts: dict[Hashable, Callable[[], np.ndarray]] = {WHOLE: cut_whole} | {
        index: partial(zoomed, cut_crop, image, [click], window, known)
        for index, window in enumerate(windows)
    }
    threads = max(1, min(FIRST_CLICK_THREADS, usable_cores()))
    unwanted = stop_flag()  # set once the answer is kept, or with the caller's: the cuts running give up

    def run(key: Hashable) -> np.ndarray:
        with stopped_by(unwanted):
            return cuts[key]()

    # each cut asked for in turn starts the next (`FlowsAhead` serves any work known ahead, not flows alone)
    ahead = FlowsAhead(run, list(cuts), threads, ahead=max(1, threads - 1))
    with opencv_threads(1) if threads > 1 else nullcontext(), ahead:
        try:
            best = ahead(WHOLE)
            best_depth = click_depth_share(best, click)
            for index, (rows, cols) in enumerate(windows):
                if best_depth >= FIRST_CLICK_DEEP:
                    break
                answer = ahead(index)
                inside = answer[rows, cols]
                reaches = (
                    (rows.start > 0 and inside[0].any())
                    or (rows.stop < height and inside[-1].any())
                    or (cols.start > 0 and inside[:, 0].any())
                    or (cols.stop < width and inside[:, -1].any())
                )
                depth = click_depth_share(answer, click)
                if not reaches and inside.mean() >= FIRST_CLICK_LEAST_FILL and depth > best_depth:
                    best, best_depth = answer, depth
        finally:
            unwanted.set()
    return best


def click_depth_share(mask: np.ndarray, click: Point) -> float:
    """d² / area of ``mask`` (bool H×W), d the click's distance to its edge or the frame's border, or 0."""
    area = int(np.count_nonzero(mask))
    if not area or not mask[click.y, click.x]:
        return 0.0
    return float(inner_distance(mask)[click.y, click.x]) ** 2 / area
