"""Temporal consistency (TC), eq. (9) of HVSA: mIoU between a prediction and its warped predecessor.

The warp is :func:`frugalseg.flow.backward_warp` with nearest sampling (``grid_sample``). On the CPU
the same warp runs without torch's kernels: the sample coordinates are computed with the float32
operations of ``backward_warp`` and ``grid_sample`` (numpy), the previous prediction is sampled as
uint8 by ``cv2.remap`` (nearest, round half to even like ``grid_sample``), and one masked joint
histogram (``cv2.calcHist``) counts the confusion matrix. ``grid_sample`` may fuse its last
multiply-add (an FMA; torch's AVX2 kernels do), which moves the rounding of a coordinate that lies
on a half pixel; a one-time probe against ``backward_warp`` picks the arithmetic this torch build
uses, and where neither reproduces it the torch path runs instead. So both paths give the same counts.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from frugalseg.flow import backward_warp, forward_backward_mask
from frugalseg.metrics.segmentation import Backend, DatasetMeanIoU, fits_uint8, joint_histogram

Arithmetic = Literal["fused", "separate"]

#: ``cv2.remap`` takes maps with fewer rows and columns than this.
REMAP_LIMIT = 32767


def sample_coordinate(flow: np.ndarray, axis: int, arithmetic: Arithmetic) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinate that ``backward_warp`` (nearest) samples along one axis, and its inside mask.

    The float32 operations of ``backward_warp`` (``points = pixel + flow``, ``grid = 2 (points + 0.5)
    / size − 1``) and of ``grid_sample`` (``(grid + 1) · size/2 − 0.5``), in numpy, in place.

    Args:
        flow: B×H×W float32 flow component along ``axis`` (dx for axis 2, dy for axis 1).
        axis: 2 for x (columns), 1 for y (rows).
        arithmetic: ``fused`` rounds ``(grid + 1) · size/2 − 0.5`` once (an FMA, exact in float64
            first), ``separate`` rounds the product and the difference each.

    Returns:
        The float32 coordinate (B×H×W) and whether ``points`` lies inside the source (bool B×H×W).
    """
    size = flow.shape[axis]
    shape = [1, 1, 1]
    shape[axis] = size
    points = flow + np.arange(size, dtype=np.float32).reshape(shape)
    inside = points >= np.float32(-0.5)
    inside &= points <= np.float32(size - 0.5)
    grid = points  # overwritten in place from here
    grid += np.float32(0.5)
    grid *= np.float32(2)
    grid /= np.float32(size)
    grid -= np.float32(1)
    grid += np.float32(1)
    if arithmetic == "fused":
        # A float32 product is exact in float64, and so is the difference below 2**28 pixels
        # (grid + 1 is a multiple of 2**-24): the float32 result is rounded once, as by an FMA.
        wide = np.multiply(grid, size / 2, dtype=np.float64)
        np.subtract(wide, 0.5, out=grid, casting="same_kind")
        return grid, inside
    grid *= np.float32(size / 2)
    grid -= np.float32(0.5)
    return grid, inside


