"""DeepLabV3+ and PSPNet from segmentation-models-pytorch, wrapped as image students.

Encoders are built with ``encoder_weights=None`` (nothing is downloaded). smp requires the image
size to be a multiple of the encoder's output stride, so images are zero-padded (the mean colour
of a normalised image) and the logits cropped back.
"""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
from torch import Tensor, nn

from frugalseg.zoo.base import ImageStudent, pad_to_multiple
from frugalseg.zoo.registry import register_model


class SmpStudent(ImageStudent):
    """An smp segmentation model (``net``) used as a student on the last frame of the clip."""

    def __init__(self, net: nn.Module, num_classes: int, num_frames: int = 1):
        super().__init__(num_classes, num_frames)
        self.net = net

    def segment(self, image: Tensor) -> Tensor:
        """Logits of the image, padded to the encoder's stride and cropped back."""
        h, w = image.shape[-2:]
        return self.net(pad_to_multiple(image, self.net.encoder.output_stride))[..., :h, :w]


def _deeplabv3plus(encoder: str, num_classes: int, num_frames: int, **kwargs: Any) -> SmpStudent:
    net = smp.DeepLabV3Plus(encoder_name=encoder, encoder_weights=None, classes=num_classes, **kwargs)
    return SmpStudent(net, num_classes, num_frames)


def _pspnet(encoder: str, num_classes: int, num_frames: int, **kwargs: Any) -> SmpStudent:
    net = smp.PSPNet(encoder_name=encoder, encoder_weights=None, classes=num_classes, **kwargs)
    return SmpStudent(net, num_classes, num_frames)


@register_model("deeplabv3plus_r101")
def deeplabv3plus_r101(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """DeepLabV3+ with a ResNet-101 encoder (output stride 16)."""
    return _deeplabv3plus("resnet101", num_classes, num_frames, **kwargs)


@register_model("deeplabv3plus_r18")
def deeplabv3plus_r18(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """DeepLabV3+ with a ResNet-18 encoder (output stride 16)."""
    return _deeplabv3plus("resnet18", num_classes, num_frames, **kwargs)


@register_model("deeplabv3plus_mbv2")
def deeplabv3plus_mbv2(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """DeepLabV3+ with a MobileNetV2 encoder (output stride 16)."""
    return _deeplabv3plus("mobilenet_v2", num_classes, num_frames, **kwargs)


@register_model("pspnet_r18")
def pspnet_r18(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """PSPNet with a ResNet-18 encoder (smp default: encoder depth 3, pyramid pooling on its 1/8 features)."""
    return _pspnet("resnet18", num_classes, num_frames, **kwargs)


@register_model("pspnet_r101")
def pspnet_r101(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """PSPNet with a ResNet-101 encoder."""
    return _pspnet("resnet101", num_classes, num_frames, **kwargs)


@register_model("pspnet_mbv2")
def pspnet_mbv2(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """PSPNet with a MobileNetV2 encoder."""
    return _pspnet("mobilenet_v2", num_classes, num_frames, **kwargs)
