"""Losses for click labels: partial CE on the clicked pixels plus the Gated CRF regulariser.

Paper 004 (eq. 1–2) trains on clicks with ``L = pCE + λ·L_GCRF`` (λ = 0.1): the partial CE
learns the clicked pixels and the Gated CRF (Obukhov et al. 2019) spreads them to neighbours of
similar colour. For prediction ``y`` (softmax, B×C×h×w) the Gated CRF loss is

    L = Σ_i m_dst(i) Σ_{j ∈ Ω_i} m_src(j) · K_ij · (1 − Σ_c y_i^c y_j^c) / Σ_i m_dst(i)
    K_ij = exp(−|p_i − p_j|² / 2σ_xy² − |rgb_i − rgb_j|² / 2σ_rgb²)

with Ω_i the (2r+1)² − 1 pixels around i inside the image, ``p`` pixel coordinates at the
prediction's resolution, ``rgb`` the image averaged down to that resolution, and the gating masks
``m`` removing padding or other pixels that must neither give nor take. The colour distance is
taken on the frame as the student sees it, ImageNet-standardised, as the authors' code does: σ_rgb
= 0.1 is meant on that scale. Standardising divides each channel by its std (≈ 0.226), so colour
differences are about 4.4× larger than on [0, 1]; the same σ on [0, 1] colours would make the
kernel 4.4× *less* selective (on a real Cityscapes frame at radius 5: mean kernel 0.935 on [0, 1]
against 0.564 standardised). The reference applies the loss to the decoder's output at stride 4;
:class:`GatedCRFLoss` gets the
student's logits upsampled to the frame, so it averages the probabilities down by its ``stride``
(4) first, keeping σ_xy and r in the pixels they were chosen for, at 1/16 of the cost.

Normalisation. The reference divides the sum by the number of valid pixels (above), so a pixel's
term is its disagreement weighted by the kernel mass of its window — W_i ≈ 30 on average on
CamVid frames at stride 4, radius 5, σ_xy = 6, σ_rgb = 0.1 standardised (92 for the spatial factor
alone) — against a partial CE of a few units on a handful of clicked pixels. From a random
initialisation that term wins: the cheapest way to agree with every neighbour is one class
everywhere. :class:`GatedCRFLoss` therefore divides each pixel's sum by its valid
neighbourhood's kernel weight ``W_i = Σ_{j ∈ Ω_i} m_src(j) K_ij`` (``normalize="neighbourhood"``,
its default): the term becomes ``1 − Σ_j (K_ij / W_i) y_i·y_j`` ∈ [0, 1], the chance that i
disagrees with a neighbour drawn by affinity, on the scale of a CE term, whatever the radius, the
σs or the pixels lost to padding.
`gated_crf_loss` keeps the reference's sum as its default (``normalize="pixels"``).
Whether the term helps is measured, with its spread over seeds, in benchmarks/results/clicks_camvid.md.

The reference computes it by unfolding the whole window, which holds (2r+1)² = 121 copies of the
prediction. Here the sum runs offset by offset instead: K is symmetric, so each pair of offsets
±d is visited once, and the kernel-weighted sum of each pixel's neighbours that the forward pass
gathers is also the gradient, so memory stays a few times the prediction whatever the radius.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.errors import ConfigError
from frugalseg.losses.cross_entropy import CrossEntropy


class PartialCrossEntropy(CrossEntropy):
    """Partial CE (paper 004 eq. 1): cross-entropy over the labelled (clicked) pixels only.

    A click label is the ignore index everywhere but at the clicks, so this is plain CE with
    the mean over the clicked pixels; logits at a lower resolution are upsampled to the label
    first, so each click keeps its exact pixel.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX, class_weights: list[float] | None = None) -> None:
        super().__init__(ignore_index=ignore_index, class_weights=class_weights)


