"""Temporal consistency loss with a known integer translation between two frames."""

from __future__ import annotations

import pytest
import torch

from frugalseg.losses import temporal_consistency_loss

DX, DY = 2, 1  # content moves right by 2 and down by 1 from frame t−1 to frame t


def _translation_flows(batch: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flows t→t−1 and t−1→t of the known translation, B×2×H×W."""
    to_prev = torch.empty(batch, 2, height, width, dtype=torch.float64)
    to_prev[:, 0], to_prev[:, 1] = -DX, -DY
    return to_prev, -to_prev


def _moving_pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random probabilities of frame t−1 and the same map moved by (DX, DY) as frame t."""
    generator = torch.Generator().manual_seed(seed)
    prev = torch.randn(2, 4, 10, 12, generator=generator, dtype=torch.float64).softmax(1)
    current = torch.randn(2, 4, 10, 12, generator=generator, dtype=torch.float64).softmax(1)  # new content
    current[:, :, DY:, DX:] = prev[:, :, :-DY, :-DX]
    return current, prev


def test_zero_for_a_prediction_that_moves_with_the_flow() -> None:
    current, prev = _moving_pair()
    flow_to_prev, flow_from_prev = _translation_flows(2, 10, 12)
    loss = temporal_consistency_loss(current, prev, flow_to_prev, flow_from_prev)
    assert loss.item() == pytest.approx(0.0, abs=1e-14)


def test_positive_and_equal_to_the_hand_value_otherwise() -> None:
    current, prev = _moving_pair()
    flow_to_prev, flow_from_prev = _translation_flows(2, 10, 12)
    moved_wrongly = current.roll(shifts=1, dims=3)
    loss = temporal_consistency_loss(moved_wrongly, prev, flow_to_prev, flow_from_prev)
    # Trusted pixels are those whose source (x − 2, y − 1) lies in frame t−1.
    difference = moved_wrongly[:, :, DY:, DX:] - prev[:, :, :-DY, :-DX]
    expected = difference.square().sum(1).mean()
    assert loss.item() > 0.01
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_pixels_failing_the_forward_backward_check_are_masked() -> None:
    current, prev = _moving_pair()
    flow_to_prev, flow_from_prev = _translation_flows(2, 10, 12)
    # Frame t−1's block [0:4, 0:5] maps to frame t's [1:5, 2:7]; break the backward flow there
    # and the prediction of frame t there: the loss must not see either.
    flow_from_prev[:, :, 0:4, 0:5] = 7.0
    current[:, :, 1:5, 2:7] = current[:, :, 1:5, 2:7].flip(1)
    loss = temporal_consistency_loss(current, prev, flow_to_prev, flow_from_prev)
    assert loss.item() == pytest.approx(0.0, abs=1e-14)
    strict = temporal_consistency_loss(current, prev, flow_to_prev, flow_to_prev.neg(), fb_beta=0.5)
    assert strict.item() > 0.01


def test_padding_and_what_reads_it_are_masked_with_valid() -> None:
    """A crop's padding (``valid`` False) holds no content: its pixels and those reading it do not count."""
    current, prev = _moving_pair()
    flow_to_prev, flow_from_prev = _translation_flows(2, 10, 12)
    valid = torch.ones(2, 10, 12, dtype=torch.bool)
    valid[:, :, 9:] = False  # the last 3 columns of both frames are padding
    current[:, :, :, 9:] = current[:, :, :, 9:].flip(1)  # the padding disagrees
    prev[:, :, :, 9:] = prev[:, :, :, 9:].flip(1)  # and frame t's columns 11 read frame t-1's column 9
    assert temporal_consistency_loss(current, prev, flow_to_prev, flow_from_prev).item() > 0.01
    loss = temporal_consistency_loss(current, prev, flow_to_prev, flow_from_prev, valid=valid)
    assert loss.item() == pytest.approx(0.0, abs=1e-14)
    wrong = current.roll(shifts=1, dims=3)
    expected = (wrong[:, :, DY:, DX:9] - prev[:, :, :-DY, : 9 - DX]).square().sum(1).mean()
    got = temporal_consistency_loss(wrong, prev, flow_to_prev, flow_from_prev, valid=valid)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)


def test_a_flow_within_half_a_pixel_of_the_edge_costs_a_constant_prediction_nothing() -> None:
    """The warp reads the edge there: a prediction of one class everywhere is consistent (it cost 0.027)."""
    probs = torch.zeros(1, 2, 4, 6)
    probs[:, 0] = 1
    flow = torch.zeros(1, 2, 4, 6)
    flow[:, 0] = -0.4
    assert temporal_consistency_loss(probs, probs, flow, -flow).item() == 0.0


def test_gradient_reaches_both_predictions_but_not_untrusted_pixels() -> None:
    generator = torch.Generator().manual_seed(1)
    logits_t = torch.randn(1, 3, 6, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    logits_prev = torch.randn(1, 3, 6, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    flow_to_prev, flow_from_prev = _translation_flows(1, 6, 7)
    probs_t, probs_prev = logits_t.softmax(1), logits_prev.softmax(1)
    loss = temporal_consistency_loss(probs_t, probs_prev, flow_to_prev, flow_from_prev)
    loss.backward()
    assert logits_t.grad.abs().sum() > 0 and logits_prev.grad.abs().sum() > 0
    # Frame t's untrusted columns (x < 2) get no gradient.
    assert torch.equal(logits_t.grad[..., :DX], torch.zeros_like(logits_t.grad[..., :DX]))


def test_flow_of_the_wrong_size_names_the_shapes() -> None:
    current, prev = _moving_pair()
    flow_to_prev, flow_from_prev = _translation_flows(2, 20, 24)
    with pytest.raises(ValueError, match=r"flow_t_to_prev has shape \(2, 2, 20, 24\).*\(2, 4, 10, 12\)"):
        temporal_consistency_loss(current, prev, flow_to_prev, flow_from_prev)
    good_to_prev, _ = _translation_flows(2, 10, 12)
    with pytest.raises(ValueError, match=r"flow_prev_to_t has shape \(2, 2, 20, 24\)"):
        temporal_consistency_loss(current, prev, good_to_prev, flow_from_prev)
    with pytest.raises(ValueError, match="one shape"):
        temporal_consistency_loss(current, prev[:, :2], good_to_prev, good_to_prev)
