"""Pictures of object-id masks for people to look at: the DAVIS palette, overlays on a frame, thumbnails."""

from __future__ import annotations

import cv2
import numpy as np


def object_palette() -> np.ndarray:
    """The 256×3 uint8 RGB colours of object ids 0…255, as DAVIS's palette PNGs hold them (0 black)."""
    ids = np.arange(256)
    palette = np.zeros((256, 3), np.int64)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
    return palette.astype(np.uint8)


def overlay(frame: np.ndarray, ids: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``frame`` (H×W×3 uint8 RGB) with every object of ``ids`` (H×W, 0 background) tinted by its colour."""
    if frame.shape[:2] != ids.shape:
        raise ValueError(f"mask of shape {ids.shape} for a frame of shape {frame.shape[:2]}")
    colours = object_palette()[ids]
    tinted = (frame * (1 - alpha) + colours * alpha).round().astype(np.uint8)
    return np.where((ids != 0)[..., None], tinted, frame)


def thumbnail(frame: np.ndarray, ids: np.ndarray | None, width: int) -> np.ndarray:
    """A ``width`` px wide copy of ``frame`` with the overlay of ``ids`` (None: the frame alone)."""
    height = max(1, round(frame.shape[0] * width / frame.shape[1]))
    small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    if ids is None:
        return small
    return overlay(small, cv2.resize(ids, (width, height), interpolation=cv2.INTER_NEAREST))