def warp_nearest_np(
    source: np.ndarray, flow: np.ndarray, arithmetic: Arithmetic
) -> tuple[np.ndarray, np.ndarray]:
    """``backward_warp(source, flow, mode="nearest")`` of uint8 maps on the CPU (numpy and ``cv2.remap``).

    Args:
        source: B×H×W uint8 maps (H and W below :data:`REMAP_LIMIT`).
        flow: B×2×H×W float32 flow (dx, dy).
        arithmetic: how ``grid_sample`` rounds its coordinate (see :func:`sample_coordinate`).

    Returns:
        The warped B×H×W uint8 maps (0 where the sample falls off the source) and the B×H×W bool
        mask of sample points inside the source.
    """
    map_x, inside = sample_coordinate(flow[:, 0], 2, arithmetic)
    map_y, inside_y = sample_coordinate(flow[:, 1], 1, arithmetic)
    inside &= inside_y
    warped = np.empty_like(source)
    for index, (image, x, y) in enumerate(zip(source, map_x, map_y, strict=True)):
        warped[index] = cv2.remap(
            image, x, y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    return warped, inside


@functools.cache
def warp_arithmetic() -> Arithmetic | None:
    """The arithmetic with which :func:`warp_nearest_np` reproduces ``backward_warp`` here (None: none).

    A probe of 97×257 pixels (sizes where the two roundings of a half-pixel coordinate differ) with
    half-pixel and random flows, warped both ways and compared exactly, once per process.
    """
    generator = np.random.default_rng(0)
    height, width = 97, 257
    source = (np.arange(height * width) % 251).astype(np.uint8).reshape(1, height, width)
    flow = np.concatenate(
        (
            generator.integers(-2 * height, 2 * height, (1, 2, height, width)) / 2,
            generator.normal(0, 30, (1, 2, height, width)),
        )
    ).astype(np.float32)
    source = np.concatenate((source, source))
    warped, inside = backward_warp(
        torch.from_numpy(source)[:, None].float(), torch.from_numpy(flow), mode="nearest"
    )
    expected, expected_inside = warped[:, 0].round().to(torch.uint8).numpy(), inside.numpy()
    candidates: tuple[Arithmetic, ...] = ("fused", "separate")
    for arithmetic in candidates:
        got, got_inside = warp_nearest_np(source, flow, arithmetic)
        if np.array_equal(got, expected) and np.array_equal(got_inside, expected_inside):
            return arithmetic
    return None


class TemporalConsistency(DatasetMeanIoU):
    """Dataset-level TC: prediction t against prediction t−1 warped to t by optical flow.

    ``update(pred_prev, pred_cur, flow_cur_to_prev, flow_prev_to_cur, reliable=None)`` takes
    predictions B×H×W (class indices) or B×C×H×W (logits) and flows B×2×H×W with
    ``flow[:, :, y, x] = (dx, dy)``; ``reliable`` (B×H×W bool) is the forward-backward check's
    result when the caller has it (the loader computes it with the flows), else it is computed here.
    ``pred_prev`` is sampled (nearest) at ``p + flow_cur_to_prev(p)``; pixels that land outside
    frame t−1, fail the forward-backward check, or hold ``ignore_index`` in either prediction are
    ignored. The rest fill a confusion matrix with ``pred_cur`` as prediction and the warped
    ``pred_prev`` as target, so ``compute`` is the mIoU over the classes that occur and
    :meth:`per_class` the per-class TC. ``backend="auto"`` warps and counts CPU tensors with numpy
    and OpenCV (see the module) and other tensors with ``grid_sample`` and ``bincount``.

    Args:
        num_classes: number of classes C.
        ignore_index: class value of pixels that are not counted.
        fb_alpha: α of the forward-backward check, when ``reliable`` is not given.
        fb_beta: β of the forward-backward check, when ``reliable`` is not given.
        backend: ``auto``, ``opencv`` (CPU) or ``torch`` (any device).
        **kwargs: arguments of `ConfusionMatrix` (``validate_args``) and torchmetrics' ``Metric``.
    """

    ignore_index: int  # never None here, unlike a plain confusion matrix's

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        fb_alpha: float = 0.01,
        fb_beta: float = 0.5,
        backend: Backend = "auto",
        **kwargs: Any,
    ) -> None:
        if ignore_index is None:  # it marks the pixels the flow cannot carry, which are not counted
            raise ValueError(
                "TemporalConsistency needs an ignore_index: it marks the pixels that are not counted"
            )
        super().__init__(num_classes=num_classes, ignore_index=ignore_index, backend=backend, **kwargs)
        self.fb_alpha = fb_alpha
        self.fb_beta = fb_beta

    def update(  # type: ignore[override]
        self,
        pred_prev: Tensor,
        pred_cur: Tensor,
        flow_cur_to_prev: Tensor,
        flow_prev_to_cur: Tensor,
        reliable: Tensor | None = None,
    ) -> None:
        """Add the confusion matrix of one pair of consecutive predictions."""
        pred_prev = pred_prev.argmax(1) if pred_prev.is_floating_point() else pred_prev
        pred_cur = pred_cur.argmax(1) if pred_cur.is_floating_point() else pred_cur
        if pred_prev.dim() != 3 or pred_prev.shape != pred_cur.shape:
            raise ValueError(
                f"expected two predictions B×H×W (or logits B×C×H×W) of the same size, "
                f"got {tuple(pred_prev.shape)} and {tuple(pred_cur.shape)}"
            )
        batch, height, width = pred_cur.shape
        for name, flow in (("flow_cur_to_prev", flow_cur_to_prev), ("flow_prev_to_cur", flow_prev_to_cur)):
            if tuple(flow.shape) != (batch, 2, height, width):
                raise ValueError(
                    f"{name} has shape {tuple(flow.shape)} but the predictions need a flow of shape "
                    f"{(batch, 2, height, width)}"
                )
        flow_cur_to_prev, flow_prev_to_cur = flow_cur_to_prev.float(), flow_prev_to_cur.float()
        if reliable is None:
            reliable = forward_backward_mask(flow_cur_to_prev, flow_prev_to_cur, self.fb_alpha, self.fb_beta)
        if self.use_opencv(pred_cur):
            counts = self._pair_counts_opencv(pred_prev, pred_cur, flow_cur_to_prev, reliable)
            if counts is not None:
                self.confmat += counts.to(self.confmat)
                return
        warped, inside = backward_warp(pred_prev[:, None].float(), flow_cur_to_prev, mode="nearest")
        warped = warped[:, 0].round().to(torch.int32)
        unlabelled = pred_cur == self.ignore_index
        reliable = inside & reliable & ~unlabelled
        # unreliable pixels become the ignore index of the target, which the confusion matrix skips
        counted = pred_cur.masked_fill(unlabelled, 0).to(torch.int32)  # an ignored class is not checked
        super().update(counted, warped.masked_fill_(~reliable, self.ignore_index))

    def _pair_counts_opencv(
        self, pred_prev: Tensor, pred_cur: Tensor, flow_cur_to_prev: Tensor, reliable: Tensor
    ) -> Tensor | None:
        """C×C counts of one pair on the CPU, or None where the torch path must count them.

        None: the maps are too large for ``cv2.remap``, this torch build's ``grid_sample`` is not
        reproduced (:func:`warp_arithmetic`), or, with ``validate_args``, a prediction does not fit in
        uint8 (the torch path then reports it). The uint8 maps keep ignored classes (≥ C) out of the
        histogram's range; its mask is ``inside & reliable``.
        """
        arithmetic = warp_arithmetic()
        height, width = pred_cur.shape[-2:]
        if arithmetic is None or max(height, width) >= REMAP_LIMIT:
            if self.backend == "opencv":
                raise RuntimeError(
                    "TemporalConsistency(backend='opencv') cannot reproduce this torch build's grid_sample "
                    f"or warp maps of {height}×{width}; use backend='torch'"
                )
            return None
        prev_np, cur_np = pred_prev.detach().cpu().numpy(), pred_cur.detach().cpu().numpy()
        if self.validate_args and not (fits_uint8(prev_np) and fits_uint8(cur_np)):
            return None
        prev_u8, cur_u8 = prev_np.astype(np.uint8, copy=False), cur_np.astype(np.uint8, copy=False)
        flow = flow_cur_to_prev.detach().cpu().numpy()
        warped, mask = warp_nearest_np(prev_u8, flow, arithmetic)
        mask &= reliable.detach().cpu().numpy().astype(bool, copy=False)
        if self.validate_args:  # the torch path's check: warped target where counted, every prediction
            labelled = cur_np != self.ignore_index
            self.check_np(np.where(mask & labelled, warped, self.ignore_index), cur_np[labelled])
        n = self.num_classes
        return torch.from_numpy(joint_histogram(warped, cur_u8, n, n, mask.view(np.uint8)))
