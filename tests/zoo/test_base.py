"""The Student contract (``zoo/_base.py``): the shape check's messages, and an image student's outputs."""

from __future__ import annotations

import pytest
import torch

from frugalseg.zoo import get_model


def test_a_wrong_clip_shape_names_expected_and_received() -> None:
    """The clip-length error of every model is in ``test_models``; here the other three checks."""
    model = get_model("tmanet_r18", num_classes=2)
    with pytest.raises(ValueError, match=r"5-D.*received a 4-D tensor of shape 1×3×32×32"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="3 channels"):
        model(torch.zeros(1, 3, 1, 32, 32))
    with pytest.raises(ValueError, match=r"ImageNet-normalised float frames, received torch.uint8"):
        model(torch.zeros(1, 3, 3, 32, 32, dtype=torch.uint8))
    image_model = get_model("pspnet_r18", num_classes=2)
    with pytest.raises(ValueError, match=r"B×1×3×H×W .*received 2×3×3×32×32"):
        image_model(torch.zeros(2, 3, 3, 32, 32))


def test_image_model_forward_train_is_forward() -> None:
    torch.manual_seed(0)
    model = get_model("hrnetv2_w18_small", num_classes=3).eval()
    frames = torch.randn(2, 1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outputs = model.forward_train(frames)
        assert set(outputs) == {"out"}
        assert torch.equal(outputs["out"], model(frames))
