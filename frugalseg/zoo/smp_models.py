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


#: smp architecture per model family; DeepLabV3+ runs at output stride 16, PSPNet keeps smp's
#: defaults (encoder depth 3, pyramid pooling on the 1/8 features).
ARCHITECTURES: dict[str, type[nn.Module]] = {"deeplabv3plus": smp.DeepLabV3Plus, "pspnet": smp.PSPNet}
#: Short encoder names in the model names → smp encoder names.
ENCODERS = {"r101": "resnet101", "r18": "resnet18", "mbv2": "mobilenet_v2"}


def _factory(architecture: type[nn.Module], encoder: str):
    def build(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
        net = architecture(encoder_name=encoder, encoder_weights=None, classes=num_classes, **kwargs)
        return SmpStudent(net, num_classes, num_frames)

    build.__doc__ = f"{architecture.__name__} with a {encoder} encoder, as an image student."
    return build


for _family, _architecture in ARCHITECTURES.items():
    for _short, _encoder in ENCODERS.items():
        register_model(f"{_family}_{_short}")(_factory(_architecture, _encoder))
