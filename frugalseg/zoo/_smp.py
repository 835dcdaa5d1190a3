"""segmentation-models-pytorch networks wrapped as image students (DeepLabV3+, the light PSPNet).

Encoders are built with smp's ``encoder_weights=None``; pretrained encoder weights (an ImageNet
ResNet-18 for WeClick's students) come from what ``encoder_weights`` names: smp's own tag
(``imagenet``: smp's pinned Hub repository, through the Hugging Face cache), an ``hf-hub:`` id or a
local file (`frugalseg.zoo._hub.load_encoder_weights`). smp requires the image
size to be a multiple of the encoder's output stride, so images are zero-padded (the mean colour
of a normalised image) and the logits cropped back. smp builds every encoder stage even when the
decoder reads fewer (its PSPNet reads encoder depth 3, i.e. up to 1/8); those stages would hold
parameters that never get a gradient (wasted memory, and DDP would need
``find_unused_parameters``), so :func:`smp_student` replaces them by ``Identity``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from frugalseg.zoo._base import ImageStudent, pad_to_multiple
from frugalseg.zoo._hub import NotCachedError, load_encoder_weights


class SmpStudent(ImageStudent):
    """An smp segmentation model used as a student on the last frame of the clip.

    Args:
        net: the smp model (``encoder`` with an ``output_stride``, returning logits at the input size).
        num_classes: output classes of ``net``.
        num_frames: frames per clip (1: an image student).
    """

    def __init__(self, net: nn.Module, num_classes: int, num_frames: int = 1):
        super().__init__(num_classes, num_frames)
        self.net = net

    def segment(self, image: Tensor) -> Tensor:
        """Logits of the image, padded to the encoder's stride and cropped back."""
        h, w = image.shape[-2:]
        encoder: Any = self.net.encoder  # smp's: output_stride is unknown to nn.Module's type
        return self.net(pad_to_multiple(image, encoder.output_stride))[..., :h, :w]


def drop_unused_stages(encoder: nn.Module) -> None:
    """Replace the stages of an smp ``encoder`` beyond its depth (never run) by ``nn.Identity``.

    ``encoder.get_stages()`` gives the modules of each stage: a dict stride → modules (smp ≥ 0.4)
    or a list indexed by stage (older smp). A stage module that is a slice of a ``Sequential``
    (MobileNetV2's ``features[7:14]``) is replaced child by child, which keeps the indices the
    encoder's ``forward`` uses.
    """
    smp_encoder: Any = encoder  # out_channels and get_stages() are smp's, unknown to nn.Module's type
    depth = len(smp_encoder.out_channels) - 1
    stages = smp_encoder.get_stages()
    if isinstance(stages, dict):
        unused = [m for stride, modules in stages.items() if stride > 2**depth for m in modules]
    else:
        unused = list(stages[depth + 1 :])
    names = {id(module): name for name, module in encoder.named_modules() if name}
    for module in unused:
        for part in [module] if id(module) in names else list(module.children()):
            parent, _, child = names[id(part)].rpartition(".")
            setattr(encoder.get_submodule(parent), child, nn.Identity())


def smp_student(
    architecture: type[nn.Module],
    encoder: str,
    num_classes: int,
    num_frames: int = 1,
    encoder_weights: str | Path | None = None,
    **kwargs: Any,
) -> SmpStudent:
    """An smp ``architecture`` with a randomly initialised ``encoder`` or pretrained encoder weights.

    Args:
        architecture: the smp class (``smp.DeepLabV3Plus``, ``smp.PSPNet``).
        encoder: smp encoder name (``resnet18``, ``resnet101``, ``mobilenet_v2``).
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        encoder_weights: smp's tag (``imagenet``: the ImageNet encoder paper 004 starts from, fetched
            from smp's Hub repository into the Hugging Face cache), an ``hf-hub:ORG/NAME`` id, or a
            local ``.safetensors`` / torch file of the encoder's state dict; None keeps the random
            initialisation. In a config: ``model.student_args: {encoder_weights: imagenet}``.
        **kwargs: further arguments of the smp class (``encoder_depth``, ``decoder_channels`` …); a name
            it does not take is a TypeError (smp would drop it silently but for a ``tu-`` timm encoder).
    """
    if not encoder.startswith("tu-"):  # smp hands further arguments to timm's encoders only, drops them here
        named = inspect.signature(architecture).parameters
        for key in kwargs:
            if key not in named:
                raise TypeError(f"{architecture.__name__}() got an unexpected keyword argument '{key}'")
    net = architecture(encoder_name=encoder, encoder_weights=None, classes=num_classes, **kwargs)
    smp_encoder = net.encoder
    if not isinstance(smp_encoder, nn.Module):
        raise TypeError(f"{architecture.__name__} has no encoder module")
    if encoder_weights is not None:  # before unused stages are dropped: the file holds them all
        try:
            load_encoder_weights(smp_encoder, encoder_weights, smp_encoder=encoder)
        except NotCachedError as err:
            hint = (
                "; or start the encoder from random weights: encoder_weights: null under model.student_args"
            )
            raise NotCachedError(str(err.path), f"{err.problem}{hint}") from err
    drop_unused_stages(smp_encoder)
    return SmpStudent(net, num_classes, num_frames)
