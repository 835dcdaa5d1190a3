"""The click cost of semantic labels as paper 000 counts it: the vertices of their boundary polygons.

Each connected region of each class of a label is outlined by ``cv2.findContours`` and simplified
by ``cv2.approxPolyDP`` with ε = 1 pixel; a person places one click per vertex (so a square costs 4).
Regions are 8-connected, the connectivity ``findContours`` follows, and only their outer boundary
is counted: a hole is the region of another class, which is outlined itself.

A labelled sample costs the clicks of its own label (the ground truth inside it, ignore outside),
so a rectangle's cut edges are clicked too. Its share of the clicks for labelling every frame fully
is the "Anno. Clicks %" of the paper's Table 3. Hours come from the per-click figures of
`frugalseg.data.costs` (``click_seconds`` per click plus ``clicked_frame_seconds`` once per frame
that gets clicks): those are EVA-VOS's corrective-click timings, standing in for polygon clicks,
which paper 000 prices in clicks only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from frugalseg.active.semantic.samples import SampleKey, SamplePool
from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.costs import DEFAULT_COSTS, AnnotationCosts
from frugalseg.errors import DataError

EPSILON = 1.0


def region_clicks(mask: np.ndarray, epsilon: float = EPSILON) -> int:
    """Vertices of the simplified outer polygon of each 8-connected region of the bool ``mask``."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return sum(len(cv2.approxPolyDP(contour, epsilon, True)) for contour in contours)


def label_clicks(label: np.ndarray, ignore_index: int = IGNORE_INDEX, epsilon: float = EPSILON) -> int:
    """Clicks to draw every class region of an H×W class map (``ignore_index`` pixels are not drawn)."""
    classes = np.unique(label)
    return sum(region_clicks(label == c, epsilon) for c in classes if c != ignore_index)


@dataclass(frozen=True)
class ClickCost:
    """The clicks of a set of labelled samples and what they are worth.

    Attributes:
        per_sample: clicks of each sample, in the order given.
        clicks: their total.
        full_clicks: clicks for labelling every frame of the video fully.
        percent: ``clicks`` as a percentage of ``full_clicks`` (Table 3's "Anno. Clicks %").
        hours: human hours through the per-click costs.
    """

    per_sample: tuple[int, ...]
    clicks: int
    full_clicks: int
    percent: float
    hours: float


def full_clicks(ground_truth: Sequence[np.ndarray], ignore_index: int = IGNORE_INDEX) -> int:
    """Clicks for labelling every frame of a video fully from its ground truth."""
    return sum(label_clicks(np.asarray(label), ignore_index) for label in ground_truth)


def samples_cost(
    ground_truth: Sequence[np.ndarray | None],
    pool: SamplePool,
    samples: Sequence[SampleKey],
    costs: AnnotationCosts = DEFAULT_COSTS,
    ignore_index: int = IGNORE_INDEX,
    video: str = "video",
) -> ClickCost:
    """The click cost of labelling ``samples`` of ``pool`` from the video's ``ground_truth``.

    Args:
        ground_truth: the class map of every frame (H×W); all are needed for the full cost.
        pool: the video's samples.
        samples: the labelled samples.
        costs: the seconds per click and per clicked frame.
        ignore_index: the label value of unlabelled pixels.
        video: the video's name, for errors.

    Raises:
        DataError: a frame without ground truth.
    """
    missing = [t for t, label in enumerate(ground_truth) if label is None]
    if missing:
        raise DataError(f"{video} frame {missing[0]}", "no ground truth, so no click cost can be counted")
    truth = [np.asarray(label) for label in ground_truth]
    per_sample = []
    per_frame: defaultdict[int, int] = defaultdict(int)
    for sample in samples:
        label = np.where(pool.mask(sample), truth[sample.frame], ignore_index)
        clicks = label_clicks(label, ignore_index)
        per_sample.append(clicks)
        per_frame[sample.frame] += clicks
    total = sum(per_sample)
    full = full_clicks(truth, ignore_index)
    seconds = sum(costs.clicks_seconds(clicks) for clicks in per_frame.values())
    return ClickCost(
        per_sample=tuple(per_sample),
        clicks=total,
        full_clicks=full,
        percent=100.0 * total / full if full else 0.0,
        hours=seconds / 3600,
    )
