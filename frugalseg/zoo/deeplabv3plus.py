"""DeepLabV3+ (Chen et al., ECCV 2018) from segmentation-models-pytorch, as image students.

smp's DeepLabV3+: an encoder at output stride 16 (atrous in its last stage), ASPP on the 1/16 map,
a decoder that joins it with the 1/4 features, logits upsampled to the input size. The WeClick
configs use ``deeplabv3plus_r101`` as the teacher and ``deeplabv3plus_r18`` / ``deeplabv3plus_mbv2`` as
real-time students.
"""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp

from frugalseg.zoo._registry import ModelConfig, register_model
from frugalseg.zoo._smp import SmpStudent, smp_student


def _cfg(**kwargs: Any) -> ModelConfig:
    return ModelConfig(
        paper="Chen et al., ECCV 2018",
        paper_url="https://arxiv.org/abs/1802.02611",
        code="https://github.com/qubvel-org/segmentation_models.pytorch",
        license="MIT",
        **kwargs,
    )


default_cfgs: dict[str, ModelConfig] = {
    "deeplabv3plus_r101": _cfg(param_count=45.7),
    "deeplabv3plus_r18": _cfg(param_count=12.3),
    "deeplabv3plus_mbv2": _cfg(param_count=4.4),
}


@register_model
def deeplabv3plus_r101(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """DeepLabV3+ with a ResNet-101 encoder (the WeClick teacher).

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further ``smp.DeepLabV3Plus`` arguments.
    """
    return smp_student(smp.DeepLabV3Plus, "resnet101", num_classes, num_frames, **kwargs)


@register_model
def deeplabv3plus_r18(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """DeepLabV3+ with a ResNet-18 encoder (a WeClick student).

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further ``smp.DeepLabV3Plus`` arguments.
    """
    return smp_student(smp.DeepLabV3Plus, "resnet18", num_classes, num_frames, **kwargs)


@register_model
def deeplabv3plus_mbv2(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """DeepLabV3+ with a MobileNetV2 encoder (a WeClick student).

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further ``smp.DeepLabV3Plus`` arguments.
    """
    return smp_student(smp.DeepLabV3Plus, "mobilenet_v2", num_classes, num_frames, **kwargs)
