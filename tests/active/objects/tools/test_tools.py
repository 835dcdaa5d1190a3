"""The weight-free tools on synthetic frames of known answer: a box, intelligent scissors, superpixels."""

from __future__ import annotations

import cv2
import numpy as np

from active.objects.tools.test_click_models import SIZE, ScriptedSAM
from frugalseg.active.objects.simulation.simulated_annotator import CorrectiveClick
from frugalseg.active.objects.tools.click_models import GrabCutClicks, SAMClicks
from frugalseg.active.objects.tools.grabcut import box_clicks
from frugalseg.active.objects.tools.tools import IntelligentScissors, SuperpixelBrush, superpixels


def noisy_ellipse() -> tuple[np.ndarray, np.ndarray]:
    """A red ellipse (40×25 px half-axes) on grey, both with uniform noise; the image and the ellipse."""
    rng = np.random.default_rng(0)
    image = rng.integers(60, 110, (120, 160, 3)).astype(np.uint8)
    drawn = np.zeros((120, 160), np.uint8)
    cv2.ellipse(drawn, (80, 60), (40, 25), 0, 0, 360, 1, thickness=-1)
    truth = drawn > 0
    image[truth] = rng.integers(0, 50, (int(truth.sum()), 3)) + np.array([180, 30, 30])
    return image, truth


def test_box_finds_the_object_in_it() -> None:
    image, truth = noisy_ellipse()
    ys, xs = np.nonzero(truth)
    box = (int(xs.min()) - 3, int(ys.min()) - 3, int(xs.max()) + 3, int(ys.max()) + 3)
    assert np.array_equal(GrabCutClicks().box(image, box), truth)  # every pixel, the box 3 px loose


def test_a_click_after_a_box_is_a_sure_seed_and_changes_nothing_far() -> None:
    image, truth = noisy_ellipse()
    box = (37, 32, 123, 88)  # the ellipse's box, 3 px loose: GrabCut finds it exactly
    clicks = [CorrectiveClick(80, 60, False, 0, 0), CorrectiveClick(5, 5, True, 0, 0)]
    disks = np.zeros(truth.shape, np.uint8)
    for click in clicks:  # the click radius at 160×120: 2 px
        cv2.circle(disks, (click.x, click.y), 2, 1, thickness=-1)
    negative = box_clicks(image, box, clicks[:1])
    assert np.array_equal(negative, truth & ~(disks > 0) | truth & (np.arange(160) < 40))
    both = box_clicks(image, box, clicks)
    assert np.array_equal(both, negative | (disks > 0) & (np.arange(120)[:, None] < 40))


def test_scissors_follow_the_edges_of_a_square() -> None:
    image = np.zeros((80, 120, 3), np.uint8)
    image[20:60, 30:90] = 255
    square = np.zeros((80, 120), bool)
    square[20:60, 30:90] = True
    kernel = np.ones((3, 3), np.uint8)
    ring = cv2.dilate(square.astype(np.uint8), kernel) > 0
    edge = ring & ~(cv2.erode(square.astype(np.uint8), kernel) > 0)  # its outline and the ring outside it
    scissors = IntelligentScissors()
    for anchors in ([(30, 20), (89, 20), (89, 59), (30, 59)], [(60, 20), (89, 40), (60, 59), (30, 40)]):
        contour = scissors.contour(image, anchors, closed=True)
        assert edge[contour[:, 1], contour[:, 0]].all()  # every point of the path on the square's edge
        assert tuple(contour[0]) == anchors[0] and tuple(contour[-1]) == anchors[0]
        found = scissors.mask(image, anchors)
        assert not found[~ring].any()  # at most the square's 1 px ring more than the square
        # all of the square, but where the path cuts its bottom-right corner from the middle of its sides
        assert np.argwhere(square & ~found).tolist() == ([] if anchors[0] == (30, 20) else [[59, 89]])
    along_top = scissors.contour(image, [(30, 20), (89, 20)])
    assert along_top.tolist() == [[30, 20], *([x, 19] for x in range(31, 89)), [89, 20]]


def test_superpixels_keep_to_flat_colours_and_the_brush_paints_whole_ones() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]
    for (rows, cols), colour in zip([(0, 0), (0, 32), (32, 0), (32, 32)], colours, strict=True):
        image[rows : rows + 32, cols : cols + 32] = colour
    labels = superpixels(image)
    quadrant = (np.arange(64)[:, None] // 32) * 2 + np.arange(64)[None, :] // 32
    for label in np.unique(labels):
        assert len(np.unique(quadrant[labels == label])) == 1  # no superpixel crosses a colour edge
    brush = SuperpixelBrush()
    diagonal = brush.paint(image, [(2, 2), (29, 29)])
    assert np.array_equal(diagonal, np.isin(labels, np.unique(labels[np.arange(2, 30), np.arange(2, 30)])))
    assert not diagonal[:, 32:].any() and not diagonal[32:].any()
    around = brush.paint(image, [(8, 8), (24, 8), (24, 24), (8, 24)])
    assert np.array_equal(around, quadrant == 0)  # a stroke through each of its superpixels: the quadrant


def test_a_box_is_a_box_prompt_for_sam() -> None:
    small, big = np.zeros((20, 20), bool), np.ones((20, 20), bool)
    sam = ScriptedSAM([([small, big, small], [0.1, 0.9, 0.2]), ([small], [0.5])])
    model = SAMClicks(sam, SIZE)
    image = np.zeros((20, 20, 3), np.uint8)
    inside = np.zeros((20, 20), bool)
    inside[3:13, 2:11] = True
    assert np.array_equal(model.box(image, (2, 3, 10, 12)), inside)  # the best-scored of three, in the box
    assert np.array_equal(model.box(image, (2, 3, 10, 12), [CorrectiveClick(5, 6, False, 0, 0)]), small)
    assert [(c["box"], c["points"], c["labels"], c["multimask"]) for c in sam.calls] == [
        ([2, 3, 10, 12], None, None, True),
        ([2, 3, 10, 12], [[5, 6]], [0], False),
    ]
    assert len(sam.images) == 1  # embedded once