def _half_offsets(radius: int, height: int, width: int) -> list[tuple[int, int]]:
    """One offset (dy, dx) of every ± pair in the (2r+1)² window that fits an h×w map, centre excluded."""
    rows, cols = min(radius, height - 1), min(radius, width - 1)
    return [(dy, dx) for dy in range(rows + 1) for dx in range(-cols, cols + 1) if dy > 0 or dx > 0]


def _slices(dy: int, dx: int, height: int, width: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Index windows of the pixels i and of their neighbours j = i + (dy, dx), both inside."""
    rows_i, rows_j = slice(0, height - dy), slice(dy, height)
    if dx >= 0:
        cols_i, cols_j = slice(0, width - dx), slice(dx, width)
    else:
        cols_i, cols_j = slice(-dx, width), slice(0, width + dx)
    return (rows_i, cols_i), (rows_j, cols_j)


def _pair_weight(
    features: torch.Tensor,
    source: torch.Tensor | None,
    destination: torch.Tensor | None,
    dy: int,
    dx: int,
    sigma_xy: float,
) -> tuple[torch.Tensor, tuple[slice, slice], tuple[slice, slice]]:
    """``K_ij`` for one offset (B×h'×w'), times the gating of both ordered pairs i→j and j→i.

    Without masks the gating of both pairs is 2; that constant factor is left to the caller.
    """
    height, width = features.shape[-2:]
    (ri, ci), (rj, cj) = _slices(dy, dx, height, width)
    squared = (features[:, :, ri, ci] - features[:, :, rj, cj]).square_().sum(1)
    weight = squared.add_((dy * dy + dx * dx) / (sigma_xy * sigma_xy)).mul_(-0.5).exp_()
    if source is None:
        if destination is None:
            return weight, (ri, ci), (rj, cj)
        src, dst = torch.ones_like(destination), destination
    else:
        src = source
        dst = destination if destination is not None else torch.ones_like(source)
    gate = dst[:, ri, ci] * src[:, rj, cj] + dst[:, rj, cj] * src[:, ri, ci]
    return weight.mul_(gate), (ri, ci), (rj, cj)


def _neighbourhood_weight(
    features: torch.Tensor, source: torch.Tensor | None, sigma_xy: float, radius: int
) -> torch.Tensor:
    """``W_i = Σ_{j ∈ Ω_i} m_src(j) K_ij`` (B×h×w): the kernel weight of each pixel's valid neighbours."""
    batch, _, height, width = features.shape
    total = features.new_zeros(batch, height, width)
    for dy, dx in _half_offsets(radius, height, width):
        weight, (ri, ci), (rj, cj) = _pair_weight(features, None, None, dy, dx, sigma_xy)
        if source is None:
            total[:, ri, ci] += weight
            total[:, rj, cj] += weight
        else:
            total[:, ri, ci] += weight * source[:, rj, cj]
            total[:, rj, cj] += weight * source[:, ri, ci]
    return total


class _GatedCRF(torch.autograd.Function):
    """Offset-by-offset Gated CRF sum.

    With ``G_d(i)`` the kernel of pixel i and its neighbour i + d times their gating, the loss is
    ``Σ G − ½ Σ_i y_i · A(i)`` where ``A(i) = Σ_d G_d(i) y_{i+d}`` over all offsets, and
    ``−A`` is exactly the gradient. The forward pass builds ``A`` one offset pair at a time (a
    pair ±d shares its kernel) and keeps it, so backward is a single multiplication and the
    kernels are never stored.
    """

    @staticmethod
    def forward(
        ctx: Any,
        probs: torch.Tensor,
        features: torch.Tensor,
        source: torch.Tensor | None,
        destination: torch.Tensor | None,
        sigma_xy: float,
        radius: int,
    ) -> torch.Tensor:
        gathered = torch.zeros_like(probs)
        kernel_sum = probs.new_zeros((), dtype=torch.float64)
        for dy, dx in _half_offsets(radius, *probs.shape[-2:]):
            weight, (ri, ci), (rj, cj) = _pair_weight(features, source, destination, dy, dx, sigma_xy)
            kernel_sum += weight.sum(dtype=torch.float64)
            weight = weight.unsqueeze(1)
            gathered[:, :, ri, ci].addcmul_(weight, probs[:, :, rj, cj])
            gathered[:, :, rj, cj].addcmul_(weight, probs[:, :, ri, ci])
        if source is None and destination is None:
            kernel_sum *= 2
            gathered.mul_(2.0)
        ctx.save_for_backward(gathered)
        total = kernel_sum - 0.5 * (probs * gathered).sum(dtype=torch.float64)
        return total.to(probs.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (gathered,) = ctx.saved_tensors
        return gathered * -grad_output, None, None, None, None, None


def _to_size(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average a B×K×H×W tensor down to ``size`` (bilinear if it is smaller than ``size``)."""
    if tuple(tensor.shape[-2:]) == size:
        return tensor
    if tensor.shape[-2] >= size[0] and tensor.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(tensor, size)
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)


def _gate(mask: torch.Tensor | None, name: str, batch: int, size: tuple[int, int]) -> torch.Tensor | None:
    """A B×H×W mask at the prediction's size as 0/1: a pixel counts only if all it covers is valid."""
    if mask is None:
        return None
    if mask.dim() != 3 or mask.shape[0] != batch:
        raise ValueError(f"{name} must be B×H×W with B = {batch}, got {tuple(mask.shape)}")
    pooled = _to_size(mask.unsqueeze(1).float(), size).squeeze(1)
    return (pooled >= 1.0).float()


#: How the Gated CRF sum is normalised (`gated_crf_loss`).
NORMALIZATIONS = ("pixels", "neighbourhood")


def gated_crf_loss(
    probs: torch.Tensor,
    image: torch.Tensor,
    *,
    sigma_xy: float = 6.0,
    sigma_rgb: float = 0.1,
    radius: int = 5,
    valid_mask: torch.Tensor | None = None,
    source_mask: torch.Tensor | None = None,
    destination_mask: torch.Tensor | None = None,
    normalize: str = "pixels",
) -> torch.Tensor:
    """Gated CRF loss (module docstring) of softmax ``probs`` B×C×h×w on the colour ``image`` B×3×H×W.

    ``sigma_rgb`` is in the units of ``image`` (the ImageNet-standardised frame for the authors'
    σ_rgb = 0.1). The image may have any resolution ≥ the prediction's; it is averaged down to h×w,
    so the loss works at the prediction's stride and ``sigma_xy`` is in prediction pixels. Masks are
    B×H×W (bool or 0/1) at the image's or the prediction's resolution; a prediction pixel counts as
    valid only if every image pixel it covers is. ``source_mask`` gates the neighbours j (they give no
    affinity), ``destination_mask`` the centres i (they take none and leave the mean), ``valid_mask``
    both. The sum is divided by the number of destination pixels (B·h·w without a destination mask);
    0 when there are none.

    ``normalize`` picks the per-pixel term: ``"pixels"`` (the formula above, the reference code's)
    sums ``K_ij (1 − y_i·y_j)`` over i's valid neighbours, so it scales with the kernel mass of the
    window (some 30–90 at radius 5, σ_xy = 6); ``"neighbourhood"`` divides that sum by i's valid
    neighbourhood weight ``W_i = Σ_{j ∈ Ω_i} m_src(j) K_ij`` (pixels with W_i = 0 add 0), so each
    destination pixel contributes ``1 − Σ_j (K_ij / W_i) y_i·y_j`` ∈ [0, 1]: the probability that i
    disagrees with a neighbour drawn by its affinities, on the same scale as a CE term.
    Gradients flow to ``probs`` only: the kernels are a function of the image. Half-precision
    inputs are computed in float32 and the loss given back in their dtype: float16's sums and pixel
    counts overflow past 65,504 (the loss of one Cityscapes frame was inf).
    """
    dtype = probs.dtype
    probs = probs.to(torch.promote_types(dtype, torch.float32))
    if probs.dim() != 4 or image.dim() != 4 or image.shape[:2] != (probs.shape[0], 3):
        raise ValueError(
            f"expected probs B×C×h×w and image B×3×H×W, got {tuple(probs.shape)} and {tuple(image.shape)}"
        )
    if radius < 1 or sigma_xy <= 0 or sigma_rgb <= 0:
        raise ValueError(f"need radius >= 1 and positive sigmas, got {radius}, {sigma_xy}, {sigma_rgb}")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalize {normalize!r}; one of {', '.join(NORMALIZATIONS)}")
    batch, size = probs.shape[0], (probs.shape[-2], probs.shape[-1])
    features = (_to_size(image.detach().to(probs.dtype), size) / sigma_rgb).contiguous()
    valid = _gate(valid_mask, "valid_mask", batch, size)
    source = _gate(source_mask, "source_mask", batch, size)
    destination = _gate(destination_mask, "destination_mask", batch, size)
    if valid is not None:
        source = valid if source is None else source * valid
        destination = valid if destination is None else destination * valid
    if source is not None:
        source = source.to(probs.dtype)
    if destination is not None:
        destination = destination.to(probs.dtype)
    count = probs.new_tensor(float(batch * size[0] * size[1])) if destination is None else destination.sum()
    if normalize == "neighbourhood":
        weight = _neighbourhood_weight(features, source, float(sigma_xy), int(radius))
        scale = torch.where(weight > 0, 1.0 / weight.clamp(min=torch.finfo(weight.dtype).tiny), 0.0)
        destination = scale if destination is None else destination * scale
    total: torch.Tensor = _GatedCRF.apply(probs, features, source, destination, float(sigma_xy), int(radius))
    return (total / count.clamp(min=1.0)).to(dtype)


class GatedCRFLoss(nn.Module):
    """``weight`` × Gated CRF loss of a student's logits on its target frame, for ``clicks`` labels.

    ``image`` is the target frame as the student sees it (B×3×H×W, ImageNet-standardised, what
    the datamodule delivers), the colour space in which the authors apply σ_rgb; ``valid`` (B×H×W
    bool, e.g. pixels inside the augmented crop) gates padding out as both source and destination.
    ``target`` is not used: the partial CE takes the clicks.

    The students return logits upsampled to the frame's size, while paper 004 applies the loss to
    the decoder's output at stride 4, where σ_xy = 6 and radius 5 are meant. So the softmax
    probabilities are averaged down by ``stride`` (h×w → ⌈h/s⌉×⌈w/s⌉, ``adaptive_avg_pool2d``)
    and :func:`gated_crf_loss` runs at that size: the image is averaged the same way, and a
    low-resolution pixel is valid only if every pixel it covers is.

    Args:
        weight: a factor on the loss. Leave it at 1 when the routing weights the kind's losses
            (paper 004's λ = 0.1 as ``clicks: {partial_ce: 1.0, gated_crf: 0.1}``), so that λ is
            not applied twice.
        sigma_xy: position bandwidth in pixels of the pooled prediction.
        sigma_rgb: colour bandwidth on the ImageNet-standardised frame.
        radius: the window is (2·radius + 1)² pooled pixels.
        stride: the factor the probabilities are averaged down by before the kernel (4, the
            decoder stride of paper 004; 1 keeps the logits' own resolution).
        normalize: ``"neighbourhood"`` (default) or ``"pixels"`` (`gated_crf_loss`). The default
            keeps the term on a CE term's scale (above), so λ = 0.1 cannot outweigh the clicks. It
            is not shown to help: on CamVid (benchmarks/results/clicks_camvid.md, three seeds of
            160 steps from random initialisation) partial CE + 0.1 × this term gave 17.66 ± 0.11
            mIoU against 18.17 ± 0.36 for partial CE alone.
        ramp_steps: with n > 0 the loss is multiplied by min(1, k / n) at training step k
            (k = 0, 1, …), a linear warm-up; 0 applies it in full from the first step. k is the
            ``step`` a caller gives (`RoutedLoss` gives the trainer's, the same to the main and the
            auxiliary heads), else the count of training calls (in training mode with gradients
            enabled), kept in a buffer that checkpoints keep.
        ignore_index: accepted for the loss registry; unused.
    """

    calls: torch.Tensor  # the warm-up's training steps done: a buffer, registered only with ramp_steps

    def __init__(
        self,
        weight: float = 1.0,
        sigma_xy: float = 6.0,
        sigma_rgb: float = 0.1,
        radius: int = 5,
        stride: int = 4,
        normalize: str = "neighbourhood",
        ramp_steps: int = 0,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        if radius < 1 or sigma_xy <= 0 or sigma_rgb <= 0:
            raise ConfigError(
                "loss_args.gated_crf",
                f"need radius >= 1 and positive sigmas, got {radius}, {sigma_xy}, {sigma_rgb}",
            )
        if int(stride) != stride or stride < 1:
            raise ConfigError(
                "loss_args.gated_crf", f"the Gated CRF stride must be a positive integer, got {stride}"
            )
        if normalize not in NORMALIZATIONS:
            raise ConfigError(
                "loss_args.gated_crf", f"unknown normalize {normalize!r}; one of {', '.join(NORMALIZATIONS)}"
            )
        if int(ramp_steps) != ramp_steps or ramp_steps < 0:
            raise ConfigError("loss_args.gated_crf", f"ramp_steps must be an integer ≥ 0, got {ramp_steps}")
        self.normalize = normalize
        self.ramp_steps = int(ramp_steps)
        if self.ramp_steps:  # only then: a state dict without the ramp stays as it was
            self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.stride = int(stride)
        self.weight = float(weight)
        self.sigma_xy = float(sigma_xy)
        self.sigma_rgb = float(sigma_rgb)
        self.radius = int(radius)

    def forward(
        self,
        logits: torch.Tensor,
        target: torch.Tensor | None = None,
        *,
        image: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        step: int | None = None,
    ) -> torch.Tensor:
        """Scalar ``weight · ramp · L_GCRF`` of ``logits`` B×C×h×w pooled by ``stride``, on ``image``.

        ``step`` is the training step of the warm-up (``ramp_steps``); None counts this call.
        """
        if image is None:
            raise ValueError("the Gated CRF loss needs the target frame: pass image= (B×3×H×W, standardised)")
        if image.dim() != 4 or image.shape[0] != logits.shape[0]:
            raise ValueError(
                f"image of shape {tuple(image.shape)} does not hold the {logits.shape[0]} samples of "
                f"logits {tuple(logits.shape)} (expected B×3×H×W)"
            )
        probs = logits.softmax(dim=1)
        height, width = probs.shape[-2:]
        probs = _to_size(probs, (-(-height // self.stride), -(-width // self.stride)))
        loss = gated_crf_loss(
            probs,
            image.float(),
            sigma_xy=self.sigma_xy,
            sigma_rgb=self.sigma_rgb,
            radius=self.radius,
            valid_mask=valid,
            normalize=self.normalize,
        )
        return self.weight * self.ramp(step) * loss

    def ramp(self, step: int | None = None) -> float:
        """The warm-up factor min(1, k / ramp_steps) at step k = ``step``, else at the training calls so far.

        A training call (training mode, gradients enabled) leaves k + 1 steps done in ``calls``.
        """
        if not self.ramp_steps:
            return 1.0
        if step is None:
            step = int(self.calls)
        if self.training and torch.is_grad_enabled():
            self.calls.fill_(step + 1)
        return min(1.0, step / self.ramp_steps)
