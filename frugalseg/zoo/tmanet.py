"""TMANet (Wang, Wang, Liu; ICIP 2021): temporal memory attention over past frames.

Follows the official mmseg model (``tmanet_r50-d8``): a dilated ResNet at output stride 8 shared by
the memory frames and the current frame, per-slot memory key/value projections, an unscaled
softmax memory read, a 3×3 bottleneck and an auxiliary FCN head on the current frame's layer3.
Head module names mirror the official checkpoint (``decode_head.memory_key_conv.0.{t}.conv.weight``
…); :func:`official_key` maps a whole official mmseg ``state_dict`` onto this module.

The memory length is ``num_frames - 1``: the official configs use 2 past frames on Cityscapes and
4 on CamVid (:data:`MEMORY_FRAMES`), i.e. ``num_frames`` 3 and 5, which the datamodule's
``num_frames`` sets (the CLI links ``data.num_frames`` to ``model.num_frames``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
import torch
from torch import Tensor, nn

from frugalseg.errors import ConfigError
from frugalseg.zoo._attention import attention
from frugalseg.zoo._base import Student, feature_info, resize_to
from frugalseg.zoo._convert import Converter, Target, register_converter, shape_of
from frugalseg.zoo._hub import load_encoder_weights
from frugalseg.zoo._registry import ModelConfig, register_model

#: Past frames in the official configs (``sequence_num``); ``num_frames`` is one more.
MEMORY_FRAMES = {"cityscapes": 2, "camvid": 4}


class ConvBNReLU(nn.Module):
    """Conv (no bias) + BatchNorm + ReLU, 'same' padding: mmcv's ``ConvModule``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size (odd).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Conv, BatchNorm, activation."""
        return self.act(self.bn(self.conv(x)))


