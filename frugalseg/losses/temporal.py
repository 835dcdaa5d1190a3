"""Temporal consistency loss (paper 000): a prediction should move with the video's optical flow.

Used to fine-tune a student on a video without its labels: the prediction of frame t−1, warped
to frame t by the flow, should equal the prediction of frame t wherever the flow can be trusted
(the forward-backward check passes). Paper 000 names the constraint but not its exact form; this
is the squared Euclidean distance between the two class-probability vectors (in [0, 2] per
pixel), averaged over the trusted pixels, as in the flow-consistency terms it builds on.
"""

from __future__ import annotations

import torch

from frugalseg.flow import backward_warp, forward_backward_mask


def temporal_consistency_loss(
    probs_t: torch.Tensor,
    probs_prev: torch.Tensor,
    flow_t_to_prev: torch.Tensor,
    flow_prev_to_t: torch.Tensor,
    *,
    fb_alpha: float = 0.01,
    fb_beta: float = 0.5,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over trusted pixels of ``Σ_c (probs_t − warp(probs_prev))²``.

    ``probs_t`` and ``probs_prev`` are B×C×H×W class probabilities of frames t and t−1;
    ``flow_t_to_prev`` (B×2×H×W, (dx, dy) from t to t−1, the batch's ``flow_to_prev``) brings
    frame t−1's prediction onto frame t by backward warping; ``flow_prev_to_t`` (the batch's
    ``flow_from_prev``) is used for the forward-backward check with ``fb_alpha``/``fb_beta``
    (see :func:`frugalseg.flow.forward_backward_mask`). Pixels that fail it or whose flow leaves
    the frame are masked, and with ``valid`` (B×H×W, the batch's crop without its padding) so are
    pixels in the padding or reading the padding of frame t−1. Gradients reach both predictions; 0
    when no pixel is trusted.
    """
    if probs_t.dim() != 4 or probs_t.shape != probs_prev.shape:
        raise ValueError(
            f"expected probs_t and probs_prev of one shape B×C×H×W, "
            f"got {tuple(probs_t.shape)} and {tuple(probs_prev.shape)}"
        )
    expected = (probs_t.shape[0], 2, *probs_t.shape[-2:])
    for name, flow in (("flow_t_to_prev", flow_t_to_prev), ("flow_prev_to_t", flow_prev_to_t)):
        if tuple(flow.shape) != expected:
            raise ValueError(
                f"{name} has shape {tuple(flow.shape)} but predictions of shape {tuple(probs_t.shape)} "
                f"need a flow of shape {expected} (B×2×H×W at the prediction's resolution)"
            )
    flow_t_to_prev = flow_t_to_prev.to(probs_t.dtype)
    flow_prev_to_t = flow_prev_to_t.to(probs_t.dtype)
    warped, _ = backward_warp(probs_prev, flow_t_to_prev)
    with torch.no_grad():
        trusted = forward_backward_mask(flow_t_to_prev, flow_prev_to_t, alpha=fb_alpha, beta=fb_beta)
        if valid is not None:
            read, _ = backward_warp(valid[:, None].to(flow_t_to_prev.dtype), flow_t_to_prev, mode="nearest")
            trusted &= valid.bool() & (read[:, 0] > 0.5)
    distance = (probs_t - warped).square().sum(1)
    return (distance * trusted).sum() / trusted.sum().clamp(min=1)
