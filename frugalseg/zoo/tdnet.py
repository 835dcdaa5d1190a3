"""TDNet (Hu et al., CVPR 2020): temporally distributed sub-networks with attention propagation.

Follows the official ``feinanshan/TDNet`` models (``td2_psp``/``td4_psp`` for training,
``td2_psp50``/``td4_psp18`` for testing):

- N independent dilated ResNets (output stride 8; layer3 dilation 2 with the first block at 1;
  layer4 multi-grid dilations 4, 8, 16 per block). Sub-network ``i`` sees frame ``i mod N`` of a
  video, so a long video costs one sub-network per frame.
- Each sub-network has a pyramid pooling module (bins 1, 2, 3, 6) that keeps only its group of
  the PSP feature: the ``group``-th of ``psp_groups`` slices of the layer4 map and of each pooled
  branch (TD2 and TD4 both use 2 groups; TD4's sub-networks 0 and 2, 1 and 3 share a group).
- An encoder per sub-network: query/key = 1×1 conv + BN + LeakyReLU + 1×1 conv (64 channels),
  value = 1×1 conv. Past frames are encoded on a subsampled grid (every ``kv_stride``-th pixel:
  the official training code's ``MaxPool2d(1, stride=3)``; its testing code uses stride 4).
- Attention propagation is chained from the oldest past frame to the current one (scaled
  dot-product, dropout 0.1, 1×1 output conv, dropout 0.1): the oldest frame's values are read by
  the next frame's query, added to that frame's values, and so on; the current frame's query reads
  the result. Each current sub-network has its own N−1 attention modules.
- ``head(norm(read + v_cur))``: an FCN head (3×3 conv + BN + ReLU, dropout, 1×1 conv) per
  sub-network; the same head on ``norm(v_cur)`` alone is the "sub-network path" output (the
  output while a stream has fewer than N−1 past frames, and a training target of its own).
- An auxiliary FCN head on the current sub-network's layer3 (training only).

**Normalisation.** The official code normalises ``read + v_cur`` with ``nn.LayerNorm([97, 193])``:
each channel map is normalised over its positions and scaled by a learned 97×193 map, which ties
the model to 769×1537 inputs. :class:`ChannelMapNorm` keeps the same statistics (each channel map
over its positions, eps 1e-5) at any size. Its affine is per channel by default (translation
equivariant, what a model trained on crops should learn). Built with
``norm_affine_size=(97, 193)`` it instead holds the official 97×193 maps, loads official weights
unchanged (``layer_norm{i}.ln.weight`` → ``norms.{i-1}.weight``), reproduces the official output at
769×1537 and resizes the maps bilinearly at other sizes (the fix the TDNet authors suggest).

Training-time parameter use: a clip forward runs every backbone but only the current
sub-network's head and attention modules, so DDP needs ``find_unused_parameters=True``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalseg.errors import ConfigError
from frugalseg.zoo._attention import attention
from frugalseg.zoo._base import Student, feature_info, resize_to
from frugalseg.zoo._convert import Converter, Target, register_converter, shape_of
from frugalseg.zoo._hub import load_encoder_weights
from frugalseg.zoo._registry import ModelConfig, register_model

#: Layer4 multi-grid dilations of the official dilated ResNet, one per block.
MULTI_GRID = (4, 8, 16)
#: PSP pooling bins.
BINS = (1, 2, 3, 6)
#: Smallest frame side: the normalisation needs at least 2×2 positions at stride 8.
MIN_SIZE = 16


def dilated_resnet(name: str, channels: tuple[int, ...] | None = None) -> nn.Module:
    """A timm ResNet returning (layer3, layer4) at output stride 8 with TDNet's multi-grid layer4.

    timm already dilates layer3 as the official code (first block 1, then 2); its layer4 uses
    2 then 4. The official layer4 block ``i`` has dilation ``MULTI_GRID[i]`` in its first 3×3
    conv (a basic block's second 3×3 conv stays at 4), set here on the timm convs.

    Args:
        name: timm ResNet name (``resnet18``, ``resnet50s``, ``resnet101s``).
        channels: timm ``channels`` of the four stages (a small width for tests), or None.
    """
    extra: dict[str, Any] = {} if channels is None else {"channels": channels}
    backbone = timm.create_model(
        name, features_only=True, output_stride=8, out_indices=(3, 4), pretrained=False, **extra
    )
    for i, block in enumerate(backbone.get_submodule("layer4").children()):
        conv = cast(nn.Conv2d, block.get_submodule("conv2" if hasattr(block, "conv3") else "conv1"))
        dilation = MULTI_GRID[i]
        conv.dilation, conv.padding = (dilation, dilation), (dilation, dilation)
    return backbone


class PyramidPoolingGroup(nn.Module):
    """PSP pyramid pooling that returns only group ``group`` of ``groups`` of the full PSP feature.

    For C input channels the output has ``2C / groups`` channels: the group's slice of the input
    and of each of the four pooled branches (C/4 channels each, before slicing).

    Args:
        in_channels: channels C of the layer4 map.
        groups: groups the PSP feature is split into (1: the whole PSP feature).
        group: the group this module returns (0 … groups − 1).
    """

    def __init__(self, in_channels: int, groups: int, group: int):
        super().__init__()
        if in_channels % (4 * groups):
            raise ValueError(f"PSP input channels {in_channels} must be divisible by 4 × {groups} groups")
        self.in_channels, self.groups, self.group = in_channels, groups, group
        branch = in_channels // 4
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU())
            for _ in BINS
        )

    @property
    def out_channels(self) -> int:
        """Channels of the group feature: the group's share of the input and of the pooled branches."""
        return 2 * self.in_channels // self.groups

    def forward(self, x: Tensor) -> Tensor:
        """The group's slice of ``x`` and of each pooled branch, concatenated."""
        c, size = x.shape[1], (x.shape[-2], x.shape[-1])
        part, branch_part = c // self.groups, c // (4 * self.groups)
        pieces = [x[:, self.group * part : (self.group + 1) * part]]
        for bins, conv in zip(BINS, self.convs, strict=True):
            pooled = conv(F.adaptive_avg_pool2d(x, bins))
            group = pooled[:, self.group * branch_part : (self.group + 1) * branch_part]
            pieces.append(resize_to(group, size, align_corners=True))
        return torch.cat(pieces, dim=1)


class QKVEncoder(nn.Module):
    """Query/key (1×1 conv + BN + LeakyReLU + 1×1 conv) and value (1×1 conv) of one sub-network.

    Args:
        in_channels: channels of the sub-network's PSP group feature.
        key_channels: query and key channels (64).
        value_channels: value channels (512).
    """

    def __init__(self, in_channels: int, key_channels: int, value_channels: int):
        super().__init__()

        def projection() -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(in_channels, key_channels, 1),
                nn.BatchNorm2d(key_channels),
                nn.LeakyReLU(),
                nn.Conv2d(key_channels, key_channels, 1),
            )

        self.query, self.key = projection(), projection()
        self.value = nn.Conv2d(in_channels, value_channels, 1)