class SequenceConv(nn.ModuleList):
    """One ``ConvBNReLU`` per memory slot: slot ``i`` of a B×M×C×H×W tensor always goes through conv ``i``.

    Args:
        num_slots: memory slots M (past frames).
        in_channels: input channels of each slot.
        out_channels: output channels of each slot.
        kernel_size: square kernel size (odd).
    """

    def __init__(self, num_slots: int, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(ConvBNReLU(in_channels, out_channels, kernel_size) for _ in range(num_slots))

    def forward(self, memory: Tensor) -> Tensor:
        """Each memory slot through its own conv."""
        if memory.shape[1] != len(self):
            raise ValueError(f"expected {len(self)} memory slots, received {memory.shape[1]}")
        return torch.stack([conv(memory[:, i]) for i, conv in enumerate(self)], dim=1)


def memory_read(query_key: Tensor, memory_key: Tensor, memory_value: Tensor) -> Tensor:
    """Attention read of the memory, without 1/sqrt(C) scaling (official ``matmul_norm=False``).

    ``query_key`` B×Ck×H×W, ``memory_key`` B×M×Ck×H'×W', ``memory_value`` B×M×Cv×H'×W'.
    Each query pixel attends over all M·H'·W' memory pixels: ``A = softmax(Q_kᵀ M_k)``, and the
    result ``A · M_vᵀ`` is returned as B×Cv×H×W. Runs as scaled dot-product attention with scale 1,
    so the HW×(M·H'·W') weights (0.7 GB per sample at the official 769×769 crop) are never held.
    """
    b, ck, h, w = query_key.shape
    cv = memory_value.shape[2]
    q = query_key.flatten(2).transpose(1, 2)  # B×HW×Ck
    k = memory_key.permute(0, 1, 3, 4, 2).reshape(b, -1, ck)  # B×(M·H'·W')×Ck
    v = memory_value.permute(0, 1, 3, 4, 2).reshape(b, -1, cv)  # B×(M·H'·W')×Cv
    return attention(q, k, v, scale=1.0).transpose(1, 2).reshape(b, cv, h, w)


class TMAHead(nn.Module):
    """Memory attention head: query/memory projections, memory read, bottleneck, classifier.

    Args:
        in_channels: channels of the layer4 features of every frame.
        channels: width of the 3×3 bottleneck before the classifier (512).
        key_channels: query/memory key channels (64).
        value_channels: query/memory value channels (256).
        memory_frames: past frames M, each with its own memory projections.
        num_classes: output classes.
        dropout: Dropout2d rate before the classifier (0.1).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        key_channels: int,
        value_channels: int,
        memory_frames: int,
        num_classes: int,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.memory_key_conv = nn.Sequential(
            SequenceConv(memory_frames, in_channels, key_channels, 1),
            SequenceConv(memory_frames, key_channels, key_channels, 3),
        )
        self.memory_value_conv = nn.Sequential(
            SequenceConv(memory_frames, in_channels, value_channels, 1),
            SequenceConv(memory_frames, value_channels, value_channels, 3),
        )
        self.query_key_conv = nn.Sequential(
            ConvBNReLU(in_channels, key_channels, 1), ConvBNReLU(key_channels, key_channels, 3)
        )
        self.query_value_conv = nn.Sequential(
            ConvBNReLU(in_channels, value_channels, 1), ConvBNReLU(value_channels, value_channels, 3)
        )
        self.bottleneck = ConvBNReLU(2 * value_channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, query: Tensor, memory: Tensor) -> Tensor:
        """Logits at feature resolution from the current frame's B×C×h×w and memory B×M×C×h×w."""
        query_value = self.query_value_conv(query)
        memory_key, memory_value = self.memory_key_conv(memory), self.memory_value_conv(memory)
        read = memory_read(self.query_key_conv(query), memory_key, memory_value)
        return self.conv_seg(self.dropout(self.bottleneck(torch.cat([query_value, read], dim=1))))


class FCNHead(nn.Module):
    """Auxiliary head: one 3×3 ConvBNReLU, dropout, 1×1 classifier (mmseg ``FCNHead``, num_convs=1).

    Args:
        in_channels: channels of the layer3 features.
        channels: hidden width (256).
        num_classes: output classes.
        dropout: Dropout2d rate before the classifier (0.1).
    """

    def __init__(self, in_channels: int, channels: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.convs = nn.Sequential(ConvBNReLU(in_channels, channels, 3))
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the feature ``x``."""
        return self.conv_seg(self.dropout(self.convs(x)))


class TMANet(Student):
    """TMANet student: ``frames[:, :-1]`` are the memory (oldest first), ``frames[:, -1]`` the current frame.

    Args:
        num_classes: output classes.
        num_frames: frames per clip, memory frames + the current one (3 on Cityscapes, 5 on CamVid).
        backbone: timm ResNet name, built dilated at output stride 8 (timm dilates the first block
            of a dilated stage with the previous stage's rate, as mmseg's ``contract_dilation``).
        key_channels: query/memory key channels (64).
        value_channels: query/memory value channels (256).
        channels: width of the head's bottleneck (512).
        aux_channels: hidden width of the auxiliary FCN head (256).
        aux_weight: loss weight of the auxiliary head (0.4).
        dropout: Dropout2d rate of both heads (0.1).
        backbone_weights: the timm backbone's pretrained weights: ``True`` for timm's default ones
            (its Hub repository, through the Hugging Face cache), an ``hf-hub:ORG/NAME`` id or a local
            safetensors / torch file (a classifier ``fc.*`` in it is ignored); None keeps the random
            initialisation.
        align_corners: used when resizing the logits to the input: the official Cityscapes config
            uses True, the CamVid config False.
    """

    def __init__(
        self,
        num_classes: int,
        num_frames: int = 3,
        backbone: str = "resnet50c",
        key_channels: int = 64,
        value_channels: int = 256,
        channels: int = 512,
        aux_channels: int = 256,
        aux_weight: float = 0.4,
        dropout: float = 0.1,
        backbone_weights: str | Path | bool | None = None,
        align_corners: bool = False,
    ):
        if num_frames < 2:
            raise ConfigError(
                "num_frames",
                f"TMANet needs num_frames ≥ 2 (memory frames + the current frame), got {num_frames}: give "
                "--data.num_frames 3, say, on the command line",
            )
        super().__init__(num_classes, num_frames, aux_weights={"aux": aux_weight})
        self.align_corners = align_corners
        self.backbone = timm.create_model(
            backbone, features_only=True, output_stride=8, out_indices=(3, 4), pretrained=False
        )
        if backbone_weights not in (None, False):
            load_encoder_weights(self.backbone, backbone_weights, timm_model=backbone)
        layer3_channels, layer4_channels = feature_info(self.backbone).channels()
        self.decode_head = TMAHead(
            layer4_channels, channels, key_channels, value_channels, num_frames - 1, num_classes, dropout
        )
        self.auxiliary_head = FCNHead(layer3_channels, aux_channels, num_classes, dropout)
        self._stream: list[Tensor] = []

    def _resize(self, logits: Tensor, size: tuple[int, int]) -> Tensor:
        return resize_to(logits, size, self.align_corners)

    @property
    def memory_frames(self) -> int:
        """Number of past frames the model attends to."""
        return self.num_frames - 1

    def _outputs(self, frames: Tensor, with_aux: bool) -> dict[str, Tensor]:
        self.check_frames(frames)
        b, t, c, h, w = frames.shape
        layer3, layer4 = self.backbone(frames.reshape(b * t, c, h, w))
        layer4 = layer4.reshape(b, t, *layer4.shape[1:])
        out = {"out": self._resize(self.decode_head(layer4[:, -1], layer4[:, :-1]), (h, w))}
        if with_aux:
            current_layer3 = layer3.reshape(b, t, *layer3.shape[1:])[:, -1]
            out["aux"] = self._resize(self.auxiliary_head(current_layer3), (h, w))
        return out

    def forward(self, frames: Tensor) -> Tensor:
        """Logits B×C×H×W of the current (last) frame at the input resolution."""
        return self._outputs(frames, with_aux=False)["out"]

    def forward_train(self, frames: Tensor) -> dict[str, Tensor]:
        """``"out"`` (main head) and ``"aux"`` (FCN on the current frame's layer3), both at input size."""
        return self._outputs(frames, with_aux=True)

    def reset(self) -> None:
        """Forget the streaming memory, e.g. at the start of a new video."""
        self._stream = []

    @torch.no_grad()
    def step(self, frame: Tensor) -> Tensor:
        """Streaming inference: logits for ``frame`` (B×3×H×W) given the frames seen since :meth:`reset`.

        Backbone features of past frames are cached, so each call runs the backbone once. Until
        enough frames are seen the memory is filled with the oldest frame seen (the first frame
        of a video is repeated, as the TMANet authors suggest).
        """
        if frame.dim() != 4 or frame.shape[1] != 3:
            raise ValueError(f"TMANet.step expects one frame of shape B×3×H×W, received {tuple(frame.shape)}")
        layer4 = self.backbone(frame)[1]
        if self._stream and self._stream[0].shape != layer4.shape:
            raise ValueError(
                f"TMANet.step received a frame of shape {tuple(frame.shape)} that does not match the frames "
                "in memory; call reset() between videos"
            )
        stream = self._stream
        oldest = stream[0] if stream else layer4
        memory = [oldest] * (self.memory_frames - len(stream)) + stream
        logits = self.decode_head(layer4, torch.stack(memory, dim=1))
        self._stream = (stream + [layer4])[-self.memory_frames :]
        return self._resize(logits, (frame.shape[-2], frame.shape[-1]))


#: mmseg ResNetV1c deep stem (conv, BN, ReLU ×3 in ``backbone.stem``) → timm ``conv1`` Sequential + ``bn1``.
_STEM = {"0": "conv1.0", "1": "conv1.1", "3": "conv1.3", "4": "conv1.4", "6": "conv1.6", "7": "bn1"}


def official_key(key: str) -> str | None:
    """Map a key of an official TMANet (mmseg) ``state_dict`` to this module's state dict.

    ``backbone.stem.{0,1,3,4,6}`` → ``backbone.conv1.{…}`` and ``backbone.stem.7`` → ``backbone.bn1``
    (timm names the deep stem differently); ``backbone.layer*``, ``decode_head.*`` and
    ``auxiliary_head.*`` keep their names. No official tensor is dropped, so None is never
    returned; a key outside these prefixes (e.g. of another model) raises ``KeyError``.
    """
    if m := re.match(r"^backbone\.stem\.(\d+)\.(.*)$", key):
        if m[1] not in _STEM:
            raise KeyError(f"{key!r}: the ResNetV1c stem has no parameters at index {m[1]}")
        return f"backbone.{_STEM[m[1]]}.{m[2]}"
    if re.match(r"^(backbone\.layer[1-4]|decode_head|auxiliary_head)\.", key):
        return key
    raise KeyError(f"{key!r} is not a key of an official TMANet checkpoint")


def official_target(state: Mapping[str, Tensor]) -> Target:
    """``tmanet_r50`` with the memory slots, widths and classes of an official mmseg state dict."""
    slots = {int(m[1]) for k in state if (m := re.match(r"^decode_head\.memory_key_conv\.0\.(\d+)\.", k))}
    head = "decode_head"
    args = {
        "key_channels": int(shape_of(state, f"{head}.memory_key_conv.0.0.conv.weight", "TMANet")[0]),
        "value_channels": int(shape_of(state, f"{head}.memory_value_conv.0.0.conv.weight", "TMANet")[0]),
        "channels": int(shape_of(state, f"{head}.bottleneck.conv.weight", "TMANet")[0]),
        "aux_channels": int(shape_of(state, "auxiliary_head.convs.0.conv.weight", "TMANet")[0]),
    }
    classes = int(shape_of(state, f"{head}.conv_seg.weight", "TMANet")[0])
    return Target("tmanet_r50", classes, len(slots) + 1, args)


converter = register_converter(
    Converter(
        "tmanet", "mmseg 'state_dict': backbone./decode_head./auxiliary_head.", official_key, official_target
    )
)


def _cfg(**kwargs: Any) -> ModelConfig:
    return ModelConfig(
        num_frames=3,
        video=True,
        stream_matches_clip=True,
        aux_weights={"aux": 0.4},
        paper="Wang et al., ICIP 2021",
        paper_url="https://arxiv.org/abs/2102.08643",
        code="https://github.com/wanghao9610/TMANet",
        license="not stated (mmsegmentation fork)",
        **kwargs,
    )


default_cfgs: dict[str, ModelConfig] = {
    "tmanet_r50": _cfg(param_count=32.1),
    "tmanet_r18": _cfg(param_count=11.8),
}


@register_model
def tmanet_r50(num_classes: int, num_frames: int = 3, **kwargs: Any) -> TMANet:
    """Paper size: deep-stem ResNet-50 (timm ``resnet50c`` = mmseg ResNetV1c), key 64, value 256, 512 ch.

    Args:
        num_classes: output classes.
        num_frames: 3 (2 memory frames) as the official Cityscapes config, 5 for CamVid.
        **kwargs: further :class:`TMANet` arguments.
    """
    return TMANet(num_classes, num_frames, backbone="resnet50c", **kwargs)


@register_model
def tmanet_r18(num_classes: int, num_frames: int = 3, **kwargs: Any) -> TMANet:
    """Small CPU-friendly width: ResNet-18, key 32, value 64, 128 ch, aux 64 ch.

    Args:
        num_classes: output classes.
        num_frames: memory frames + the current one (3).
        **kwargs: further :class:`TMANet` arguments (they override the small widths).
    """
    options: dict[str, Any] = {"key_channels": 32, "value_channels": 64, "channels": 128, "aux_channels": 64}
    options.update(kwargs)
    return TMANet(num_classes, num_frames, backbone="resnet18", **options)
