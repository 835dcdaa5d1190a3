"""Clicks and GrabCut: what a click is, and OpenCV GrabCut seeded by clicks, a prior mask or a box.

The vocabulary every click model shares (`Click`, `Box`, `click_radius`, `honour_prompt`, `paint_clicks`)
and the ``grabcut`` click model's core (`grabcut_clicks`, `local_grabcut_clicks`, `grabcut_box` with the
box's tightness prior, `box_clicks`); `click_models.GrabCutClicks` wraps it as a `ClickToMask`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from frugalseg.active.objects.tools.appearance import colour_bins, histogram

GRABCUT_ITERATIONS = 3
GIVEN_CLICK_REACH = 3  # a person's click may change pixels within this many click radii of it
#: GrabCut of a box runs `BOX_ITERATIONS` times on its window shrunk to at most `BOX_PIXELS` pixels. At 5 and
#: 80,000 a box's first answer took 0.38 s on 32 DAVIS frames at 854×480 (1.19 s on the largest box, against
#: the tools' 0.3 s); at 3 and 40,000 it takes 0.13 s (0.33 s) with the same IoU (0.603 → 0.609; 0.691 → 0.690
#: on `interactive_dev`; `benchmarks/results/interactive.md`, stop 59).
BOX_ITERATIONS = 3
BOX_MARGIN = 0.1  # the background GrabCut learns from: this share of the box's longer side around it
BOX_PIXELS = 40_000
#: A box's pixels that look like the object (`grabcut_box`'s ``likely``) are used only where they are at least
#: this share of the box.
BOX_LIKELY_SHARE = 0.05
#: A box's tightness prior (Lempitsky et al. 2009, "pinpointing"): the object meets every row and column of
#: its box but those within `TIGHT_SIDE` of the box's height or width (at least `TIGHT_SLACK` px, the slack a
#: person leaves: the loop's simulated box and the benchmark's add 5 px) of its sides. Where GrabCut's answer
#: leaves over `TIGHT_GAP` of those rows or of those columns empty, each run of empty rows (columns) gets a
#: sure object seed where its middle row (column) looks most like the answer against the margin's colours,
#: and GrabCut runs again from the box with the seeds for `TIGHT_ITERATIONS`, at most `TIGHT_ROUNDS` times.
#: A box's first answer, median (mean) IoU: CamVid's street objects 0.192 (0.302) → 0.729 (0.656), every 4th
#: `interactive_dev` instance 0.855 (0.684) → 0.861 (0.795), DAVIS frames 0/10/20/30 0.668 (0.609) → 0.668
#: (0.602) (`benchmarks/results/interactive.md`, stop 67).
TIGHT_SIDE = 0.1
TIGHT_SLACK = 8
TIGHT_GAP = 0.1
TIGHT_ROUNDS = 2
TIGHT_ITERATIONS = 1
#: The tightness rounds run on at most this many pixels (GrabCut's first run: `BOX_PIXELS`). On 32 DAVIS boxes
#: a box's first answer's 90th percentile 0.263 → 0.199 s, IoU the same; on CamVid's and `interactive_dev`'s
#: boxes mean IoU −0.003 and −0.006 (`benchmarks/results/interactive.md`, stop 67).
TIGHT_PIXELS = 20_000
#: Below this many pixels an answer is too small to learn the object's colours from: the box's are used.
TIGHT_LEAST_PIXELS = 20
BOX_CLICK_REACH = (
    4  # a click after a box re-decides pixels within this many times its distance to the other side
)
#: A box in pixels, (x0, y0, x1, y1) with both corners inside it.
Box = tuple[int, int, int, int]
# GrabCut's rectangle, unused when it starts from a mask: what None passes (OpenCV's stubs refuse None).
_NO_RECT = (0, 0, 0, 0)


class Click(Protocol):
    """What a click-to-mask model reads of a click (`CorrectiveClick`, `annotation.GivenClick`)."""

    @property
    def x(self) -> int:
        """The pixel column."""

    @property
    def y(self) -> int:
        """The pixel row."""

    @property
    def positive(self) -> bool:
        """True on the object (foreground), False off it."""


def click_radius(shape: tuple[int, ...]) -> int:
    """Radius of a click's disk: 1 % of the image diagonal, at least 2 px (10 px at 854×480)."""
    return max(2, round(0.01 * float(np.hypot(shape[0], shape[1]))))


