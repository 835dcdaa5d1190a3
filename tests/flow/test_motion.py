"""Whole-object motion from tracked corners, on textured objects moved by known transforms."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from frugalseg.flow.motion import moved_masks, object_motion


def texture(height: int, width: int, seed: int, tint: int) -> np.ndarray:
    """A smooth random RGB texture with corners to track."""
    noise = np.random.default_rng(seed).uniform(0, 255, (height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.5)
    grey = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 150 + tint
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def scene(transform: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frames before/after a textured 40×40 square on a static background moves by ``transform``; masks."""
    size = (160, 200)
    background = texture(*size, seed=0, tint=20)
    square = np.zeros(size, bool)
    square[50:90, 60:100] = True
    first = background.copy()
    first[square] = texture(*size, seed=1, tint=100)[square]
    moved = cv2.warpAffine(first, transform, size[::-1], flags=cv2.INTER_LINEAR)
    mask_after = cv2.warpAffine(square.view(np.uint8), transform, size[::-1], flags=cv2.INTER_NEAREST) > 0
    second = np.where(mask_after[..., None], moved, background)
    return first, second, square, mask_after


def similarity(angle: float, scale: float, dx: float, dy: float) -> np.ndarray:
    """2×3 similarity about the square's centre (80, 70), then shifted by (dx, dy)."""
    transform = cv2.getRotationMatrix2D((80.0, 70.0), angle, scale)
    transform[:, 2] += (dx, dy)
    return transform


@pytest.mark.parametrize(
    ("transform", "tolerance"),
    [(similarity(0.0, 1.0, 9.0, -4.0), 0.5), (similarity(6.0, 1.08, -5.0, 3.0), 1.0)],
    ids=["shift", "rotate-scale-shift"],
)
def test_object_motion_finds_the_transform_of_the_object(transform: np.ndarray, tolerance: float) -> None:
    first, second, mask, _ = scene(transform)
    found = object_motion(first, second, mask)
    assert found is not None
    # the transform moves the square's corners to within a pixel of the truth (LK windows do not rotate)
    corners = np.array([[60, 50, 1], [99, 50, 1], [60, 89, 1], [99, 89, 1]], np.float64)
    np.testing.assert_allclose(corners @ found.T, corners @ transform.T, atol=tolerance)


def test_the_background_does_not_pull_the_object_motion() -> None:
    """Only corners inside the mask are tracked: a static background does not make the motion zero."""
    first, second, mask, _ = scene(similarity(0.0, 1.0, 12.0, 0.0))
    found = object_motion(first, second, mask)
    assert found is not None and abs(found[0, 2] - 12.0) < 0.5 and abs(found[1, 2]) < 0.5


def test_no_motion_for_an_object_without_corners() -> None:
    first = np.full((100, 100, 3), 90, np.uint8)
    mask = np.zeros((100, 100), bool)
    mask[30:60, 30:60] = True
    first[mask] = 200  # flat inside: corners only on its outline, too few
    assert object_motion(first, first, mask, min_tracks=20) is None


def test_moved_masks_put_the_previous_mask_where_the_object_went() -> None:
    transform = similarity(0.0, 1.0, 9.0, -4.0)
    first, second, square, after = scene(transform)
    label = square.astype(np.uint8)
    moved = moved_masks(label, first, second, [1, 2])
    assert list(moved) == [1]  # class 2 is absent: left out
    overlap = (moved[1] & after).sum() / (moved[1] | after).sum()
    assert overlap > 0.97


def test_object_motion_refuses_frames_and_mask_of_other_sizes() -> None:
    first, second, mask, _ = scene(similarity(0.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="differ in size"):
        object_motion(first, second[:-1], mask)
