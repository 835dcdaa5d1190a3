"""Pixel-wise cross-entropy, optionally with online hard example mining (OHEM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.errors import ConfigError


def logits_at_target_size(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``logits`` B×C×h×w checked against ``target`` B×H×W and upsampled bilinearly to H×W if smaller."""
    if logits.dim() != 4 or target.dim() != 3 or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"expected logits B×C×H×W and target B×H×W, got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return logits


class CrossEntropy(nn.Module):
    """Cross-entropy averaged over the labelled pixels of a batch.

    With ``ohem_threshold`` set it averages only over hard pixels, as mmseg's / TDNet's
    ``OhemCELoss2D``: valid pixels whose softmax probability of the true class is below the
    threshold, but at least the ``ohem_min_kept`` lowest-probability valid pixels (all valid pixels
    when there are fewer). ``class_weights`` weight each pixel by its true class and the mean is
    then the weighted mean, as in ``F.cross_entropy``.
    """

    class_weights: torch.Tensor | None

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        ohem_threshold: float | None = None,
        ohem_min_kept: int = 100_000,
        class_weights: list[float] | None = None,
    ) -> None:
        super().__init__()
        if ohem_threshold is not None and not 0.0 < ohem_threshold <= 1.0:
            raise ConfigError("ohem_threshold", f"must lie in (0, 1], got {ohem_threshold}")
        if ohem_min_kept < 0:
            raise ConfigError("ohem_min_kept", f"must be >= 0, got {ohem_min_kept}")
        self.ignore_index = ignore_index
        self.ohem_threshold = ohem_threshold
        self.ohem_min_kept = ohem_min_kept
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights)

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
        logits = logits_at_target_size(logits, target)
        if self.class_weights is not None and self.class_weights.numel() != logits.shape[1]:
            raise ValueError(f"{self.class_weights.numel()} class weights for {logits.shape[1]} classes")
        target = target.long()
        weight = None if self.class_weights is None else self.class_weights.to(logits.dtype)
        pixel_loss = F.cross_entropy(
            logits, target, weight=weight, ignore_index=self.ignore_index, reduction="none"
        )
        keep = target != self.ignore_index
        if self.ohem_threshold is not None:
            keep = self._hard_pixels(logits, target, keep, self.ohem_threshold)
        safe_target = target.masked_fill(~keep, 0)
        pixel_weight = keep.to(logits.dtype) if weight is None else weight[safe_target] * keep
        total = pixel_weight.sum()
        # No kept pixel gives 0 (pixel_loss is 0 there) and keeps the graph, without a 0/0.
        return (pixel_loss * keep).sum() / torch.where(total > 0, total, torch.ones_like(total))

    def _hard_pixels(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, threshold: float
    ) -> torch.Tensor:
        """Mask of the valid pixels OHEM keeps at ``threshold`` (see the class docstring)."""
        with torch.no_grad():
            prob = logits.softmax(dim=1).gather(1, target.masked_fill(~valid, 0).unsqueeze(1)).squeeze(1)
            keep = valid & (prob < threshold)
            min_kept = min(self.ohem_min_kept, int(valid.sum()))
            if int(keep.sum()) >= min_kept:
                return keep
            lowest = prob.masked_fill(~valid, float("inf")).flatten().topk(min_kept, largest=False).indices
            keep = torch.zeros_like(valid).flatten()
            keep[lowest] = True
            return keep.view_as(valid)