class Propagation(nn.Module):
    """One attention-propagation step: a target query reads the values of a source frame.

    ``softmax(QᵀK / sqrt(Ck))`` over the source positions, dropout, the weighted values, a 1×1
    conv and dropout; queries B×Ck×H×W, keys B×Ck×h×w, values B×Cv×h×w → B×Cv×H×W. The read is
    scaled dot-product attention (the attention dropout is its ``dropout_p`` while training), so
    the HW×hw weights are never held.

    Args:
        key_channels: query/key channels Ck (the scale is Ck^-1/2).
        value_channels: value channels Cv.
        dropout: rate of the attention dropout and of the output dropout (0.1).
    """

    def __init__(self, key_channels: int, value_channels: int, dropout: float = 0.1):
        super().__init__()
        self.scale = key_channels**-0.5
        self.attention_dropout = dropout
        self.proj = nn.Conv2d(value_channels, value_channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, key: Tensor, value: Tensor, query: Tensor) -> Tensor:
        """Values of the source frame read by the target ``query``."""
        b, _, h, w = query.shape
        read = attention(
            query.flatten(2).transpose(1, 2),  # B×HW×Ck
            key.flatten(2).transpose(1, 2),  # B×hw×Ck
            value.flatten(2).transpose(1, 2),  # B×hw×Cv
            scale=self.scale,
            dropout=self.attention_dropout if self.training else 0.0,
        )
        return self.dropout(self.proj(read.transpose(1, 2).reshape(b, -1, h, w)))


