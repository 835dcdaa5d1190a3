"""J&F, the DAVIS measure of video object segmentation (Perazzi et al. 2016; DAVIS 2017 protocol).

A frame's J (region similarity, the masks' IoU) and F (contour accuracy, the boundaries' F-measure)
of one object are those of `frugalseg.metrics.mask_scores`, void pixels left out. As the DAVIS 2017
evaluation does, the first frame (the given masks) and the last frame of a sequence are not scored,
each object's J and F are averaged over its frames, and the reported J, F and J&F are means over all
objects of all sequences (not over sequences). The objects of a sequence are ids 1…n, n the largest
id on its first annotated frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from frugalseg.metrics.mask_scores import BOUNDARY_TOLERANCE, VOID, contour_accuracy, region_similarity


def _as_ids(x: Tensor, name: str) -> np.ndarray:
    if x.is_floating_point():
        if x.dim() != 4:
            raise ValueError(f"{name}: expected T×H×W object ids or T×K×H×W scores, got {tuple(x.shape)}")
        x = x.argmax(1)
    if x.dim() != 3:
        raise ValueError(f"{name}: expected T×H×W object ids, got {tuple(x.shape)}")
    return x.detach().cpu().numpy()


def sequence_jf(
    preds: Tensor,
    target: Tensor,
    num_objects: int | None = None,
    tolerance: float = BOUNDARY_TOLERANCE,
    skip_first_last: bool = True,
) -> tuple[Tensor, Tensor]:
    """Per-object J and F (float64 tensors of length n) of one sequence, each averaged over frames.

    ``preds`` T×H×W object ids (or T×K×H×W scores, arg-maxed), ``target`` T×H×W object ids with
    255 = void. ``num_objects`` defaults to the largest id on the first target frame.
    """
    pred_ids, gt_ids = _as_ids(preds, "preds"), _as_ids(target, "target")
    if pred_ids.shape != gt_ids.shape:
        raise ValueError(f"preds {pred_ids.shape} and target {gt_ids.shape} must have the same T×H×W")
    if num_objects is None:
        first = gt_ids[0]
        num_objects = int(first[first != VOID].max(initial=0))
    frames = range(1, len(gt_ids) - 1) if skip_first_last else range(len(gt_ids))
    if len(frames) == 0:
        raise ValueError(
            f"a sequence of {len(gt_ids)} frames has no frame to score "
            f"({'first and last are skipped, as in DAVIS' if skip_first_last else 'empty'})"
        )
    j = np.zeros((num_objects, len(frames)))
    f = np.zeros((num_objects, len(frames)))
    for col, t in enumerate(frames):
        void = gt_ids[t] == VOID
        for obj in range(1, num_objects + 1):
            pred_mask, gt_mask = pred_ids[t] == obj, gt_ids[t] == obj
            j[obj - 1, col] = region_similarity(pred_mask, gt_mask, void)
            f[obj - 1, col] = contour_accuracy(pred_mask, gt_mask, void, tolerance)
    return torch.from_numpy(j.mean(1)), torch.from_numpy(f.mean(1))


class JF(Metric):
    """DAVIS J, F and J&F accumulated over sequences (summed per-object means; exact under DDP).

    ``update(preds, target, num_objects=None)`` takes one whole sequence (see :func:`sequence_jf`).
    ``compute()`` returns ``{"J": …, "F": …, "JF": …}``, means over every object seen;
    ``last_sequence`` holds the per-object (J, F) of the latest sequence (this process only).
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True
    j_sum: Tensor
    f_sum: Tensor
    objects: Tensor

    def __init__(
        self, tolerance: float = BOUNDARY_TOLERANCE, skip_first_last: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if tolerance <= 0:
            raise ValueError(
                f"tolerance must be > 0 (fraction of the diagonal, or pixels if ≥ 1), got {tolerance}"
            )
        self.tolerance = tolerance
        self.skip_first_last = skip_first_last
        self.add_state("j_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("f_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("objects", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.last_sequence: tuple[Tensor, Tensor] | None = None

    def update(self, preds: Tensor, target: Tensor, num_objects: int | None = None) -> None:
        """Add the per-object J and F of one sequence."""
        j, f = sequence_jf(preds, target, num_objects, self.tolerance, self.skip_first_last)
        self.last_sequence = (j, f)
        self.j_sum += j.sum().to(self.j_sum.device)
        self.f_sum += f.sum().to(self.f_sum.device)
        self.objects += len(j)

    def compute(self) -> dict[str, Tensor]:
        """Mean J, F and their average J&F over all objects (NaN before any object was seen)."""
        count = self.objects.double()
        j = torch.where(count > 0, self.j_sum / count.clamp(min=1), torch.full_like(count, float("nan")))
        f = torch.where(count > 0, self.f_sum / count.clamp(min=1), torch.full_like(count, float("nan")))
        return {"J": j.float(), "F": f.float(), "JF": ((j + f) / 2).float()}
