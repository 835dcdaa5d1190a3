"""Backward warping of images, probabilities and label maps by a dense flow."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def sample_points(flow: np.ndarray) -> np.ndarray:
    """The points ``p + flow(p)`` as OpenCV ``remap``'s one H×W×2 float32 map of (x, y).

    Compute them once per flow and hand them to `backward_warp_np` and
    `frugalseg.flow.forward_backward_mask_np` (``points=``) when one flow samples several maps.
    """
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow of shape {flow.shape} is not H×W×2")
    points: np.ndarray = np.add(flow, _pixel_grid(*flow.shape[:2]), dtype=np.float32)
    return points


def points_flow(points: np.ndarray) -> np.ndarray:
    """The flow (H×W×2 float32) whose `sample_points` these are: each point less its own pixel."""
    flow: np.ndarray = np.subtract(points, _pixel_grid(*points.shape[:2]), dtype=np.float32)
    return flow


@functools.lru_cache(maxsize=4)
def _pixel_grid(height: int, width: int) -> np.ndarray:
    """Read-only H×W×2 float32 (x, y) coordinates of every pixel, kept once per size."""
    grid = np.empty((height, width, 2), np.float32)
    grid[..., 0] = np.arange(width, dtype=np.float32)
    grid[..., 1] = np.arange(height, dtype=np.float32)[:, None]
    grid.flags.writeable = False
    return grid


def backward_warp_np(
    source: np.ndarray,
    flow: np.ndarray | None,
    nearest: bool = True,
    fill: float | int | tuple[float, ...] = 0,
    points: np.ndarray | None = None,
) -> np.ndarray:
    """Sample ``source`` at ``p + flow(p)`` for every pixel ``p`` (OpenCV ``remap``).

    ``source`` is H×W or H×W×C; ``flow`` is H×W×2 with (dx, dy), or None with its `sample_points`
    given as ``points``. Pixels that land outside the source get ``fill`` (use the ignore index for
    label maps; one value per channel for several).
    """
    if points is None:
        if flow is None:
            raise ValueError("give the flow or its sample points")
        if flow.shape[:2] != source.shape[:2] or flow.ndim != 3 or flow.shape[2] != 2:
            raise ValueError(f"flow of shape {flow.shape} does not fit a source of shape {source.shape}")
        points = sample_points(flow)
    elif points.shape[:2] != source.shape[:2]:
        raise ValueError(f"points of shape {points.shape} do not fit a source of shape {source.shape}")
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return remap_at(source, points, interpolation, cv2.BORDER_CONSTANT, fill)


def remap_at(
    source: np.ndarray,
    points: np.ndarray,
    interpolation: int,
    border: int,
    fill: float | int | tuple[float, ...] = 0,
) -> np.ndarray:
    """``cv2.remap`` of ``source`` at an H×W×2 float32 map of (x, y) points (`sample_points`)."""
    # one two-channel map: OpenCV's stubs refuse the None that stands for the second map
    sampled: np.ndarray = cv2.remap(source, points, None, interpolation, borderMode=border, borderValue=fill)  # type: ignore[call-overload]
    return sampled


def backward_warp(
    source: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched torch warp: ``source`` B×C×H×W sampled at ``p + flow(p)`` with ``flow`` B×2×H×W.

    Returns the warped tensor and a B×H×W bool mask of pixels whose sample point lies inside the
    source (outside pixels are zero in the warped tensor), in the source's dtype. A point within half
    a pixel outside the edge pixels' centres is inside; bilinear reads the edge there (border padding),
    so a warped probability map still sums to 1 rather than mixing in zeros. The pixel grid is
    kept once per size and device; the warp runs in float32 at least (half precision cannot hold the
    pixel coordinates of a wide frame), so an integer flow samples pixel centres up to float32
    round-off (under 1e-4 px).
    """
    if source.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 or source.shape[-2:] != flow.shape[-2:]:
        raise ValueError(
            f"flow of shape {tuple(flow.shape)} does not fit a source of shape {tuple(source.shape)}"
        )
    height, width = flow.shape[-2:]
    dtype = torch.promote_types(flow.dtype, torch.float32)
    flow = flow.to(dtype)
    points = _pixels(height, width, flow.device, dtype) + flow.permute(0, 2, 3, 1)  # B×H×W×(x, y)
    size = torch.tensor([width, height], device=flow.device, dtype=dtype)
    inside = ((points >= -0.5) & (points <= size - 0.5)).all(-1)
    grid = 2 * (points + 0.5) / size - 1  # grid_sample's normalised coordinates (align_corners=False)
    if mode == "nearest":  # a nearest read takes one pixel: nothing to mix in
        warped = F.grid_sample(source.to(dtype), grid, mode=mode, padding_mode="zeros", align_corners=False)
        return warped.to(source.dtype), inside
    warped = F.grid_sample(source.to(dtype), grid, mode=mode, padding_mode="border", align_corners=False)
    return warped.masked_fill(~inside[:, None], 0).to(source.dtype), inside


@functools.lru_cache(maxsize=8)
def _pixels(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """1×H×W×2 pixel coordinates (x, y) of every pixel."""
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