class ChannelMapNorm(nn.Module):
    """Normalises each channel map over its positions at any size; per-channel or resized spatial affine.

    With ``affine_size=None`` the affine is a weight and bias per channel. With ``affine_size=(h, w)``
    it is an h×w map (the official ``LayerNorm([97, 193])`` parameters), bilinearly resized
    (align_corners=True) to the feature size when that differs.

    Args:
        channels: channels of the normalised map (size of a per-channel affine).
        affine_size: None for a per-channel affine, (h, w) for a spatial one.
        eps: added to the variance (1e-5, as ``nn.LayerNorm``).
    """

    def __init__(self, channels: int, affine_size: tuple[int, int] | None = None, eps: float = 1e-5):
        super().__init__()
        shape = (channels,) if affine_size is None else tuple(affine_size)
        self.affine_size = None if affine_size is None else tuple(affine_size)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` normalised per channel over its positions, with the (resized) affine maps."""
        mean = x.mean(dim=(-2, -1), keepdim=True)
        var = (x - mean).square().mean(dim=(-2, -1), keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine_size is None:
            return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        size = (x.shape[-2], x.shape[-1])
        weight = resize_to(self.weight[None, None], size, align_corners=True)
        bias = resize_to(self.bias[None, None], size, align_corners=True)
        return x * weight + bias


def fcn_head(in_channels: int, inter_channels: int, num_classes: int, dropout: float = 0.1) -> nn.Sequential:
    """3×3 conv (no bias) + BN + ReLU, Dropout2d, 1×1 conv: the official ``FCNHead.conv5``.

    Args:
        in_channels: input channels.
        inter_channels: hidden width.
        num_classes: output classes.
        dropout: Dropout2d rate before the classifier (0.1).
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, inter_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(inter_channels),
        nn.ReLU(),
        nn.Dropout2d(dropout),
        nn.Conv2d(inter_channels, num_classes, 1),
    )


class TDNet(Student):
    """TDNet student: ``num_frames`` = N sub-networks; ``frames[:, -1]`` is the current frame.

    Args:
        num_classes: output classes.
        num_frames: N, the number of sub-networks and of frames per clip (2 for TD2, 4 for TD4).
        backbone: timm ResNet name (``resnet50s``: deep 64-64-128 stem as the official R50;
            ``resnet18``: 7×7 stem).
        backbone_channels: timm ``channels`` of the four stages (a small width for tests), or
            None for the standard widths.
        psp_groups: groups of the PSP feature (2 in both official models).
        key_channels: query/key channels of the encoders (64).
        value_channels: value channels of the encoders (512).
        head_reduction: the head's hidden width is ``value_channels // head_reduction``
            (2 for TD2-PSP50, 4 for TD4-PSP18).
        kv_stride: subsampling of past frames' query/key/value (3 in official training, 4 in testing).
        norm_affine_size: None for a per-channel affine, (97, 193) to hold official weights.
        aux_head: build the auxiliary FCN head on layer3 (official test checkpoints have none).
        sub_weight: loss weight of the sub-network path output ``"sub"`` (0.5).
        aux_weight: loss weight of the auxiliary head ``"aux"`` (0.1).
        dropout: rate of the attention, propagation and head dropouts (0.1).
        backbone_weights: the timm backbone's pretrained weights, loaded into every sub-network (as
            the official code initialises all sub-networks from one PSPNet): ``True`` for timm's
            default ones (its Hub repository, through the Hugging Face cache), an ``hf-hub:ORG/NAME``
            id or a local safetensors / torch file.
    """

    def __init__(
        self,
        num_classes: int,
        num_frames: int = 2,
        backbone: str = "resnet50s",
        backbone_channels: tuple[int, ...] | None = None,
        psp_groups: int = 2,
        key_channels: int = 64,
        value_channels: int = 512,
        head_reduction: int = 2,
        kv_stride: int = 3,
        norm_affine_size: tuple[int, int] | None = None,
        aux_head: bool = True,
        sub_weight: float = 0.5,
        aux_weight: float = 0.1,
        dropout: float = 0.1,
        backbone_weights: str | Path | bool | None = None,
    ):
        if num_frames < 2:
            raise ValueError(f"TDNet needs num_frames >= 2 (one frame per sub-network), got {num_frames}")
        if num_frames % psp_groups:
            raise ValueError(f"TDNet: num_frames={num_frames} must be a multiple of psp_groups={psp_groups}")
        if kv_stride < 1:
            raise ValueError(f"TDNet: kv_stride must be >= 1, got {kv_stride}")
        aux_weights = {"sub": sub_weight, **({"aux": aux_weight} if aux_head else {})}
        super().__init__(num_classes, num_frames, aux_weights=aux_weights)
        self.kv_stride = kv_stride
        self.psp_groups = psp_groups
        self.backbones = nn.ModuleList(dilated_resnet(backbone, backbone_channels) for _ in range(num_frames))
        if backbone_weights not in (None, False):
            load_encoder_weights(self.backbones[0], backbone_weights, timm_model=backbone)
            for net in self.backbones[1:]:
                net.load_state_dict(self.backbones[0].state_dict())
        layer3_channels, layer4_channels = feature_info(self.backbones[0]).channels()
        psp = [PyramidPoolingGroup(layer4_channels, psp_groups, i % psp_groups) for i in range(num_frames)]
        self.psp = nn.ModuleList(psp)
        group_channels = psp[0].out_channels
        self.encoders = nn.ModuleList(
            QKVEncoder(group_channels, key_channels, value_channels) for _ in range(num_frames)
        )
        # propagation[c][j]: step j of the chain when sub-network c sees the current frame.
        self.propagation = nn.ModuleList(
            nn.ModuleList(Propagation(key_channels, value_channels, dropout) for _ in range(num_frames - 1))
            for _ in range(num_frames)
        )
        self.norms = nn.ModuleList(
            ChannelMapNorm(value_channels, norm_affine_size) for _ in range(num_frames)
        )
        self.heads = nn.ModuleList(
            fcn_head(value_channels, value_channels // head_reduction, num_classes, dropout)
            for _ in range(num_frames)
        )
        self.aux_heads = (
            nn.ModuleList(
                fcn_head(layer3_channels, layer3_channels // 4, num_classes, dropout)
                for _ in range(num_frames)
            )
            if aux_head
            else None
        )
        self._train_calls = 0
        self.last_path = num_frames - 1
        self.reset()

    def group_of(self, path: int) -> int:
        """The PSP group computed by sub-network ``path`` (for a group-wise distillation target)."""
        return path % self.psp_groups

    def _check_size(self, h: int, w: int) -> None:
        if h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(f"TDNet needs frames of at least {MIN_SIZE}×{MIN_SIZE} pixels, received {h}×{w}")

    def _check_path(self, path: int) -> int:
        if not 0 <= path < self.num_frames:
            raise ValueError(f"TDNet path must be in 0..{self.num_frames - 1}, got {path}")
        return path

    def _features(self, image: Tensor, subnet: int) -> tuple[Tensor, Tensor]:
        """(layer3, group PSP feature) of ``image`` through sub-network ``subnet``."""
        layer3, layer4 = self.backbones[subnet](image)
        return layer3, self.psp[subnet](layer4)

    def _encoder(self, subnet: int) -> QKVEncoder:
        return cast(QKVEncoder, self.encoders[subnet])

    def _subsample(self, x: Tensor) -> Tensor:
        return x[..., :: self.kv_stride, :: self.kv_stride]

    def _propagate(self, path: int, past: list[tuple[Tensor, Tensor, Tensor]], query: Tensor) -> Tensor:
        """Chained attention over past (query, key, value) triples, oldest first, read by ``query``."""
        steps = cast(nn.ModuleList, self.propagation[path])
        values = past[0][2]
        for j in range(len(past) - 1):
            values = steps[j](past[j][1], values, past[j + 1][0]) + past[j + 1][2]
        return steps[len(past) - 1](past[-1][1], values, query)

    def _decode(self, path: int, value: Tensor, read: Tensor | None) -> Tensor:
        fused = value if read is None else read + value
        return self.heads[path](self.norms[path](fused))

    def _outputs(self, frames: Tensor, path: int, training_outputs: bool) -> dict[str, Tensor]:
        self.check_frames(frames)
        self._check_path(path)
        n, (h, w) = self.num_frames, frames.shape[-2:]
        self._check_size(h, w)
        past = []
        for j in range(n - 1):
            subnet = (path + 1 + j) % n  # frame t-(n-1-j) goes through sub-network path-(n-1-j) mod n
            encoder = self._encoder(subnet)
            z = self._subsample(self._features(frames[:, j], subnet)[1])
            past.append((encoder.query(z), encoder.key(z), encoder.value(z)))
        layer3, z = self._features(frames[:, -1], path)
        query, value = self._encoder(path).query(z), self._encoder(path).value(z)
        out = {"out": resize_to(self._decode(path, value, self._propagate(path, past, query)), (h, w), True)}
        if training_outputs:
            out["sub"] = resize_to(self._decode(path, value, None), (h, w), True)
            if self.aux_heads is not None:
                out["aux"] = resize_to(self.aux_heads[path](layer3), (h, w), True)
        return out

    def forward(self, frames: Tensor, path: int | None = None) -> Tensor:
        """Logits B×C×H×W of the last frame; ``path`` is the sub-network that sees it.

        ``path=None`` takes N−1, as if the clip were the first N frames of a video. Frame
        ``frames[:, j]`` goes through sub-network ``(path − (N−1−j)) mod N``, as in a stream.
        """
        path = self.num_frames - 1 if path is None else path
        return self._outputs(frames, path, training_outputs=False)["out"]

    def forward_train(self, frames: Tensor, path: int | None = None) -> dict[str, Tensor]:
        """``"out"``, ``"sub"`` (the current sub-network alone, no propagation) and ``"aux"``.

        ``path=None`` rotates the current sub-network over calls (call ``k`` uses ``k mod N``, as
        the official ``cnt_iter % path_num``); the path used is kept in :attr:`last_path` and
        :meth:`group_of` gives its PSP group.
        """
        if path is None:
            path = self._train_calls % self.num_frames
            self._train_calls += 1
        self.last_path = self._check_path(path)
        return self._outputs(frames, path, training_outputs=True)

    def reset(self) -> None:
        """Forget the streaming FIFO, e.g. at the start of a new video."""
        self._fifo: list[tuple[Tensor, Tensor, Tensor]] = []
        self._index = 0

    @torch.no_grad()
    def step(self, frame: Tensor) -> Tensor:
        """Streaming inference: logits of ``frame`` (B×3×H×W), the ``k``-th frame since :meth:`reset`.

        Runs sub-network ``k mod N`` only; the subsampled query/key/value of the last N−1 frames are
        kept in a FIFO. Until N−1 frames are seen the output is the sub-network path alone, as in
        the official test code. Once the FIFO is full the output equals ``forward`` on the last N
        frames with ``path = k mod N``.
        """
        if frame.dim() != 4 or frame.shape[1] != 3:
            raise ValueError(f"TDNet.step expects one frame of shape B×3×H×W, received {tuple(frame.shape)}")
        h, w = frame.shape[-2:]
        self._check_size(h, w)
        path = self._index % self.num_frames
        z = self._features(frame, path)[1]
        encoder = self._encoder(path)
        query, value = encoder.query(z), encoder.value(z)
        entry = (self._subsample(query), encoder.key(self._subsample(z)), self._subsample(value))
        if self._fifo and self._fifo[0][2].shape != entry[2].shape:
            raise ValueError(
                f"TDNet.step received a frame of shape {tuple(frame.shape)} that does not match the frames "
                "in its memory; call reset() between videos"
            )
        full = len(self._fifo) == self.num_frames - 1
        logits = self._decode(path, value, self._propagate(path, self._fifo, query) if full else None)
        self._fifo = (self._fifo + [entry])[-(self.num_frames - 1) :]
        self._index += 1
        return resize_to(logits, (h, w), align_corners=True)


def official_key(key: str) -> str | None:
    """Map a key of an official TDNet checkpoint (``model_state`` or a test ``.pkl``) to this module.

    ``pretrained{i}.*`` → ``backbones.{i-1}.*``, ``psp{i}.conv{b}.{0,1}`` → ``psp.{i-1}.convs.{b-1}.{0,1}``,
    ``enc{i}.w_qs``/``w_ks`` (conv, bn, conv) → ``encoders.{i-1}.query``/``key`` ``.{0,1,3}``,
    ``enc{i}.w_vs.0.conv`` → ``encoders.{i-1}.value``, ``layer_norm{i}.ln`` → ``norms.{i-1}``
    (build the model with ``norm_affine_size=(97, 193)``), ``head{i}.conv5``/``auxlayer{i}.conv5`` →
    ``heads.{i-1}``/``aux_heads.{i-1}``. Attention: TD2's ``atn{c}`` → ``propagation.{c-1}.0``; TD4's
    ``atn{c}_{s}`` (keys of sub-network s read while sub-network c sees the current frame) →
    ``propagation.{c-1}.{(s-c-1) mod 4}``, the position of that step in the chain.

    Returns None for ``pretrained{i}.fc.*``, the ImageNet classifier of the official ResNet, unused
    by segmentation. Raises ``KeyError`` for a key of no official TDNet layout (e.g. ``teacher.*``,
    which official training saves without).
    """
    if re.match(r"^pretrained\d+\.fc\.", key):
        return None
    if m := re.match(r"^pretrained(\d+)\.(.*)$", key):
        return f"backbones.{int(m[1]) - 1}.{m[2]}"
    if m := re.match(r"^psp(\d+)\.conv([1-4])\.([01]\..*)$", key):
        return f"psp.{int(m[1]) - 1}.convs.{int(m[2]) - 1}.{m[3]}"
    if m := re.match(r"^enc(\d+)\.w_([qk])s\.(0\.conv|0\.bn|1\.conv)\.(.*)$", key):
        index = {"0.conv": 0, "0.bn": 1, "1.conv": 3}[m[3]]
        name = "query" if m[2] == "q" else "key"
        return f"encoders.{int(m[1]) - 1}.{name}.{index}.{m[4]}"
    if m := re.match(r"^enc(\d+)\.w_vs\.0\.conv\.(.*)$", key):
        return f"encoders.{int(m[1]) - 1}.value.{m[2]}"
    if m := re.match(r"^atn(\d+)\.fc\.0\.conv\.(.*)$", key):
        return f"propagation.{int(m[1]) - 1}.0.proj.{m[2]}"
    if m := re.match(r"^atn(\d+)_(\d+)\.fc\.0\.conv\.(.*)$", key):
        current, source = int(m[1]) - 1, int(m[2]) - 1
        return f"propagation.{current}.{(source - current - 1) % 4}.proj.{m[3]}"
    if m := re.match(r"^layer_norm(\d+)\.ln\.(weight|bias)$", key):
        return f"norms.{int(m[1]) - 1}.{m[2]}"
    if m := re.match(r"^(head|auxlayer)(\d+)\.conv5\.([014]\..*)$", key):
        prefix = "heads" if m[1] == "head" else "aux_heads"
        return f"{prefix}.{int(m[2]) - 1}.{m[3]}"
    raise KeyError(f"{key!r} is not a key of an official TDNet checkpoint")


def official_target(state: Mapping[str, Tensor]) -> Target:
    """TD2-PSP50 or TD4-PSP18 by the number of sub-networks of an official state dict.

    With its classes, its aux heads (training checkpoints) and its 97×193 normalisation maps.
    """
    paths = {int(m[1]) for k in state if (m := re.match(r"^pretrained(\d+)\.", k))}
    architecture = {2: "tdnet_td2_psp50", 4: "tdnet_td4_psp18"}.get(len(paths))
    if architecture is None:
        raise ValueError(f"TDNet checkpoint has {len(paths)} sub-networks; the official models have 2 or 4")
    args: dict[str, Any] = {"aux_head": any(k.startswith("auxlayer") for k in state)}
    if "layer_norm1.ln.weight" in state:
        args["norm_affine_size"] = tuple(int(s) for s in state["layer_norm1.ln.weight"].shape)
    classes = int(shape_of(state, "head1.conv5.4.weight", "TDNet")[0])
    return Target(architecture, classes, len(paths), args)


converter = register_converter(
    Converter(
        "tdnet", "'model_state' with pretrained{i}./psp{i}./enc{i}./head{i}.", official_key, official_target
    )
)


def _cfg(**kwargs: Any) -> ModelConfig:
    return ModelConfig(
        video=True,
        aux_weights={"sub": 0.5, "aux": 0.1},
        unused_parameters=True,
        paper="Hu et al., CVPR 2020",
        paper_url="https://arxiv.org/abs/2004.01800",
        code="https://github.com/feinanshan/TDNet",
        license="MIT",
        **kwargs,
    )


default_cfgs: dict[str, ModelConfig] = {
    "tdnet_td2_psp50": _cfg(num_frames=2, param_count=65.9),
    "tdnet_td4_psp18": _cfg(num_frames=4, param_count=53.2),
    "tdnet_td2_psp18_small": _cfg(num_frames=2, param_count=1.5),
    "tdnet_td4_psp18_small": _cfg(num_frames=4, param_count=3.0),
}


@register_model
def tdnet_td2_psp50(num_classes: int, num_frames: int = 2, **kwargs: Any) -> TDNet:
    """TD2-PSP50: two dilated ResNet-50 sub-networks (deep stem), values 512, head 256.

    Args:
        num_classes: output classes.
        num_frames: 2, one frame per sub-network (anything else is refused).
        **kwargs: further :class:`TDNet` arguments.
    """
    _require_frames("tdnet_td2_psp50", num_frames, 2)
    return TDNet(num_classes, 2, **{"backbone": "resnet50s", "head_reduction": 2, **kwargs})


@register_model
def tdnet_td4_psp18(num_classes: int, num_frames: int = 4, **kwargs: Any) -> TDNet:
    """TD4-PSP18: four dilated ResNet-18 sub-networks, values 512, head 128.

    Args:
        num_classes: output classes.
        num_frames: 4, one frame per sub-network (anything else is refused).
        **kwargs: further :class:`TDNet` arguments.
    """
    _require_frames("tdnet_td4_psp18", num_frames, 4)
    return TDNet(num_classes, 4, **{"backbone": "resnet18", "head_reduction": 4, **kwargs})


_SMALL: dict[str, Any] = {
    "backbone": "resnet18",
    "backbone_channels": (16, 32, 64, 128),
    "key_channels": 16,
    "value_channels": 32,
}


@register_model
def tdnet_td2_psp18_small(num_classes: int, num_frames: int = 2, **kwargs: Any) -> TDNet:
    """CPU-test width of TD2: quarter-width ResNet-18 sub-networks, keys 16, values 32.

    Args:
        num_classes: output classes.
        num_frames: 2, one frame per sub-network (anything else is refused).
        **kwargs: further :class:`TDNet` arguments (they override the small widths).
    """
    _require_frames("tdnet_td2_psp18_small", num_frames, 2)
    return TDNet(num_classes, 2, **{**_SMALL, "head_reduction": 2, **kwargs})


@register_model
def tdnet_td4_psp18_small(num_classes: int, num_frames: int = 4, **kwargs: Any) -> TDNet:
    """CPU-test width of TD4: quarter-width ResNet-18 sub-networks, keys 16, values 32.

    Args:
        num_classes: output classes.
        num_frames: 4, one frame per sub-network (anything else is refused).
        **kwargs: further :class:`TDNet` arguments (they override the small widths).
    """
    _require_frames("tdnet_td4_psp18_small", num_frames, 4)
    return TDNet(num_classes, 4, **{**_SMALL, "head_reduction": 4, **kwargs})


def _require_frames(name: str, num_frames: int, expected: int) -> None:
    """Raise a ConfigError naming ``--data.num_frames`` unless ``num_frames == expected``."""
    if num_frames != expected:
        raise ConfigError(
            "num_frames",
            f"{name!r} has {expected} sub-networks and takes num_frames={expected}, "
            f"got num_frames={num_frames} (on the command line: --data.num_frames {expected})",
        )
