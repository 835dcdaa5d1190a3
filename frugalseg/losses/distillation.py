"""Distillation losses of WeClick (paper 004 §3.3): vanilla KD and memory-flow distillation (MFD).

KD (eq. 4) pulls the compact student's class probabilities toward a frozen teacher's on every
frame. MFD (eq. 3) warps the student's predictions on unlabelled neighbouring frames to the
labelled target frame and pulls the two together, weighting each pixel by how well the warped
prediction agrees with the teacher's prediction of the target frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if logits.dim() != 4:
        raise ValueError(f"{name} must be B×C×H×W logits, got shape {tuple(logits.shape)}")


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of B×H×W ``values`` over ``mask`` (all pixels when None); 0 for an empty mask."""
    if mask is None:
        return values.mean()
    if mask.shape != values.shape:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not fit pixels of shape {tuple(values.shape)}"
        )
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-pixel ``KL(teacher ‖ student)`` at ``temperature``, averaged over pixels (or ``mask``).

    Both are B×C×H×W logits; the teacher's are detached and resized bilinearly to the student's
    size if they differ. The KL is over classes of the softened softmaxes and is scaled by
    ``temperature²`` so that gradient sizes do not depend on it (at 1, the default of paper 004
    and TDNet, this is plain KL). Paper 004 prints KL(ŷ^S ‖ ŷ^T); the teacher-first order used
    here is the usual KD objective (cross-entropy to the teacher's soft labels, up to a
    constant) and what TDNet's KD does. ``mask`` (B×H×W) restricts the mean, e.g. to pixels
    inside an augmented crop.
    """
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if student_logits.shape[:2] != teacher_logits.shape[:2]:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} "
            "differ in batch size or number of classes"
        )
    teacher_logits = teacher_logits.detach().to(student_logits.dtype)
    if teacher_logits.shape[-2:] != student_logits.shape[-2:]:
        teacher_logits = F.interpolate(
            teacher_logits, size=student_logits.shape[-2:], mode="bilinear", align_corners=False
        )
    log_teacher = (teacher_logits / temperature).log_softmax(dim=1)
    log_student = (student_logits / temperature).log_softmax(dim=1)
    teacher = log_teacher.exp()
    kl = (torch.xlogy(teacher, teacher) - teacher * log_student).sum(1)  # 0·log 0 = 0 (a −inf teacher logit)
    return _masked_mean(kl, mask) * temperature**2


def consistency_weight(warped_probs: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """MFD consistency matrix ``W = exp(−Σ_c |warped − teacher|)``, B×H×W in [e⁻², 1].

    Paper 004 prints ``W_f = exp(|ŷ_{f→k} − ŷ_k^T|)``, which would weight pixels *more* the
    more the warped prediction disagrees with the teacher, the opposite of its stated purpose
    ("decreases the weight of the unreliable region"); the sign is taken as a misprint and
    ``exp(−·)`` is used, with the absolute difference summed over classes (L1 distance of the
    two distributions). W is exactly 1 where the two agree.
    """
    return torch.exp(-(warped_probs - teacher_probs).abs().sum(1))


def _as_list(name: str, value: torch.Tensor | Sequence[torch.Tensor], dims: int) -> list[torch.Tensor]:
    """One neighbour's tensor, a sequence of them, or a tensor stacked on dim 1 → a list."""
    if isinstance(value, torch.Tensor):
        if value.dim() == dims:
            return [value]
        if value.dim() == dims + 1:
            return list(value.unbind(1))
        raise ValueError(f"{name} has shape {tuple(value.shape)}; expected {dims} or {dims + 1} dims")
    return list(value)


def mfd_loss(
    student_target_logits: torch.Tensor,
    warped_neighbour_probs: torch.Tensor | Sequence[torch.Tensor],
    teacher_target_logits: torch.Tensor,
    valid_masks: torch.Tensor | Sequence[torch.Tensor] | None = None,
    *,
    detach_warped: bool = False,
) -> torch.Tensor:
    """Memory-flow distillation (paper 004 eq. 3, summed over neighbours as in eq. 5).

    For each neighbour f: ``mean_i W_f(i) · Σ_c (ŷ_{f→k}(i) − ŷ_k^S(i))²`` over its valid pixels,
    with the target's probabilities from the softmax of its logits and ``W_f`` from
    :func:`consistency_weight` (note the sign fix there); the terms of the neighbours are summed.

    Args:
        student_target_logits: the student's logits of the target frame k, B×C×H×W.
        warped_neighbour_probs: the student's class probabilities of each neighbour, warped to frame
            k (the paper resamples the probability map: e.g. :func:`frugalseg.flow.backward_warp` of
            the softmax with the flow k → f): one B×C×H×W tensor, a sequence of them, or B×N×C×H×W.
        teacher_target_logits: the frozen teacher's logits of frame k (detached here).
        valid_masks: per neighbour B×H×W masks of pixels whose warp is trustworthy (inside the
            frame, forward-backward check passed), in the same layout as the neighbours
            (B×N×H×W or a sequence); one B×H×W mask is shared; None keeps every pixel.
        detach_warped: stop gradients through the warped predictions, so that only the target
            prediction is pulled (eq. 3 as printed lets both move).
    """
    _check_logits("student_target_logits", student_target_logits)
    _check_logits("teacher_target_logits", teacher_target_logits)
    warped_list = _as_list("warped_neighbour_probs", warped_neighbour_probs, 4)
    if not warped_list:
        raise ValueError("memory-flow distillation needs at least one warped neighbour")
    if valid_masks is None:
        masks: list[torch.Tensor | None] = [None] * len(warped_list)
    elif isinstance(valid_masks, torch.Tensor) and valid_masks.dim() == 3:
        masks = [valid_masks] * len(warped_list)
    else:
        masks = list(_as_list("valid_masks", valid_masks, 3))
        if len(masks) != len(warped_list):
            raise ValueError(f"{len(masks)} valid masks for {len(warped_list)} warped neighbours")
    shape = student_target_logits.shape
    if teacher_target_logits.shape != shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_target_logits.shape)} differ from student logits {tuple(shape)}"
        )
    student = student_target_logits.softmax(dim=1)
    teacher = teacher_target_logits.detach().softmax(dim=1).to(student.dtype)
    total = student.new_zeros(())
    for index, (warped, mask) in enumerate(zip(warped_list, masks, strict=True)):
        if warped.shape != shape:
            raise ValueError(
                f"warped neighbour {index} has shape {tuple(warped.shape)}, the target logits {tuple(shape)}"
            )
        warped = warped.to(student.dtype)
        if detach_warped:
            warped = warped.detach()
        weight = consistency_weight(warped.detach(), teacher)
        total = total + _masked_mean(weight * (warped - student).square().sum(1), mask)
    return total
