"""Synthetic clips with known motion for the loop's tests: textured squares over a textured background;
and `CopyAnchor`, an engine whose masks are known by hand."""

from __future__ import annotations

import cv2
import numpy as np

from frugalseg.autolabel.propagate import PropagationEngine


class CopyAnchor(PropagationEngine):
    """A single-anchor engine that copies the anchor's mask to every target: masks known by hand."""

    name = "copy"
    settings: dict = {}

    def propagate(self, frames, anchor_index, anchor_label, targets):
        return {t: anchor_label.copy() for t in targets}


def texture(shape: tuple[int, int], seed: int, scale: int) -> np.ndarray:
    """Smooth random RGB texture (bicubic upsampled noise), so that optical flow has something to match."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (shape[0] // scale + 2, shape[1] // scale + 2, 3)).astype(np.float32)
    big = cv2.resize(noise, (shape[1] + 2 * scale, shape[0] + 2 * scale), interpolation=cv2.INTER_CUBIC)
    return big[: shape[0], : shape[1]].clip(0, 255).astype(np.uint8)


def moving_square(
    n: int = 21,
    *,
    size: tuple[int, int] = (96, 128),
    step: int = 2,
    occluder: int = 0,
    late: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames and object ids: object 1, a 40 px textured square, moves ``step`` px right per frame.

    ``occluder`` > 0 puts a grey bar over the left ``occluder`` columns (object 1 starts behind it and
    comes out); ``late`` adds object 2, a 16 px square, from that frame on, moving 1 px down per frame.
    """
    height, width = size
    background = texture(size, 0, 8)
    square = texture((40, 40), 1, 4)
    small = texture((16, 16), 2, 4)
    frames, truth = [], []
    for t in range(n):
        frame = background.copy()
        ids = np.zeros(size, np.uint8)
        x = 10 + step * t
        frame[28:68, x : x + 40] = square
        ids[28:68, x : x + 40] = 1
        if late is not None and t >= late:
            y = 4 + (t - late)
            frame[y : y + 16, 96:112] = small
            ids[y : y + 16, 96:112] = 2
        if occluder:
            frame[:, :occluder] = (90, 90, 90)
            ids[:, :occluder] = 0
        frames.append(frame)
        truth.append(ids)
    return frames, truth


def jaccard(mask: np.ndarray, truth: np.ndarray, obj: int = 1) -> float:
    a, b = mask == obj, truth == obj
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union