def honour_prompt(mask: np.ndarray, clicks: Sequence[Click], box: Box | None = None) -> np.ndarray:
    """``mask`` as a person's gestures require: inside ``box``, each click's own pixel as the click says.

    A positive click's pixel is in the mask, a negative click's is not; a click outside the box is
    overruled by the box (the mask stays inside it).

    Args:
        mask: a click model's answer (bool H×W).
        clicks: the clicks it answered.
        box: the box it answered, (x0, y0, x1, y1) with corners included, or None.
    """
    result = np.array(mask, bool)
    inside = None
    if box is not None:
        x0, y0, x1, y1 = box
        inside = np.zeros(result.shape, bool)
        inside[max(0, y0) : y1 + 1, max(0, x0) : x1 + 1] = True
        result &= inside
    for click in clicks:
        if inside is None or inside[click.y, click.x]:
            result[click.y, click.x] = click.positive
    return result


def paint_clicks(mask: np.ndarray, clicks: Sequence[Click], radius: int) -> np.ndarray:
    """``mask`` with a disk of foreground at each positive click and of background at each negative one."""
    out = mask.astype(np.uint8).copy()
    for click in clicks:
        cv2.circle(out, (click.x, click.y), radius, 1 if click.positive else 0, thickness=-1)
    result: np.ndarray = out.astype(bool)
    return result


