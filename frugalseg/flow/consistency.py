"""Forward-backward consistency check (Sundaram et al. 2010): where flow is trustworthy."""

from __future__ import annotations

import numpy as np
import torch

from frugalseg.flow.warp import backward_warp, backward_warp_np


def forward_backward_mask_np(
    flow_ab: np.ndarray, flow_ba: np.ndarray, alpha: float = 0.01, beta: float = 0.5
) -> np.ndarray:
    """True where following a→b and back b→a returns near the start pixel.

    ``|f_ab + f_ba(p + f_ab)|² < alpha·(|f_ab|² + |f_ba(p + f_ab)|²) + beta``, and the target lies
    inside the image. Pixels of image a that fail are occluded or badly matched.
    """
    back = backward_warp_np(flow_ba, flow_ab, nearest=False, fill=np.nan)
    round_trip = flow_ab + back
    bound = alpha * ((flow_ab**2).sum(-1) + (back**2).sum(-1)) + beta
    with np.errstate(invalid="ignore"):
        return (round_trip**2).sum(-1) < bound


def forward_backward_mask(
    flow_ab: torch.Tensor, flow_ba: torch.Tensor, alpha: float = 0.01, beta: float = 0.5
) -> torch.Tensor:
    """Batched torch version of :func:`forward_backward_mask_np` (flows B×2×H×W, result B×H×W bool)."""
    back, inside = backward_warp(flow_ba, flow_ab, mode="bilinear")
    round_trip = flow_ab + back
    bound = alpha * ((flow_ab**2).sum(1) + (back**2).sum(1)) + beta
    return inside & ((round_trip**2).sum(1) < bound)
