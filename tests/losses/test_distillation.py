"""KD and memory-flow distillation (paper 004) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from frugalseg.losses import consistency_weight, kd_loss, mfd_loss


def _logits(*pixels: list[float]) -> torch.Tensor:
    """1×C×1×N logits whose softmax at pixel n is exactly ``pixels[n]`` (probabilities)."""
    probs = torch.tensor(pixels, dtype=torch.float64)  # N×C
    return probs.log().T.reshape(1, probs.shape[1], 1, probs.shape[0]).clone()


def test_kd_is_teacher_first_kl_with_mask_and_temperature() -> None:
    student = _logits([0.5, 0.5], [0.9, 0.1]).requires_grad_(True)
    teacher = _logits([0.8, 0.2], [0.9, 0.1]).requires_grad_(True)
    first = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    assert kd_loss(student, teacher).item() == pytest.approx(first / 2, rel=1e-12)
    assert kd_loss(student, teacher, mask=torch.tensor([[[True, False]]])).item() == pytest.approx(
        first, rel=1e-12
    )
    assert kd_loss(student, teacher, mask=torch.tensor([[[False, True]]])).item() == pytest.approx(
        0.0, abs=1e-15
    )
    # At temperature 2, softmax(log p / 2) ∝ √p, and the KL is scaled by 4.
    ps = torch.tensor([0.5, 0.5]).sqrt()
    pt = torch.tensor([0.8, 0.2], dtype=torch.float64).sqrt()
    ps, pt = ps / ps.sum(), pt / pt.sum()
    soft = float((pt * (pt / ps).log()).sum())
    loss = kd_loss(student, teacher, temperature=2.0, mask=torch.tensor([[[True, False]]]))
    assert loss.item() == pytest.approx(4 * soft, rel=1e-12)
    loss.backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_kd_of_a_teacher_ruling_a_class_out_is_finite() -> None:
    """A −inf teacher logit (a class masked out) is probability 0: its term is 0, not 0·(−inf) = nan."""
    student = torch.zeros(1, 3, 1, 1, requires_grad=True)
    teacher = torch.tensor([0.0, -math.inf, 0.0]).view(1, 3, 1, 1)
    loss = kd_loss(student, teacher)
    assert loss.item() == pytest.approx(math.log(3 / 2), rel=1e-6)  # KL([½, 0, ½] ‖ [⅓, ⅓, ⅓])
    loss.backward()
    assert student.grad.isfinite().all()


def test_kd_resizes_the_teacher_and_rejects_other_classes() -> None:
    student = torch.zeros(1, 3, 4, 4)
    teacher = torch.zeros(1, 3, 2, 2)
    assert kd_loss(student, teacher).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="number of classes"):
        kd_loss(student, torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(student, student, temperature=0.0)


def test_consistency_weight_is_one_where_warped_and_teacher_agree() -> None:
    warped = torch.tensor([[[[0.7, 0.25]], [[0.3, 0.75]]]], dtype=torch.float64)
    teacher = torch.tensor([[[[0.7, 0.75]], [[0.3, 0.25]]]], dtype=torch.float64)
    weight = consistency_weight(warped, teacher)
    assert weight[0, 0, 0].item() == 1.0
    assert weight[0, 0, 1].item() == pytest.approx(math.exp(-1.0), rel=1e-14)  # |Δ| = 0.5 + 0.5


def test_mfd_hand_made_value_for_two_neighbours_with_masks() -> None:
    student = _logits([0.6, 0.4], [0.5, 0.5])
    teacher = _logits([0.6, 0.4], [0.9, 0.1])
    near = _logits([0.6, 0.4], [0.7, 0.3]).exp()  # warped probabilities
    far = _logits([0.2, 0.8], [0.5, 0.5]).exp()
    # near: pixel 0 agrees with the student (0); pixel 1: W = exp(-0.4), distance 0.04 + 0.04.
    near_term = (0.0 + math.exp(-0.4) * 0.08) / 2
    # far, pixel 0 only (masked): W = exp(-0.8), distance 0.16 + 0.16.
    far_term = math.exp(-0.8) * 0.32
    masks = torch.tensor([[[True, True]], [[True, False]]]).unsqueeze(0)  # B×N×H×W
    as_list = mfd_loss(student, [near, far], teacher, [masks[:, 0], masks[:, 1]])
    stacked = mfd_loss(student, torch.stack([near, far], dim=1), teacher, masks)
    assert as_list.item() == pytest.approx(near_term + far_term, rel=1e-12)
    assert stacked.item() == pytest.approx(as_list.item(), rel=1e-15)
    assert mfd_loss(student, near, teacher).item() == pytest.approx(near_term, rel=1e-12)


def test_mfd_gradients_weight_is_constant_and_detach_warped() -> None:
    student = _logits([0.6, 0.4], [0.5, 0.5]).requires_grad_(True)
    teacher = _logits([0.6, 0.4], [0.9, 0.1]).requires_grad_(True)
    warped = _logits([0.3, 0.7], [0.7, 0.3]).requires_grad_(True)
    mfd_loss(student, warped.softmax(1), teacher).backward()
    assert teacher.grad is None
    assert student.grad.abs().sum() > 0 and warped.grad.abs().sum() > 0
    # W is a constant: the same loss with W precomputed from detached values has equal gradients.
    w_probs, s_probs = warped.softmax(1), student.softmax(1)
    fixed = consistency_weight(w_probs.detach(), teacher.detach().softmax(1))
    student_grad, warped_grad = student.grad.clone(), warped.grad.clone()
    student.grad = warped.grad = None
    (fixed * (w_probs - s_probs).square().sum(1)).mean().backward()
    torch.testing.assert_close(student.grad, student_grad, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(warped.grad, warped_grad, rtol=1e-12, atol=1e-15)
    warped.grad = None
    mfd_loss(student, warped.softmax(1), teacher, detach_warped=True).backward()
    assert warped.grad is None


def test_mfd_rejects_mismatched_inputs() -> None:
    student = torch.zeros(1, 2, 3, 3)
    with pytest.raises(ValueError, match="warped neighbour 0 has shape"):
        mfd_loss(student, torch.zeros(1, 2, 4, 4), student)
    with pytest.raises(ValueError, match="2 valid masks for 1 warped"):
        mfd_loss(student, [student], student, [torch.ones(1, 3, 3), torch.ones(1, 3, 3)])
    with pytest.raises(ValueError, match="at least one"):
        mfd_loss(student, [], student)
