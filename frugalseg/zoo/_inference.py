"""Sliding-window inference for frames larger than the crop a student was trained on.

Overlapping windows of the training crop's size cover the frame; the logits of every window are
summed into a full-size map and divided by how many windows saw each pixel. The same window is
cut from every frame of a clip, so video students (B×T×3×H×W) see aligned memory frames, as the
official TMANet slide inference does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows of length ``window`` every ``stride`` pixels, the last one flush with the end.

    A frame no larger than the window gets the single start 0 (the whole frame).
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got window={window}, stride={stride}")
    if stride > window:
        raise ValueError(f"stride {stride} > window {window} would leave pixels that no window covers")
    if size <= window:
        return [0]
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def default_stride(window: Sequence[int]) -> tuple[int, int]:
    """Two thirds of the window, rounded up (the official TMANet test uses crop 769, stride 513)."""
    return math.ceil(window[0] * 2 / 3), math.ceil(window[1] * 2 / 3)


@torch.no_grad()
def sliding_window(
    model: Callable[[Tensor], Tensor],
    frames: Tensor,
    window: Sequence[int],
    stride: Sequence[int] | None = None,
) -> Tensor:
    """Logits B×C×H×W of ``model`` on ``frames`` (B×T×3×H×W) averaged over overlapping windows.

    Args:
        model: maps a B×T×3×h×w crop to B×C×h×w logits (any zoo student).
        frames: the clip, B×T×3×H×W.
        window: (height, width) of a window, the training crop's size.
        stride: (height, width) between windows; default :func:`default_stride`.
    """
    if frames.dim() != 5:
        raise ValueError(f"sliding_window expects frames B×T×3×H×W, received shape {tuple(frames.shape)}")
    height, width = frames.shape[-2:]
    win_h, win_w = int(window[0]), int(window[1])
    stride_h, stride_w = (int(s) for s in (stride or default_stride(window)))
    rows = window_starts(height, win_h, stride_h)
    cols = window_starts(width, win_w, stride_w)
    total: Tensor | None = None
    count = frames.new_zeros(1, 1, height, width, dtype=torch.float32)
    for top in rows:
        for left in cols:
            crop = frames[..., top : top + win_h, left : left + win_w]
            logits = model(crop).float()
            if total is None:
                total = logits.new_zeros(logits.shape[0], logits.shape[1], height, width)
            total[..., top : top + win_h, left : left + win_w] += logits
            count[..., top : top + win_h, left : left + win_w] += 1
    assert total is not None  # at least one window always exists
    return total / count
