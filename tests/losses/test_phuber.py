"""Partially Huberised CE against paper 003 eq. 2, and the pseudo-label filters."""

from __future__ import annotations

import math

import pytest
import torch

from frugalseg.losses import (
    PHuberCrossEntropy,
    confidence_filter,
    get_loss,
    iou_filter,
    phuber_cross_entropy,
)

IGNORE = 255


def _two_class_logits(probs: list[float]) -> torch.Tensor:
    """1×2×1×W logits whose softmax probability of class 0 is exactly ``probs``."""
    p = torch.tensor(probs, dtype=torch.float64)
    return torch.stack([p.log(), (1 - p).log()]).view(1, 2, 1, -1)


def test_branches_match_eq_2_with_an_ignored_pixel() -> None:
    tau = 3.0
    logits = _two_class_logits([0.9, 0.5, 0.2, 0.1, 0.7])
    target = torch.tensor([[[0, 0, 0, 0, IGNORE]]])
    expected = [
        -math.log(0.9),
        -math.log(0.5),
        -tau * 0.2 + math.log(tau) + 1,
        -tau * 0.1 + math.log(tau) + 1,
    ]
    loss = get_loss("phuber_ce", ignore_index=IGNORE)(logits, target)
    assert loss.item() == pytest.approx(sum(expected) / 4, rel=1e-12)


def test_continuous_at_one_over_tau() -> None:
    for tau in (1.5, 3.0, 10.0):
        threshold = 1 / tau
        values = [
            phuber_cross_entropy(
                _two_class_logits([p]), torch.zeros(1, 1, 1, dtype=torch.long), tau=tau
            ).item()
            for p in (threshold - 1e-9, threshold, threshold + 1e-9)
        ]
        assert values == pytest.approx([math.log(tau)] * 3, abs=1e-7)


def test_gradient_in_p_is_bounded_by_tau_where_ce_is_not() -> None:
    tau = 3.0
    p = torch.linspace(0.001, 0.999, 999, dtype=torch.float64, requires_grad=True)
    # softmax([log p, log(1 - p)]) is p itself, so the gradient below is dℓ/dp per pixel.
    logits = torch.stack([p.log(), (1 - p).log()]).view(1, 2, 1, -1)
    loss = PHuberCrossEntropy(tau=tau)(logits, torch.zeros(1, 1, 999, dtype=torch.long)) * 999
    (grad,) = torch.autograd.grad(loss, p)
    below = p.detach() <= 1 / tau
    assert torch.allclose(grad[below], torch.full_like(grad[below], -tau), rtol=1e-9)
    assert torch.allclose(grad[~below], -1 / p.detach()[~below], rtol=1e-9)
    assert grad.abs().max().item() <= tau + 1e-9
    assert 1 / p.min().item() > 100 * tau  # plain CE's gradient there: 1000


def test_tau_not_above_one_is_rejected() -> None:
    for tau in (1.0, 0.5, -2.0):
        with pytest.raises(ValueError, match="tau > 1"):
            PHuberCrossEntropy(tau=tau)
        with pytest.raises(ValueError, match="tau > 1"):
            get_loss("phuber_ce", tau=tau)
        with pytest.raises(ValueError, match="tau > 1"):
            phuber_cross_entropy(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long), tau=tau)


def test_all_ignored_is_zero_with_zero_gradient_and_low_res_logits_are_upsampled() -> None:
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = phuber_cross_entropy(logits, torch.full((2, 4, 4), IGNORE))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    small = _two_class_logits([0.9]).expand(1, 2, 2, 2)
    assert phuber_cross_entropy(small, torch.zeros(1, 4, 4, dtype=torch.long)).item() == pytest.approx(
        -math.log(0.9), rel=1e-12
    )


def test_confidence_filter_per_pixel_per_region_and_per_value() -> None:
    label = torch.tensor([[1, 1, 2], [3, 3, 2]])
    confidence = torch.tensor([[0.875, 0.375, 0.625], [0.5, 0.75, 0.5]])  # exact in binary
    assert confidence_filter(label, confidence, 0.625).tolist() == [[1, IGNORE, 2], [IGNORE, 3, IGNORE]]
    regions = torch.tensor([[0, 0, 1], [2, 2, 1]])  # means 0.625, 0.5625, 0.625
    assert confidence_filter(label, confidence, 0.625, regions=regions).tolist() == [
        [1, 1, IGNORE],
        [3, 3, IGNORE],
    ]
    assert confidence_filter(label, {1: 0.3, 2: 0.8}, 0.5).tolist() == [[IGNORE, IGNORE, 2], [3, 3, 2]]
    assert torch.equal(label, torch.tensor([[1, 1, 2], [3, 3, 2]]))  # the input is left alone
    with pytest.raises(ValueError, match="does not match label"):
        confidence_filter(label, torch.ones(3, 3), 0.5)


def test_iou_filter_ignores_the_box_of_a_bad_region_only() -> None:
    ground_truth = torch.zeros(6, 8, dtype=torch.long)
    ground_truth[1:3, 1:4] = 1  # object 1: 6 pixels
    ground_truth[3:5, 5:7] = 2  # object 2: 4 pixels
    pseudo = ground_truth.clone()
    pseudo[1, 1] = 0  # object 1: IoU 5/6
    pseudo[3:5, 5:7] = 0
    pseudo[4:6, 6:8] = 2  # object 2 shifted: IoU 1/7
    filtered = iou_filter(pseudo, ground_truth, 0.5, skip=(0,))
    expected = pseudo.clone()
    expected[3:6, 5:8] = IGNORE  # the box around the pseudo and true masks of object 2
    assert torch.equal(filtered, expected)
    by_mask = iou_filter(pseudo, ground_truth, 0.5, skip=(0,), fill="mask")
    expected = pseudo.clone()
    expected[4:6, 6:8] = IGNORE
    assert torch.equal(by_mask, expected)
    both = iou_filter(
        torch.stack([pseudo, ground_truth]), torch.stack([ground_truth, ground_truth]), 0.5, skip=(0,)
    )
    assert torch.equal(both[0], filtered) and torch.equal(both[1], ground_truth)
    assert torch.equal(iou_filter(pseudo, ground_truth, 0.9, skip=(0,))[1:3, 1:4], torch.full((2, 3), IGNORE))


def test_iou_filter_keeps_regions_it_cannot_judge_and_rejects_bad_arguments() -> None:
    pseudo = torch.tensor([[1, 1], [0, 0]])
    unknown = torch.tensor([[IGNORE, IGNORE], [0, 0]])
    assert torch.equal(iou_filter(pseudo, unknown, 0.5), pseudo)
    with pytest.raises(ValueError, match="fill"):
        iou_filter(pseudo, pseudo, 0.5, fill="polygon")
    with pytest.raises(ValueError, match="one shape"):
        iou_filter(pseudo, pseudo[:1], 0.5)
