"""Partially Huberised cross-entropy and pseudo-label filtering, for training on noisy labels.

Paper 003 (§3.2) trains on propagated pseudo-labels with two defences against their errors: a
loss whose per-pixel influence is bounded (Menon et al.'s partially Huberised CE, τ = 3) and
filtering, i.e. replacing a bad region of a pseudo-label with the ignore index so that no loss is
applied there. The filters here work on label maps and are usable offline (no Lightning).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import torch
from torch import nn

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.errors import ConfigError
from frugalseg.losses.cross_entropy import logits_at_target_size


def _check_tau(tau: float) -> None:
    if not tau > 1:
        raise ConfigError("tau", f"partially Huberised CE needs tau > 1 (1/tau is a probability), got {tau}")


def phuber_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, *, tau: float = 3.0, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Mean partially Huberised CE of ``logits`` B×C×H×W against ``target`` B×H×W (paper 003 eq. 2).

    With ``p`` the softmax probability of the labelled class, a pixel costs ``−τ·p + log τ + 1``
    when ``p ≤ 1/τ`` and ``−log p`` otherwise: the two branches meet at ``log τ`` and the
    gradient in ``p`` never exceeds ``τ``, so a confidently wrong label cannot dominate. Pixels
    labelled ``ignore_index`` are left out; the mean is over the others (0 when there are none).
    Logits at a lower resolution than the target are upsampled bilinearly first.
    """
    _check_tau(tau)
    logits = logits_at_target_size(logits, target)
    target = target.long()
    valid = target != ignore_index
    safe_target = target.masked_fill(~valid, 0)
    log_p = logits.log_softmax(dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
    p = log_p.exp()
    linear = -tau * p + (math.log(tau) + 1.0)
    pixel_loss = torch.where(p <= 1.0 / tau, linear, -log_p)
    count = valid.sum()
    return (pixel_loss * valid).sum() / count.clamp(min=1)


class PHuberCrossEntropy(nn.Module):
    """Partially Huberised CE (see :func:`phuber_cross_entropy`), the default loss for ``pseudo`` labels.

    Args:
        tau: τ > 1; the linear branch applies below ``p = 1/τ`` (paper 003 uses 3).
        ignore_index: label value that gets no loss.
    """

    def __init__(self, tau: float = 3.0, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        _check_tau(tau)
        self.tau = float(tau)
        self.ignore_index = ignore_index

    def forward(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        *,
        image: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scalar loss of ``logits`` B×C×H×W against ``target`` B×H×W.

        ``image`` and ``valid`` are not used (padding is already labelled ignore).
        """
        return phuber_cross_entropy(logits, target, tau=self.tau, ignore_index=self.ignore_index)


def confidence_filter(
    label: torch.Tensor,
    confidence: torch.Tensor | Mapping[int, float],
    threshold: float,
    *,
    regions: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """A copy of the pseudo-label ``label`` with its low-confidence parts set to ``ignore_index``.

    ``confidence`` is either a map of the label's shape (e.g. the propagation engine's per-pixel
    score) or a mapping label value → score (e.g. one score per tracked object). With a map and
    no ``regions``, every pixel whose confidence is below ``threshold`` is ignored; with
    ``regions`` (an integer map of the label's shape, e.g. object or superpixel ids), a region is
    ignored as a whole when its mean confidence is below ``threshold`` (ids are shared across a
    B×H×W batch, so number the regions of different images apart). With a mapping, every
    pixel of a label value whose score is below ``threshold`` is ignored (values missing from
    the mapping are kept).
    """
    out = label.clone()
    if isinstance(confidence, Mapping):
        if regions is not None:
            raise ValueError("regions only apply to a confidence map, not to per-value scores")
        for value, score in confidence.items():
            if score < threshold:
                out[label == value] = ignore_index
        return out
    if confidence.shape != label.shape:
        raise ValueError(
            f"confidence map of shape {tuple(confidence.shape)} does not match label {tuple(label.shape)}"
        )
    if regions is None:
        out[confidence < threshold] = ignore_index
        return out
    if regions.shape != label.shape:
        raise ValueError(f"regions of shape {tuple(regions.shape)} do not match label {tuple(label.shape)}")
    ids, inverse = torch.unique(regions.flatten(), return_inverse=True)
    conf = confidence.flatten().double()
    sums = torch.zeros(len(ids), dtype=torch.float64, device=conf.device).index_add_(0, inverse, conf)
    counts = torch.bincount(inverse, minlength=len(ids))
    low = (sums / counts) < threshold
    out[low[inverse].view_as(label)] = ignore_index
    return out


def iou_filter(
    pseudo: torch.Tensor,
    ground_truth: torch.Tensor,
    threshold: float,
    *,
    fill: str = "box",
    skip: Collection[int] = (),
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Simulated manual filtering (paper 003 §3.2): ignore the pseudo-label regions that are bad.

    Each label value ``v`` present in a ``pseudo`` H×W map (or in each map of a B×H×W batch)
    is a region; its IoU with the ``ground_truth`` mask of ``v`` is computed over the pixels
    where the ground truth is not ``ignore_index`` (a region lying wholly there cannot be judged
    and is kept). Regions with IoU below ``threshold`` are
    replaced by ``ignore_index``: with ``fill="box"`` (the paper) the bounding box of the
    pseudo and ground-truth masks of ``v`` together, with ``fill="mask"`` the pseudo mask only.
    Values in ``skip`` (e.g. a VOS background 0) are never filtered.
    """
    if fill not in ("box", "mask"):
        raise ValueError(f"fill must be 'box' or 'mask', got {fill!r}")
    if pseudo.shape != ground_truth.shape or pseudo.dim() not in (2, 3):
        raise ValueError(
            f"expected pseudo and ground truth of one shape H×W or B×H×W, "
            f"got {tuple(pseudo.shape)} and {tuple(ground_truth.shape)}"
        )
    if pseudo.dim() == 3:
        return torch.stack(
            [
                iou_filter(p, g, threshold, fill=fill, skip=skip, ignore_index=ignore_index)
                for p, g in zip(pseudo, ground_truth, strict=True)
            ]
        )
    out = pseudo.clone()
    known = ground_truth != ignore_index
    for value in torch.unique(pseudo).tolist():
        if value == ignore_index or value in skip:
            continue
        mine = pseudo == value
        truth = ground_truth == value
        union = int(((mine | truth) & known).sum())
        if union == 0 or int(((mine & truth) & known).sum()) >= threshold * union:
            continue
        if fill == "mask":
            out[mine] = ignore_index
            continue
        rows = torch.nonzero((mine | truth).any(dim=1)).flatten()
        cols = torch.nonzero((mine | truth).any(dim=0)).flatten()
        out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = ignore_index
    return out