def grabcut_clicks(
    image: np.ndarray, prior: np.ndarray, clicks: Sequence[Click], *, radius: int | None = None
) -> np.ndarray:
    """Bool mask of the object from GrabCut seeded by ``prior`` (bool) and ``clicks`` (module docstring)."""
    radius = click_radius(prior.shape) if radius is None else radius
    height, width = prior.shape
    ys, xs = np.nonzero(prior)
    points_x = [*xs.tolist()[:1], *(c.x for c in clicks)]
    points_y = [*ys.tolist()[:1], *(c.y for c in clicks)]
    if xs.size:
        points_x += [int(xs.min()), int(xs.max())]
        points_y += [int(ys.min()), int(ys.max())]
    if not any(c.positive for c in clicks) and not prior.any():
        return np.zeros_like(prior, dtype=bool)
    margin = max(4 * radius, int(0.1 * max(max(points_x) - min(points_x), max(points_y) - min(points_y))))
    x0, x1 = max(0, min(points_x) - margin), min(width, max(points_x) + margin + 1)
    y0, y1 = max(0, min(points_y) - margin), min(height, max(points_y) + margin + 1)
    seeds = np.where(prior[y0:y1, x0:x1], cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    for click in clicks:
        value = cv2.GC_FGD if click.positive else cv2.GC_BGD
        cv2.circle(seeds, (click.x - x0, click.y - y0), radius, value, thickness=-1)
    fg = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    out = np.zeros_like(prior, dtype=bool)
    if not fg.any() or fg.all():
        out[y0:y1, x0:x1] = fg
        return out
    roi = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means start draws from OpenCV's RNG: the same mask every run
    cv2.grabCut(roi, seeds, _NO_RECT, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    out[y0:y1, x0:x1] = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    return out


def local_grabcut_clicks(
    image: np.ndarray, prior: np.ndarray, clicks: Sequence[Click], *, radius: int, reach: int
) -> np.ndarray:
    """Bool mask of the object where GrabCut may change ``prior`` only within ``reach`` px of a click.

    Pixels farther from every click are sure object or sure background as ``prior`` says; those
    near a click are probable object or background as it says, and each click's disk of ``radius``
    is sure object (positive) or sure background (negative). GrabCut runs on the box around the
    clicks' reach (grown by 2 ``radius``), so its colour models are local too.
    """
    near = np.zeros(prior.shape, np.uint8)
    for click in clicks:
        cv2.circle(near, (click.x, click.y), reach, 1, thickness=-1)
    ys, xs = np.nonzero(near)
    margin = 2 * radius
    y0, y1 = max(0, int(ys.min()) - margin), min(prior.shape[0], int(ys.max()) + margin + 1)
    x0, x1 = max(0, int(xs.min()) - margin), min(prior.shape[1], int(xs.max()) + margin + 1)
    box, close = prior[y0:y1, x0:x1], near[y0:y1, x0:x1] > 0
    seeds = np.where(box, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
    seeds[close] = np.where(box[close], cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    for click in clicks:
        value = cv2.GC_FGD if click.positive else cv2.GC_BGD
        cv2.circle(seeds, (click.x - x0, click.y - y0), radius, value, thickness=-1)
    out = prior.astype(bool).copy()
    fg = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if fg.any() and not fg.all():
        roi = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR)
        background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        cv2.grabCut(roi, seeds, _NO_RECT, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
        fg = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    out[y0:y1, x0:x1] = fg
    result: np.ndarray = out
    return result


def _grabcut_window(
    image: np.ndarray,
    seeds: np.ndarray,
    window: tuple[int, int, int, int],
    iterations: int = BOX_ITERATIONS,
    pixels: int = BOX_PIXELS,
) -> np.ndarray:
    """GrabCut of ``seeds`` (GrabCut's labels, H×W) in ``window`` (left, top, right, bottom): its mask there.

    The window runs shrunk to at most `BOX_PIXELS` pixels and its mask is scaled back smoothly;
    seeds all of one side are the answer as they are (GrabCut has no colours to tell apart).
    """
    left, top, right, bottom = window
    part = seeds[top:bottom, left:right]
    scale = min(1.0, float(np.sqrt(pixels / part.size)))
    size = (max(1, round(part.shape[1] * scale)), max(1, round(part.shape[0] * scale)))
    small = cv2.resize(part, size, interpolation=cv2.INTER_NEAREST)
    found = np.isin(small, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if found.any() and not found.all():
        roi = cv2.resize(
            np.ascontiguousarray(image[top:bottom, left:right]), size, interpolation=cv2.INTER_AREA
        )
        background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        roi = cv2.cvtColor(roi, cv2.COLOR_RGB2BGR)
        cv2.grabCut(roi, small, _NO_RECT, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
        found = np.isin(small, (cv2.GC_FGD, cv2.GC_PR_FGD))
    full = cv2.resize(found.astype(np.float32), part.shape[::-1], interpolation=cv2.INTER_LINEAR)
    result: np.ndarray = full >= 0.5
    return result


def box_settings() -> dict[str, float]:
    """A box's GrabCut as a click model records it: `BOX_ITERATIONS`, `BOX_PIXELS` and the `TIGHT_…` prior."""
    return {
        "box_iterations": BOX_ITERATIONS,
        "box_pixels": BOX_PIXELS,
        "tight_side": TIGHT_SIDE,
        "tight_slack": TIGHT_SLACK,
        "tight_gap": TIGHT_GAP,
        "tight_rounds": TIGHT_ROUNDS,
        "tight_iterations": TIGHT_ITERATIONS,
        "tight_pixels": TIGHT_PIXELS,
    }


def grabcut_box(image: np.ndarray, box: Box, likely: np.ndarray | None = None) -> np.ndarray:
    """Bool mask of the object in ``box`` from GrabCut: inside probable object, outside sure background.

    GrabCut learns the background's colours from a margin of `BOX_MARGIN` around the box. ``likely``
    (bool H×W, or None) marks the pixels that look like the object (its colours on another frame,
    `appearance.object_like`): inside the box only those start as probable object, the rest as probable
    background, unless they are less than `BOX_LIKELY_SHARE` of the box (the colours do not find it here).
    An answer that leaves the box's rows or columns empty is cut again with seeds on them (`TIGHT_SIDE`).
    A box that reaches past the frame is its part on the frame.
    """
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(width - 1, box[2]), min(height - 1, box[3])
    if x0 > x1 or y0 > y1:
        return np.zeros((height, width), bool)
    box = (x0, y0, x1, y1)
    margin = max(8, round(BOX_MARGIN * max(x1 - x0, y1 - y0)))
    window = (
        max(0, x0 - margin),
        max(0, y0 - margin),
        min(width, x1 + margin + 1),
        min(height, y1 + margin + 1),
    )
    seeds = np.full((height, width), cv2.GC_BGD, np.uint8)
    seeds[y0 : y1 + 1, x0 : x1 + 1] = cv2.GC_PR_FGD
    if likely is not None:
        inside = likely[y0 : y1 + 1, x0 : x1 + 1]
        if inside.mean() >= BOX_LIKELY_SHARE:
            seeds[y0 : y1 + 1, x0 : x1 + 1] = np.where(inside, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    out = np.zeros((height, width), bool)
    out[window[1] : window[3], window[0] : window[2]] = _grabcut_window(image, seeds, window)
    pinned: list[tuple[int, int]] = []
    inside_box = np.zeros((height, width), bool)
    inside_box[y0 : y1 + 1, x0 : x1 + 1] = True
    for _ in range(TIGHT_ROUNDS):
        missed = _untouched_lines(out & inside_box, box, image, window)
        if not missed:
            break
        pinned += missed
        again = seeds.copy()
        for x, y in pinned:
            cv2.circle(again, (x, y), click_radius(image.shape), cv2.GC_FGD, thickness=-1)
        again[~inside_box] = cv2.GC_BGD
        redone = _grabcut_window(image, again, window, TIGHT_ITERATIONS, TIGHT_PIXELS)
        out[window[1] : window[3], window[0] : window[2]] = redone
    return out


def _untouched_lines(
    found: np.ndarray, box: Box, image: np.ndarray, window: tuple[int, int, int, int]
) -> list[tuple[int, int]]:
    """Seeds (x, y) on the box's rows and columns ``found`` leaves empty, or none (`TIGHT_SIDE`, `TIGHT_GAP`).

    One seed per run of empty rows (columns), at the pixel of its middle row (column) whose colour is
    likeliest the object's against the margin's: the object's colours learnt from ``found`` (from the
    whole box where it is nearly empty), the margin's from ``window`` outside the box.

    Args:
        found: the answer (bool H×W), inside the box.
        box: (x0, y0, x1, y1), corners included, on the frame.
        image: the frame, H×W×3 uint8 RGB.
        window: the box and its margin, (left, top, right, bottom).
    """
    x0, y0, x1, y1 = box
    skip_rows = max(TIGHT_SLACK, round(TIGHT_SIDE * (y1 - y0 + 1)))
    skip_cols = max(TIGHT_SLACK, round(TIGHT_SIDE * (x1 - x0 + 1)))
    rows, cols = np.arange(y0 + skip_rows, y1 - skip_rows + 1), np.arange(x0 + skip_cols, x1 - skip_cols + 1)
    if rows.size == 0 or cols.size == 0:
        return []
    row_empty = ~found[rows, x0 : x1 + 1].any(axis=1)
    col_empty = ~found[y0 : y1 + 1, cols].any(axis=0)
    if row_empty.mean() <= TIGHT_GAP and col_empty.mean() <= TIGHT_GAP:
        return []
    left, top, right, bottom = window
    bins = colour_bins(image[top:bottom, left:right]).reshape(bottom - top, right - left)
    inside = np.zeros(bins.shape, bool)
    inside[y0 - top : y1 - top + 1, x0 - left : x1 - left + 1] = True
    ours = found[top:bottom, left:right]
    ours = ours if ours.sum() >= TIGHT_LEAST_PIXELS else inside
    ratio = np.log(histogram(bins[ours], np.ones(int(ours.sum())))) - np.log(
        histogram(bins[~inside], np.ones(int((~inside).sum())))
    )
    likeness = ratio[bins]
    seeds = []
    for empty, lines, along_rows in ((row_empty, rows, True), (col_empty, cols, False)):
        missing = lines[empty]
        for run in np.split(missing, np.flatnonzero(np.diff(missing) > 1) + 1) if missing.size else []:
            middle = int(run[run.size // 2])
            line = likeness[middle - top, cols - left] if along_rows else likeness[rows - top, middle - left]
            best = int(np.argmax(line))
            seeds.append((int(cols[best]), middle) if along_rows else (middle, int(rows[best])))
    return seeds


def box_click(image: np.ndarray, prior: np.ndarray, clicks: Sequence[Click]) -> np.ndarray:
    """``prior`` corrected by the last of ``clicks`` (the earlier ones stay sure seeds).

    A click sits inside the region it corrects, so its distance to the mask's other side tells the
    region's size: GrabCut re-decides the pixels within `BOX_CLICK_REACH` times that distance (at
    least `GIVEN_CLICK_REACH` click radii), learning colours from around them; farther pixels
    stay as ``prior`` says.
    """
    click, radius = clicks[-1], click_radius(prior.shape)
    height, width = prior.shape
    other = prior if click.positive else ~prior
    distance = float(cv2.distanceTransform((~other).astype(np.uint8), cv2.DIST_L2, 5)[click.y, click.x])
    reach = round(min(np.hypot(height, width), max(GIVEN_CLICK_REACH * radius, BOX_CLICK_REACH * distance)))
    near = np.zeros((height, width), np.uint8)
    cv2.circle(near, (click.x, click.y), reach, 1, thickness=-1)
    seeds = np.where(prior, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
    seeds[near > 0] = np.where(prior[near > 0], cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    for each in clicks:
        cv2.circle(seeds, (each.x, each.y), radius, cv2.GC_FGD if each.positive else cv2.GC_BGD, thickness=-1)
    side = reach + 2 * radius + reach // 2
    window = (
        max(0, click.x - side),
        max(0, click.y - side),
        min(width, click.x + side + 1),
        min(height, click.y + side + 1),
    )
    out: np.ndarray = np.array(prior, bool)
    out[window[1] : window[3], window[0] : window[2]] = _grabcut_window(image, seeds, window)
    return out


def box_clicks(image: np.ndarray, box: Box, clicks: Sequence[Click] = ()) -> np.ndarray:
    """GrabCut from ``box`` (`grabcut_box`), then each click's correction in turn (`box_click`)."""
    found = grabcut_box(image, box)
    for count in range(1, len(clicks) + 1):
        found = box_click(image, found, clicks[:count])
    return found
