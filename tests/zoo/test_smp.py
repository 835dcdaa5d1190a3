"""segmentation-models-pytorch students: the encoder stages smp builds but never runs are dropped."""

from __future__ import annotations

import pytest
import segmentation_models_pytorch as smp
import torch

from frugalseg.zoo import get_model


@pytest.mark.parametrize(
    ("name", "architecture", "encoder", "dropped"),
    [
        ("pspnet_r18", smp.PSPNet, "resnet18", ("encoder.layer3.", "encoder.layer4.")),
        ("pspnet_mbv2", smp.PSPNet, "mobilenet_v2", tuple(f"encoder.features.{i}." for i in range(7, 19))),
        ("deeplabv3plus_mbv2", smp.DeepLabV3Plus, "mobilenet_v2", ()),
    ],
)
def test_unused_encoder_stages_are_dropped_and_the_output_is_smps(name, architecture, encoder, dropped):
    """smp's PSPNet reads its encoder to depth 3 (1/8): layer3/4 (ResNet) and features 7…18
    (MobileNetV2) hold no parameter any more, and the logits are those of smp's own model with the
    same weights; DeepLabV3+ reads every stage and keeps them."""
    torch.manual_seed(0)
    model = get_model(name, num_classes=3).eval()
    ours = set(model.net.state_dict())
    full = architecture(encoder_name=encoder, encoder_weights=None, classes=3).eval()
    removed = set(full.state_dict()) - ours
    assert removed == {k for k in full.state_dict() if k.startswith(dropped)}
    assert not ours - set(full.state_dict())
    full.load_state_dict(model.net.state_dict(), strict=False)
    image = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model.net(image), full(image))
