"""Temporal consistency (TC), eq. (9) of HVSA: mIoU between a prediction and its warped predecessor."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from frugalseg.flow import backward_warp, forward_backward_mask
from frugalseg.metrics.segmentation import DatasetMeanIoU


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
    :meth:`per_class` the per-class TC.
    """

    ignore_index: int  # never None here, unlike a plain confusion matrix's

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        fb_alpha: float = 0.01,
        fb_beta: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, ignore_index=ignore_index, **kwargs)
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
        warped, inside = backward_warp(pred_prev[:, None].float(), flow_cur_to_prev, mode="nearest")
        warped = warped[:, 0].round().to(torch.int32)
        if reliable is None:
            reliable = forward_backward_mask(flow_cur_to_prev, flow_prev_to_cur, self.fb_alpha, self.fb_beta)
        reliable = inside & reliable & (pred_cur != self.ignore_index)
        # unreliable pixels become the ignore index of the target, which the confusion matrix skips
        super().update(pred_cur.to(torch.int32), warped.masked_fill_(~reliable, self.ignore_index))
