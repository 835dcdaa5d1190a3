"""CrossEntropy / OHEM against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from frugalseg.errors import ConfigError
from frugalseg.losses import CrossEntropy, get_loss


def _two_class_logits(probs: list[float]) -> torch.Tensor:
    """1×2×1×W logits whose softmax probability of class 0 is exactly ``probs``."""
    p = torch.tensor(probs, dtype=torch.float64)
    return torch.stack([p.log(), (1 - p).log()]).view(1, 2, 1, -1).requires_grad_(True)


def test_plain_ce_matches_hand_computation_with_ignored_pixel() -> None:
    logits = torch.tensor(
        [[[[1.0, 0.0], [2.0, 0.5]], [[0.0, 1.0], [1.0, 0.5]], [[-1.0, 3.0], [0.0, 9.0]]]], dtype=torch.float64
    )
    target = torch.tensor([[[0, 2], [1, 255]]])

    def nll(values: list[float], true: int) -> float:
        return -(values[true] - math.log(sum(math.exp(v) for v in values)))

    expected = (nll([1.0, 0.0, -1.0], 0) + nll([0.0, 1.0, 3.0], 2) + nll([2.0, 1.0, 0.0], 1)) / 3
    assert CrossEntropy()(logits, target).item() == pytest.approx(expected, rel=1e-12)


def test_all_ignored_gives_zero_and_backward_works() -> None:
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    target = torch.full((2, 3, 3), 255)
    for loss_fn in (CrossEntropy(), CrossEntropy(ohem_threshold=0.7), CrossEntropy(class_weights=[1.0] * 4)):
        loss = loss_fn(logits, target)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize(
    ("min_kept", "kept_probabilities", "touched"),
    [
        (1, [0.6, 0.3], [False, True, True, False, False]),  # the pixels below the threshold 0.7
        (3, [0.6, 0.3, 0.8], [False, True, True, True, False]),  # and the lowest above it, up to 3
    ],
)
def test_ohem_keeps_pixels_below_the_threshold_and_at_least_min_kept(
    min_kept: int, kept_probabilities: list[float], touched: list[bool]
) -> None:
    logits = _two_class_logits([0.9, 0.6, 0.3, 0.8, 0.1])
    target = torch.tensor([[[0, 0, 0, 0, 255]]])
    loss = CrossEntropy(ohem_threshold=0.7, ohem_min_kept=min_kept)(logits, target)
    expected = -sum(math.log(p) for p in kept_probabilities) / len(kept_probabilities)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    assert (logits.grad.abs().sum(dim=1).flatten() > 0).tolist() == touched


def test_ohem_min_kept_above_valid_count_keeps_all_valid() -> None:
    logits = _two_class_logits([0.9, 0.6, 0.3, 0.8, 0.1])
    target = torch.tensor([[[0, 0, 0, 0, 255]]])
    loss = CrossEntropy(ohem_threshold=0.5, ohem_min_kept=100)(logits, target)
    expected = -(math.log(0.9) + math.log(0.6) + math.log(0.3) + math.log(0.8)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_smaller_logits_are_upsampled_bilinearly() -> None:
    # Class-0 logits [0, 4] upsample (align_corners=False) to [0, 1, 3, 4] across a row of 4.
    logits = torch.tensor([[[[0.0, 4.0]], [[0.0, 0.0]]]], dtype=torch.float64)
    target = torch.zeros(1, 2, 4, dtype=torch.long)
    expected = sum(math.log1p(math.exp(-z)) for z in (0.0, 1.0, 3.0, 4.0)) / 4
    assert CrossEntropy()(logits, target).item() == pytest.approx(expected, rel=1e-12)


def test_class_weights_give_weighted_mean() -> None:
    logits = _two_class_logits([0.5, 0.25])
    target = torch.tensor([[[0, 1]]])
    loss = CrossEntropy(class_weights=[1.0, 3.0])(logits, target)
    assert loss.item() == pytest.approx((math.log(2) + 3 * -math.log(0.75)) / 4, rel=1e-12)
    with pytest.raises(ValueError, match="3 class weights for 2 classes"):
        CrossEntropy(class_weights=[1.0, 1.0, 1.0])(logits, target)


def test_get_loss_reads_the_registry() -> None:
    assert get_loss("ce").ohem_threshold is None
    assert get_loss("ohem_ce").ohem_threshold == 0.7
    assert get_loss("ohem_ce", ohem_threshold=0.5, ohem_min_kept=7).ohem_min_kept == 7
    with pytest.raises(ValueError, match=r"unknown loss .focal.; known: ce, .*ohem_ce"):
        get_loss("focal")
    assert get_loss("ohem_ce", ohem_threshold=0.5).ohem_threshold == 0.5


def test_an_argument_a_loss_does_not_take_is_a_config_error_naming_the_nearest() -> None:
    expected = "loss_args: loss 'phuber_ce' takes no argument 'taus' (it takes tau, ignore_index)"
    expected += "; did you mean 'tau'?"
    with pytest.raises(ConfigError) as raised:
        get_loss("phuber_ce", taus=3)
    assert str(raised.value) == expected
    with pytest.raises(
        ConfigError, match=r"^loss_args: loss 'ohem_ce' takes no argument 'radius' \(it takes "
    ):
        get_loss("ohem_ce", radius=2)
