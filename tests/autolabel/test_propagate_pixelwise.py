"""The flow engine's per-pixel steps against their definitions: the majority vote of the unreliable
pixels (window counts by hand, the box filter's mirrored border included) and the confidence map
(the product of its factors, one after the other, as documented)."""

from __future__ import annotations

import cv2
import numpy as np

from frugalseg.autolabel.flow_propagate import Evidence, _majority, label_confidence
from frugalseg.data.clips import IGNORE_INDEX


def majority_by_hand(label: np.ndarray, size: int, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window's most frequent label (255 left out; ties to the smaller label) and its lead."""
    reach = size // 2
    padded = np.pad(label, reach, mode="reflect")  # OpenCV's default border: mirrored, edge not repeated
    best, lead = [], []
    for flat in where:
        y, x = divmod(int(flat), label.shape[1])
        window = padded[y : y + size, x : x + size].ravel()
        counts = np.bincount(window[window != IGNORE_INDEX], minlength=256)
        order = sorted(range(256), key=lambda value: (-counts[value], value))
        top, second = counts[order[0]], counts[order[1]]
        best.append(order[0] if top else IGNORE_INDEX)
        lead.append(np.float32(top - second) / np.float32(max(counts.sum(), 1)))
    return np.array(best, np.uint8), np.array(lead, np.float32)


def test_majority_equals_the_window_counts_at_the_pixels_asked_for() -> None:
    rng = np.random.default_rng(0)
    label = np.repeat(np.repeat(rng.integers(0, 4, (12, 16)), 4, axis=0), 4, axis=1).astype(np.uint8)
    label[rng.random(label.shape) < 0.1] = IGNORE_INDEX
    label[40:43, 50:52] = 9  # a small class: its counts come from its own box only
    label[0, 0] = 7  # a class in a corner: seen through the mirrored border
    corners = [0, 1, label.shape[1], label.size - 1]
    where = np.concatenate([corners, rng.choice(label.size, 300, replace=False)])
    for size in (3, 9):
        best, lead = _majority(label, size, where)
        expected_best, expected_lead = majority_by_hand(label, size, where)
        np.testing.assert_array_equal(best, expected_best)
        np.testing.assert_array_equal(lead, expected_lead)


def test_confidence_is_the_product_of_its_documented_factors() -> None:
    rng = np.random.default_rng(1)
    label = np.zeros((40, 60), np.uint8)
    label[10:30, 20:45] = 3
    label[:, :4] = IGNORE_INDEX
    evidence = Evidence(
        distance=4,
        reliable=rng.random(label.shape) < 0.8,
        lost=rng.random(label.shape) < 0.2,
        direct_disagrees=rng.random(label.shape) < 0.2,
        snapped=rng.random(label.shape) < 0.2,
    )
    reliable = cv2.blur(evidence.reliable.astype(np.float32), (7, 7))
    edge = cv2.dilate(label, np.ones((3, 3), np.uint8)) != cv2.erode(label, np.ones((3, 3), np.uint8))
    distance = cv2.distanceTransform((~edge).view(np.uint8), cv2.DIST_L2, 3)
    expected = (0.3 + 0.7 * reliable) * (0.5 + 0.5 * np.minimum(distance / 6.0, 1.0))
    for mask, factor in ((evidence.lost, 0.6), (evidence.direct_disagrees, 0.5), (evidence.snapped, 0.5)):
        expected = expected * np.where(mask, np.float32(factor), np.float32(1.0))
    expected = expected * (1.0 / (1.0 + 0.02 * 3))
    expected = np.where(label == IGNORE_INDEX, np.float32(0.0), expected)
    confidence = label_confidence(label, evidence)
    assert confidence.dtype == np.float32
    np.testing.assert_array_equal(confidence, expected)


def test_confidence_of_clean_evidence_costs_only_the_boundary_and_the_distance() -> None:
    label = np.zeros((30, 30), np.uint8)
    label[:, 15:] = 1
    confidence = label_confidence(label, Evidence(distance=4, reliable=np.ones(label.shape, bool)))
    decay = np.float32(1.0 / 1.06)
    assert confidence[15, 2] == decay  # 12 px from the boundary
    assert confidence[15, 14] == np.float32(0.5) * decay  # on it
