"""PSPNet (Zhao et al., CVPR 2017): the papers' network, and smp's light PSPNet.

The papers' network runs on a dilated ResNet at output stride 8 (it is also TDNet's grouped PSP
teacher).

The network of the papers, as PyTorch-Encoding builds it (the ``psp101.pkl`` teacher of the official
``feinanshan/TDNet`` code):

- a dilated ResNet returning layer3 and layer4 at output stride 8 (the deep 64-64-128 stem for
  R50/R101; layer3 dilation 2, layer4 the multi-grid dilations 4, 8, 16 of the TDNet teacher's
  ResNet, where the PSPNet paper keeps 4 in every layer4 block) — the builder is
  :func:`frugalseg.zoo.tdnet.dilated_resnet`;
- pyramid pooling on layer4 with bins 1, 2, 3, 6 (1×1 conv to C/4 + BN + ReLU per bin, bilinear
  upsampling with align_corners=True), concatenated after the layer4 map: 2C channels ordered
  ``[layer4, bin1, bin2, bin3, bin6]`` (:class:`~frugalseg.zoo.tdnet.PyramidPoolingGroup` with one group);
- the head: 3×3 conv (2C → 512, no bias) + BN + ReLU + Dropout2d(0.1) + 1×1 conv;
- an auxiliary FCN head on layer3 (3×3 conv to C3/4 + BN + ReLU + dropout + 1×1 conv), loss
  weight 0.4, run by :meth:`PSPNet.forward_train` only.

**Groups (TDNet's teacher).** Built with ``groups=N`` the model also returns ``group0`` …
``group{N-1}``, following the official ``pspnet_2p`` / ``pspnet_4p``: group ``i``'s share of the PSP
feature is the ``i``-th of N slices of the layer4 map and of each pooled branch (what TDNet's
sub-network ``PyramidPoolingGroup(C, N, i)`` computes); ``g_i`` is the head's 3×3 conv restricted
to that share's input channels (the official ``split_psp_state_dict`` slices ``head.conv5.1``
the same way). The 3×3 conv is linear, so ``Σ_i g_i`` is the full conv and ``out`` is the plain
PSPNet output. The group logits are the rest of the head (BN, ReLU, dropout, 1×1) applied to
``scale · g_i``: scale 1 for 2 groups (``pspnet_2p`` returns ``head(g_i)``) and N otherwise
(``pspnet_4p`` returns ``head(4·g_i)``); ``group_scale`` overrides it. Groups add no parameters, so a
PSPNet trained without them (e.g. ``frugalseg fit`` with ``student: pspnet_r101_os8``) is the
teacher unchanged. :func:`paired_group` gives the teacher group that TDNet distils each
sub-network toward.

**Light smp PSPNet** (``pspnet_r101``, ``pspnet_r18``, ``pspnet_mbv2``): segmentation-models-pytorch's
PSPNet, which reads its encoder only to depth 3 (1/8) and pools that map, far lighter than the
paper's network of the same backbone name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalseg.zoo._base import Student, feature_info, resize_to
from frugalseg.zoo._hub import load_encoder_weights
from frugalseg.zoo._registry import ModelConfig, register_model
from frugalseg.zoo._smp import SmpStudent, smp_student
from frugalseg.zoo.tdnet import BINS, PyramidPoolingGroup, dilated_resnet, fcn_head


def group_indices(channels: int, groups: int, group: int) -> Tensor:
    """Channels of the 2C-channel PSP feature ``[layer4, bin1, bin2, bin3, bin6]`` in group ``group``.

    The group's slice of the layer4 map (C/N channels) then its slice of each pooled branch
    (C/4N each), in the order TDNet's ``PyramidPoolingGroup`` concatenates them.
    """
    part, branch = channels // groups, channels // (4 * groups)
    pieces = [torch.arange(group * part, (group + 1) * part)]
    for b in range(len(BINS)):
        start = channels + b * (channels // 4) + group * branch
        pieces.append(torch.arange(start, start + branch))
    return torch.cat(pieces)


def paired_group(path: int, student_groups: int, teacher_groups: int) -> int:
    """The teacher PSP group TDNet distils the sub-network path of sub-network ``path`` toward.

    Sub-network ``p`` computes group ``g = p mod Gs`` of the student's ``Gs`` groups. A teacher
    with ``Gt = k·Gs`` groups splits that group into ``g·k … g·k + k − 1``; the sub-networks sharing
    ``g`` take them in turn (``(p // Gs) mod k``). TD2 with ``pspnet_2p`` (Gs = Gt = 2): ``p mod 2``.
    TD4 with ``pspnet_4p`` (Gs = 2, Gt = 4): paths 0, 1, 2, 3 → groups 0, 2, 1, 3, the official
    pairing (``pspnet_4p`` returns its group logits in the order 1, 3, 2, 4).
    """
    if teacher_groups < student_groups or teacher_groups % student_groups:
        raise ValueError(
            f"a teacher with {teacher_groups} PSP groups cannot teach a student with {student_groups} "
            "groups: the teacher's groups must be a multiple of the student's"
        )
    k = teacher_groups // student_groups
    return (path % student_groups) * k + (path // student_groups) % k


class PSPNet(Student):
    """PSPNet image student (``num_frames`` 1): logits of the last frame of the clip.

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        backbone: timm ResNet name (``resnet101s`` / ``resnet50s``: deep 64-64-128 stem).
        backbone_channels: timm ``channels`` of the four stages (a small width for tests).
        head_channels: hidden width of the head (512).
        aux_head: build the auxiliary FCN head on layer3.
        aux_weight: loss weight of the auxiliary head (0.4).
        groups: None, or N to also return the per-group logits ``group0`` … ``group{N-1}``
            (TDNet's teacher: 2 for TD2, 4 for TD4's official teacher).
        group_scale: factor on ``g_i`` before the shared predictor; None for the official rule
            (1 for 2 groups, N otherwise).
        dropout: Dropout2d rate of the heads (0.1).
        backbone_weights: the timm backbone's pretrained weights: ``True`` for timm's default ones
            (its Hub repository, through the Hugging Face cache), an ``hf-hub:ORG/NAME`` id or a local
            safetensors / torch file; None keeps the random initialisation.
    """

    group_index: Tensor  # groups × channels of a group's share (a buffer, with ``groups`` only)

    def __init__(
        self,
        num_classes: int,
        num_frames: int = 1,
        backbone: str = "resnet101s",
        backbone_channels: tuple[int, ...] | None = None,
        head_channels: int = 512,
        aux_head: bool = True,
        aux_weight: float = 0.4,
        groups: int | None = None,
        group_scale: float | None = None,
        dropout: float = 0.1,
        backbone_weights: str | Path | bool | None = None,
    ):
        super().__init__(num_classes, num_frames, aux_weights={"aux": aux_weight} if aux_head else {})
        self.backbone = dilated_resnet(backbone, backbone_channels)
        if backbone_weights not in (None, False):
            load_encoder_weights(self.backbone, backbone_weights, timm_model=backbone)
        layer3_channels, layer4_channels = feature_info(self.backbone).channels()
        if groups is not None and (groups < 1 or layer4_channels % (4 * groups)):
            raise ValueError(
                f"PSPNet: groups={groups} must be >= 1 and divide the PSP branch width "
                f"{layer4_channels // 4} (layer4 channels {layer4_channels} / 4)"
            )
        self.psp = PyramidPoolingGroup(layer4_channels, 1, 0)
        self.head = fcn_head(self.psp.out_channels, head_channels, num_classes, dropout)
        self.aux_head = (
            fcn_head(layer3_channels, layer3_channels // 4, num_classes, dropout) if aux_head else None
        )
        self.groups = groups
        if group_scale is None and groups is not None:
            group_scale = 1.0 if groups == 2 else float(groups)
        self.group_scale = group_scale
        if groups is not None:
            index = torch.stack([group_indices(layer4_channels, groups, g) for g in range(groups)])
            self.register_buffer("group_index", index, persistent=False)

    def _image(self, frames: Tensor) -> Tensor:
        self.check_frames(frames)
        return frames[:, -1]

    def group_logits(self, feature: Tensor) -> list[Tensor]:
        """Logits at 1/8 of each group's share of the PSP ``feature`` (B×2C×h×w), as TDNet's teacher."""
        if self.group_scale is None:
            raise ValueError("this PSPNet was built without groups (groups=None): it has no group logits")
        conv, predictor = cast(nn.Conv2d, self.head[0]), self.head[1:]
        logits = []
        for index in self.group_index:
            share = F.conv2d(feature[:, index], conv.weight[:, index], padding=conv.padding)
            logits.append(predictor(self.group_scale * share))
        return logits

    def forward(self, frames: Tensor) -> Tensor:
        """Logits B×C×H×W of the last frame (resized with align_corners=True, as the official code)."""
        image = self._image(frames)
        layer4 = self.backbone(image)[1]
        return resize_to(self.head(self.psp(layer4)), image.shape[-2:], align_corners=True)

    def forward_train(self, frames: Tensor) -> dict[str, Tensor]:
        """``"out"``, ``"aux"`` (layer3 head) and, with ``groups``, ``"group0"`` … at the input size."""
        image = self._image(frames)
        size = image.shape[-2:]
        layer3, layer4 = self.backbone(image)
        feature = self.psp(layer4)
        outputs = {"out": resize_to(self.head(feature), size, align_corners=True)}
        if self.aux_head is not None:
            outputs["aux"] = resize_to(self.aux_head(layer3), size, align_corners=True)
        if self.groups is not None:
            for g, logits in enumerate(self.group_logits(feature)):
                outputs[f"group{g}"] = resize_to(logits, size, align_corners=True)
        return outputs


def _cfg(**kwargs: Any) -> ModelConfig:
    return ModelConfig(
        paper="Zhao et al., CVPR 2017",
        paper_url="https://arxiv.org/abs/1612.01105",
        **kwargs,
    )


#: The papers' PSPNet as TDNet's teacher ``psp101.pkl`` (PyTorch-Encoding layout) builds it.
_OS8: dict[str, Any] = {
    "aux_weights": {"aux": 0.4},
    "code": "https://github.com/feinanshan/TDNet",
    "license": "MIT",
}
_SMP: dict[str, Any] = {"code": "https://github.com/qubvel-org/segmentation_models.pytorch", "license": "MIT"}

default_cfgs: dict[str, ModelConfig] = {
    "pspnet_r101_os8": _cfg(param_count=68.1, **_OS8),
    "pspnet_r50_os8": _cfg(param_count=49.1, **_OS8),
    "pspnet_r18_os8_small": _cfg(param_count=0.8, **_OS8),
    "pspnet_r101": _cfg(param_count=2.3, **_SMP),
    "pspnet_r18": _cfg(param_count=0.9, **_SMP),
    "pspnet_mbv2": _cfg(param_count=0.2, **_SMP),
}


@register_model
def pspnet_r101_os8(num_classes: int, num_frames: int = 1, **kwargs: Any) -> PSPNet:
    """PSPNet-101: dilated ResNet-101 (deep stem), output stride 8; TDNet's teacher with ``groups``.

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further :class:`PSPNet` arguments (``groups`` …).
    """
    return PSPNet(num_classes, num_frames, **{"backbone": "resnet101s", **kwargs})


@register_model
def pspnet_r50_os8(num_classes: int, num_frames: int = 1, **kwargs: Any) -> PSPNet:
    """PSPNet-50: dilated ResNet-50 (deep stem), output stride 8.

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further :class:`PSPNet` arguments (``groups`` …).
    """
    return PSPNet(num_classes, num_frames, **{"backbone": "resnet50s", **kwargs})


@register_model
def pspnet_r18_os8_small(num_classes: int, num_frames: int = 1, **kwargs: Any) -> PSPNet:
    """CPU-test width: quarter-width dilated ResNet-18 (layer4 128 channels), head 32.

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further :class:`PSPNet` arguments (they override the small widths).
    """
    small = {"backbone": "resnet18", "backbone_channels": (16, 32, 64, 128), "head_channels": 32}
    return PSPNet(num_classes, num_frames, **{**small, **kwargs})


@register_model
def pspnet_r101(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """The light PSPNet of smp with a ResNet-101 encoder read to 1/8 (layers 1–2).

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further ``smp.PSPNet`` arguments.
    """
    return smp_student(smp.PSPNet, "resnet101", num_classes, num_frames, **kwargs)


@register_model
def pspnet_r18(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """The light PSPNet of smp with a ResNet-18 encoder read to 1/8 (layers 1–2).

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further ``smp.PSPNet`` arguments.
    """
    return smp_student(smp.PSPNet, "resnet18", num_classes, num_frames, **kwargs)


@register_model
def pspnet_mbv2(num_classes: int, num_frames: int = 1, **kwargs: Any) -> SmpStudent:
    """The light PSPNet of smp with a MobileNetV2 encoder read to 1/8.

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further ``smp.PSPNet`` arguments.
    """
    return smp_student(smp.PSPNet, "mobilenet_v2", num_classes, num_frames, **kwargs)
