"""Frames over `FULL_PIXELS` (4K video) are cut shrunk to that many pixels, and the answer brought back.

The cut works on at most `graph_cut.WORK_PIXELS` pixels, but its fine pass and the bounds of a click's change
work on the frame's own pixels (`graph_cut.refine`, `change_bounds`), so their cost grows with the frame:
at 3840×2160 an answer to clicks from an empty mask took 0.61 s on average (90th percentile 1.00), against
0.23 s at 1920×1080 (`benchmarks/bench_frame_sizes.py`; shrunk, 0.31 s at the same IoU). Above
`FULL_PIXELS` the frame, the masks, the clicks, the box and the neighbouring frame and confidence are shrunk
by one factor and cut there (`shrunk`); the answer is brought back bilinearly where it changed the mask it
changes (the answer before the last click, or the prior), that mask keeps its own pixels elsewhere, and the
gestures are honoured at full size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from frugalseg.active.objects.tools.change_bounds import answer_before, one_way
from frugalseg.active.objects.tools.grabcut import honour_prompt

if TYPE_CHECKING:
    from frugalseg.active.objects.tools.grabcut import Box
    from frugalseg.active.objects.tools.graph_cut import ObjectPrior, Point

#: A frame with more pixels than this (2K's, 2048×1080: Cityscapes' 2048×1024 frames are cut whole) is cut
#: shrunk to it.
FULL_PIXELS = 2048 * 1080
#: The constants a click model records in its settings (with `graph_cut.SETTINGS`).
SETTINGS = ("FULL_PIXELS",)

#: How a shrunk frame is cut: ``(image, clicks, *, prior, previous, box, known) -> bool mask of the image``.
ShrunkCut = Callable[..., np.ndarray]


def shrunk_size(height: int, width: int) -> tuple[int, int] | None:
    """The (width, height) a frame is cut at: at most `FULL_PIXELS` pixels; None when it has no more."""
    if height * width <= FULL_PIXELS:
        return None
    factor = math.sqrt(FULL_PIXELS / (height * width))
    return max(1, int(width * factor)), max(1, int(height * factor))


def shrunk(
    cut_small: ShrunkCut,
    image: np.ndarray,
    clicks: Sequence[Point],
    known: ObjectPrior | None,
    *,
    size: tuple[int, int],
    prior: np.ndarray | None = None,
    previous: np.ndarray | None = None,
    box: Box | None = None,
) -> np.ndarray:
    """The full-size mask (bool H×W): ``cut_small``'s answer on the frame shrunk to ``size``, brought back.

    Where that answer changed the mask it changes (``previous`` where the last click changes it, with a box
    or from an empty mask, else ``prior``), it is brought back bilinearly; elsewhere that mask keeps its
    pixels. A positive last click only adds to ``previous``, a negative one only removes, as
    `graph_cut.segment` has it.

    Args:
        cut_small: cuts the shrunk frame (`graph_cut.segment`), given everything else shrunk.
        image: the frame, H×W×3 uint8 RGB.
        clicks: the clicks, in full-size pixels.
        known: what the session knows of the object (its neighbouring frame and confidence are shrunk; the
            examples' colours are what they are at any size).
        size: the (width, height) to cut at (`shrunk_size`).
        prior: the object's current mask (bool H×W), or None.
        previous: the answer to all the clicks but the last (bool H×W), or None.
        box: the box (x0, y0, x1, y1) the object lies in, corners included; or None.
    """
    height, width = image.shape[:2]
    small_width, small_height = size
    across, down = small_width / width, small_height / height

    def small_mask(mask: np.ndarray) -> np.ndarray:
        result: np.ndarray = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
        return result

    def small_point(x: int, y: int) -> tuple[int, int]:
        return min(small_width - 1, int((x + 0.5) * across)), min(small_height - 1, int((y + 0.5) * down))

    if known is not None:  # the neighbouring frame (uint8) and the confidence (float) shrunk alike

        def small_frame(frame: np.ndarray) -> np.ndarray:
            frame = frame if frame.dtype == np.uint8 else frame.astype(np.float32)
            result: np.ndarray = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            return result

        known = known.reframed(small_frame)
    small_box = None
    if box is not None:  # every pixel the box holds lies in the shrunk box
        x0, y0, x1, y1 = box
        small_box = (
            math.floor(x0 * across),
            math.floor(y0 * down),
            math.ceil((x1 + 1) * across) - 1,
            math.ceil((y1 + 1) * down) - 1,
        )
    small_clicks = []
    for click in clicks:
        x, y = small_point(click.x, click.y)
        small_clicks.append(replace(click, x=x, y=y))
    small_prior = None if prior is None else small_mask(np.asarray(prior, bool))
    small_previous = None if previous is None else small_mask(np.asarray(previous, bool))
    answer = cut_small(
        cv2.resize(image, size, interpolation=cv2.INTER_AREA),
        small_clicks,
        prior=small_prior,
        previous=small_previous,
        box=small_box,
        known=known,
    )
    full: np.ndarray = (
        cv2.resize(answer.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
    )
    last = answer_before(prior, previous, box=box, clicks=clicks)
    changes, small_changes = (last, small_previous) if last is not None else (prior, small_prior)
    if changes is not None and small_changes is not None and np.any(changes):
        changed = cv2.dilate((answer != small_changes).astype(np.uint8), np.ones((3, 3), np.uint8))
        changed = cv2.resize(changed, (width, height), interpolation=cv2.INTER_NEAREST)
        full = np.where(changed > 0, full, np.asarray(changes, bool))
    if last is not None:
        full = one_way(full, last, positive=clicks[-1].positive)
    return honour_prompt(full, clicks, box)
