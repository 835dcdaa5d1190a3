"""STM — Space-Time Memory networks for video object segmentation (Oh et al., ICCV 2019).

Follows the official inference model (``seoungwugoh/STM``, ``model.py``): a memory encoder (ResNet
to layer3 whose stem also reads the object's mask and the union of the other objects' masks) and a
query encoder (same trunk, separate weights, RGB only), 3×3 key/value projections (128 / 512 for the
paper size), a memory read that lets every query pixel attend over all memory pixels of all memory
frames (softmax over T·H·W, scaled by 1/sqrt(key channels)), a refinement decoder from 1/16 to 1/4
(``convFM``, pre-activation residual blocks, two ``Refine`` stages), one fore/background decoder run
per object and soft aggregation of the objects into background + object logits.

STM is the exception to the ``Student`` contract: it segments *objects* given by masks on the first
frame, not classes. ``num_classes`` is ``max_objects + 1`` (background first). Frames are
ImageNet-normalised like every frugalseg input (the official encoders normalise [0, 1] RGB
themselves; their ``mean``/``std`` buffers therefore carry no weight here, see :func:`official_key`).

Memory schedule (official ``eval_DAVIS.py``, ``Mem_every=5``): to segment frame t the memory holds
frame 0 and every 5th frame before t, each with its soft estimate (the given masks for frame 0),
plus frame t−1. :meth:`STM.forward` runs it over a clip; :meth:`STM.reset` + :meth:`STM.step` run
the same schedule one frame at a time, each step encoding one memory frame and one query frame.

Export: ``torch.export`` takes :meth:`STM.forward` for a fixed clip length (the frame loop unrolls);
TorchScript does not (the memory bank is a Python dataclass holding a growing list). Frames are
zero-padded at the bottom/right to a multiple of 16 (the official code pads both sides equally).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalseg.zoo._attention import attention
from frugalseg.zoo._base import Student, pad_to_multiple
from frugalseg.zoo._convert import Converter, Target, register_converter
from frugalseg.zoo._registry import ModelConfig, register_model

STRIDE = 16
PROB_EPS = 1e-7


class ResBlock(nn.Module):
    """Pre-activation residual block with biased 3×3 convs: ``x + conv2(relu(conv1(relu(x))))``.

    Args:
        channels: input and output channels.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` plus its residual branch."""
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Refine(nn.Module):
    """One decoder stage: project the encoder skip, add the upsampled coarser map, refine.

    Args:
        skip_channels: channels of the encoder skip feature.
        channels: width of the decoder.
    """

    def __init__(self, skip_channels: int, channels: int):
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_channels, channels, 3, padding=1)
        self.skip_res = ResBlock(channels)
        self.out_res = ResBlock(channels)

    def forward(self, skip: Tensor, coarse: Tensor) -> Tensor:
        """The refined sum of the projected ``skip`` and the upsampled ``coarse`` map."""
        s = self.skip_res(self.skip_conv(skip))
        up = F.interpolate(coarse, size=s.shape[-2:], mode="bilinear", align_corners=False)
        return self.out_res(s + up)


class Decoder(nn.Module):
    """Memory read output (1/16) + query skips (1/8, 1/4) → object/background logits at 1/4.

    Args:
        in_channels: channels of the memory read concatenated with the query value.
        skip3_channels: channels of the query encoder's 1/8 feature.
        skip2_channels: channels of the query encoder's 1/4 feature.
        channels: width of the decoder (256).
    """

    def __init__(self, in_channels: int, skip3_channels: int, skip2_channels: int, channels: int = 256):
        super().__init__()
        self.fuse = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.res = ResBlock(channels)
        self.refine3 = Refine(skip3_channels, channels)
        self.refine2 = Refine(skip2_channels, channels)
        self.pred = nn.Conv2d(channels, 2, 3, padding=1)

    def forward(self, read: Tensor, r3: Tensor, r2: Tensor) -> Tensor:
        """Logits at 1/4 from the memory read and the encoder skips ``r3`` and ``r2``."""
        m4 = self.res(self.fuse(read))
        m2 = self.refine2(r2, self.refine3(r3, m4))
        return self.pred(F.relu(m2))


class KeyValue(nn.Module):
    """3×3 key and value projections of layer3 features (biased convs, no normalisation).

    Args:
        in_channels: channels of the layer3 features.
        key_channels: key channels (128).
        value_channels: value channels (512).
    """

    def __init__(self, in_channels: int, key_channels: int, value_channels: int):
        super().__init__()
        self.key = nn.Conv2d(in_channels, key_channels, 3, padding=1)
        self.value = nn.Conv2d(in_channels, value_channels, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Key and value maps of ``x``."""
        return self.key(x), self.value(x)


def _one_channel_like(conv: nn.Conv2d) -> nn.Conv2d:
    """A conv without bias from one input channel, of ``conv``'s width, kernel, stride and padding."""
    # _ConvNd types these for any dimension (tuple[int, ...]); a Conv2d's are pairs.
    kernel, stride = cast(tuple[int, int], conv.kernel_size), cast(tuple[int, int], conv.stride)
    padding = cast(tuple[int, int] | str, conv.padding)
    return nn.Conv2d(1, conv.out_channels, kernel, stride, padding, bias=False)


class Encoder(nn.Module):
    """A timm ResNet trunk up to layer3 (strides 4, 8, 16).

    Args:
        backbone: timm ResNet name with a single-conv stem (``resnet18``/``34``/``50``/``101``).
        with_masks: add the memory encoder's mask and other-objects convs, whose outputs are added
            to the RGB stem conv before its BatchNorm.
    """

    def __init__(self, backbone: str, with_masks: bool):
        super().__init__()
        net = timm.create_model(backbone, pretrained=False)
        conv1 = getattr(net, "conv1", None)
        if not isinstance(conv1, nn.Conv2d) or not hasattr(net, "layer3"):
            raise ValueError(
                f"STM needs a timm ResNet with a single-conv stem (resnet18/34/50/101), got {backbone!r}"
            )
        self.conv1 = conv1
        self.bn1, self.act, self.maxpool = (net.get_submodule(name) for name in ("bn1", "act1", "maxpool"))
        self.layer1, self.layer2, self.layer3 = (net.get_submodule(f"layer{i}") for i in (1, 2, 3))
        # A timm ResNet (not features_only) lists its feature outputs as dicts.
        info = cast(list[dict[str, Any]], net.feature_info)
        channels = {entry["module"]: entry["num_chs"] for entry in info}
        self.channels = (channels["layer3"], channels["layer2"], channels["layer1"])
        if with_masks:
            self.mask_conv = _one_channel_like(conv1)
            self.other_conv = _one_channel_like(conv1)

    def forward(self, stem: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(layer3, layer2, layer1) features from the stem conv's output (before BatchNorm)."""
        r2 = self.layer1(self.maxpool(self.act(self.bn1(stem))))
        r3 = self.layer2(r2)
        return self.layer3(r3), r3, r2


def memory_read(memory_key: Tensor, memory_value: Tensor, query_key: Tensor) -> Tensor:
    """Every query pixel reads a softmax-weighted average of all memory values.

    ``memory_key`` N×Ck×M and ``memory_value`` N×Cv×M (M = T·h·w memory pixels), ``query_key``
    N×Ck×h×w. Weights ``softmax_M(M_kᵀ Q_k / sqrt(Ck))`` (over the memory pixels, for each query
    pixel); returns N×Cv×h×w. Runs as scaled dot-product attention (queries = query pixels,
    keys/values = memory pixels), so the M×hw weights are never held.
    """
    n, ck, h, w = query_key.shape
    read = attention(
        query_key.flatten(2).transpose(1, 2),  # N×hw×Ck
        memory_key.transpose(1, 2),  # N×M×Ck
        memory_value.transpose(1, 2),  # N×M×Cv
        scale=1.0 / math.sqrt(ck),
    )
    return read.transpose(1, 2).reshape(n, memory_value.shape[1], h, w)


def soft_aggregate(probs: Tensor) -> Tensor:
    """Background + object logits B×(O+1)×H×W from independent object probabilities B×O×H×W.

    Background probability is Π_o (1 − p_o); each channel is clamped to [1e-7, 1 − 1e-7] and turned
    into its logit, so a softmax over channels gives the merged probabilities. An object with
    probability 0 (a padding slot) keeps a logit of about −16 and never wins.
    """
    background = torch.prod(1 - probs, dim=1, keepdim=True)
    merged = torch.cat([background, probs], dim=1).clamp(PROB_EPS, 1 - PROB_EPS)
    return torch.log(merged / (1 - merged))


def masks_from_ids(ids: Tensor, num_objects: int) -> Tensor:
    """B×H×W object-id maps (0 background, 255 void) → B×O×H×W float one-hot masks of objects 1..O."""
    objects = torch.arange(1, num_objects + 1, device=ids.device).view(1, -1, 1, 1)
    return (ids.unsqueeze(1) == objects).float()


@dataclass
class MemoryBank:
    """Streaming state: permanent memory (frame 0 and every ``every``-th frame) and the last frame.

    Each memory entry is (key B×O×Ck×h×w, value B×O×Cv×h×w).

    Attributes:
        valid: B×O, the object slots in use.
        size: (H, W) of the video's frames.
        previous: the last frame with its soft object probabilities, encoded into memory only when
            the next frame arrives.
        every: frames ``0, every, 2·every, …`` stay in memory for good.
        index: frames segmented since the first.
        permanent: the permanent memory entries.
    """

    valid: Tensor
    size: tuple[int, int]
    previous: tuple[Tensor, Tensor]
    every: int
    index: int = 0
    permanent: list[tuple[Tensor, Tensor]] = field(default_factory=list)


class STM(Student):
    """STM: memory encoder + query encoder + memory read + decoder, several objects at once.

    Args:
        num_classes: ``max_objects + 1`` (channel 0 is the background).
        num_frames: frames of a training clip (3 in the paper); any clip length can be segmented.
        backbone: timm ResNet name of both encoders (``resnet50`` in the paper).
        key_channels: memory and query key channels (128).
        value_channels: memory and query value channels (512).
        decoder_channels: width of the refinement decoder (256).
        memory_every: frames ``0, k, 2k, …`` stay in memory for good (5 in the official evaluation).
    """

    def __init__(
        self,
        num_classes: int = 11,
        num_frames: int = 3,
        backbone: str = "resnet50",
        key_channels: int = 128,
        value_channels: int = 512,
        decoder_channels: int = 256,
        memory_every: int = 5,
    ):
        if num_classes < 2:
            raise ValueError(f"STM needs num_classes = max_objects + 1 >= 2, got {num_classes}")
        if memory_every < 1:
            raise ValueError(f"memory_every must be >= 1, got {memory_every}")
        super().__init__(num_classes, num_frames)
        self.memory_every = memory_every
        self.memory_encoder = Encoder(backbone, with_masks=True)
        self.query_encoder = Encoder(backbone, with_masks=False)
        c4, c3, c2 = self.query_encoder.channels
        self.memory_kv = KeyValue(c4, key_channels, value_channels)
        self.query_kv = KeyValue(c4, key_channels, value_channels)
        self.decoder = Decoder(2 * value_channels, c3, c2, decoder_channels)
        self._stream: MemoryBank | None = None

    @property
    def max_objects(self) -> int:
        """Most objects one video may hold (``num_classes - 1``)."""
        return self.num_classes - 1

    def _check_masks(self, frame: Tensor, masks: Tensor, num_objects: Tensor | None) -> Tensor:
        """Validate B×O×H×W masks against a B×3×H×W frame; returns the B×O validity of each object slot."""
        if masks.dim() != 4 or masks.shape[0] != frame.shape[0] or masks.shape[-2:] != frame.shape[-2:]:
            raise ValueError(
                f"STM expects object masks B×O×H×W matching frames B×3×H×W = {tuple(frame.shape)}, "
                f"received {tuple(masks.shape)}"
            )
        objects = masks.shape[1]
        if not 1 <= objects <= self.max_objects:
            raise ValueError(
                f"STM takes 1 to {self.max_objects} objects (num_classes - 1), received {objects}"
            )
        if num_objects is None:
            return torch.ones(masks.shape[:2], dtype=torch.bool, device=masks.device)
        slots = torch.arange(objects, device=masks.device)
        return slots.view(1, -1) < num_objects.to(masks.device).view(-1, 1)

    @staticmethod
    def _check_frame(frame: Tensor, what: str) -> None:
        if frame.dim() != 4 or frame.shape[1] != 3 or not frame.is_floating_point():
            raise ValueError(
                f"STM {what} expects ImageNet-normalised float frames B×3×H×W, received "
                f"{frame.dtype} {tuple(frame.shape)}"
            )

    def encode_memory(self, frame: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """Memory key B×O×Ck×h×w and value B×O×Cv×h×w of one frame with soft object masks B×O×H×W.

        Each object is encoded with its own mask and the (clamped) union of the others; the RGB stem
        conv is linear, so it runs once per frame and is shared by the objects.
        """
        b, o = masks.shape[:2]
        masks = masks.to(frame.dtype)  # a true-precision run's (bf16-true): the frame's dtype is the weights'
        frame, masks = pad_to_multiple(frame, STRIDE), pad_to_multiple(masks, STRIDE)
        others = (masks.sum(1, keepdim=True) - masks).clamp(0, 1)
        enc = self.memory_encoder
        stem = enc.conv1(frame).repeat_interleave(o, dim=0)
        stem = (
            stem + enc.mask_conv(masks.flatten(0, 1)[:, None]) + enc.other_conv(others.flatten(0, 1)[:, None])
        )
        key, value = self.memory_kv(enc(stem)[0])
        return key.unflatten(0, (b, o)), value.unflatten(0, (b, o))

    def segment(self, frame: Tensor, memory_key: Tensor, memory_value: Tensor, valid: Tensor) -> Tensor:
        """Background + object logits B×(O+1)×H×W of ``frame`` (B×3×H×W) given a memory.

        ``memory_key`` B×O×Ck×T×h×w and ``memory_value`` B×O×Cv×T×h×w (T memory frames), ``valid``
        B×O marks the object slots in use (others get probability 0).
        """
        b, o = valid.shape
        h, w = frame.shape[-2:]
        r4, r3, r2 = self.query_encoder(self.query_encoder.conv1(pad_to_multiple(frame, STRIDE)))
        query_key, query_value = self.query_kv(r4)
        read = memory_read(
            memory_key.flatten(3).flatten(0, 1),
            memory_value.flatten(3).flatten(0, 1),
            query_key.repeat_interleave(o, dim=0),
        )
        fused = torch.cat([read, query_value.repeat_interleave(o, dim=0)], dim=1)
        logits = self.decoder(fused, r3.repeat_interleave(o, dim=0), r2.repeat_interleave(o, dim=0))
        logits = F.interpolate(logits, scale_factor=4.0, mode="bilinear", align_corners=False)
        probs = torch.softmax(logits[..., :h, :w], dim=1)[:, 1].unflatten(0, (b, o))
        return soft_aggregate(probs * valid[:, :, None, None])

    def _start(self, frame: Tensor, masks: Tensor, num_objects: Tensor | None) -> MemoryBank:
        valid = self._check_masks(frame, masks, num_objects)
        masks = masks.float() * valid[:, :, None, None]
        return MemoryBank(valid, (frame.shape[-2], frame.shape[-1]), (frame, masks), self.memory_every)

    def _advance(self, bank: MemoryBank, frame: Tensor) -> Tensor:
        """Segment the next frame: memorise the previous one, read permanent + previous, update the bank."""
        if tuple(frame.shape[-2:]) != bank.size or frame.shape[0] != bank.valid.shape[0]:
            raise ValueError(
                f"STM received a frame of shape {tuple(frame.shape)} that does not match the video's "
                f"{bank.valid.shape[0]}×3×{bank.size[0]}×{bank.size[1]}; call reset() between videos"
            )
        entry = self.encode_memory(*bank.previous)
        memory = [*bank.permanent, entry]
        keys = torch.stack([k for k, _ in memory], dim=3)
        values = torch.stack([v for _, v in memory], dim=3)
        logits = self.segment(frame, keys, values, bank.valid)
        if bank.index % bank.every == 0:
            bank.permanent.append(entry)
        bank.index += 1
        probs = torch.softmax(logits, dim=1)[:, 1:] * bank.valid[:, :, None, None]
        bank.previous = (frame, probs.detach())
        return logits

    def forward(
        self, frames: Tensor, masks: Tensor | None = None, num_objects: Tensor | None = None
    ) -> Tensor:
        """Logits B×(T−1)×(O+1)×H×W of frames 1…T−1 of a clip B×T×3×H×W from frame 0's masks B×O×H×W.

        ``num_objects`` (B, long) says how many of the O mask slots each sample uses (default all).
        The soft estimate of each frame is memorised detached, as in the reproduced STM training.
        """
        if masks is None:
            raise ValueError(
                "STM is a video object segmentation model: forward(frames, masks) needs the "
                "object masks B×O×H×W of the first frame"
            )
        if frames.dim() != 5 or frames.shape[1] < 2:
            raise ValueError(
                f"STM.forward expects a clip B×T×3×H×W with T >= 2, received {tuple(frames.shape)}"
            )
        self._check_frame(frames[:, 0], "forward")
        bank = self._start(frames[:, 0], masks, num_objects)
        return torch.stack([self._advance(bank, frames[:, t]) for t in range(1, frames.shape[1])], dim=1)

    def reset(self, first_frame: Tensor, first_masks: Tensor, num_objects: Tensor | None = None) -> None:
        """Start a video: its first frame B×3×H×W and the object masks B×O×H×W given on it."""
        self._check_frame(first_frame, "reset")
        self._stream = self._start(first_frame, first_masks, num_objects)

    @torch.no_grad()
    def step(self, frame: Tensor) -> Tensor:
        """Probabilities B×(O+1)×H×W (background first) of the next frame of the video since :meth:`reset`."""
        if self._stream is None:
            raise RuntimeError("STM.step needs reset(first_frame, first_masks) first")
        self._check_frame(frame, "step")
        return torch.softmax(self._advance(self._stream, frame), dim=1)


_ENCODER_PARTS = {
    "conv1_m": "mask_conv",
    "conv1_o": "other_conv",
    "res2": "layer1",
    "res3": "layer2",
    "res4": "layer3",
    "conv1": "conv1",
    "bn1": "bn1",
}
_DECODER_PARTS = {"convFM": "fuse", "ResMM": "res", "RF3": "refine3", "RF2": "refine2", "pred2": "pred"}
_REFINE_PARTS = {"convFS": "skip_conv", "ResFS": "skip_res", "ResMM": "out_res"}
_TOP = {
    "Encoder_M": "memory_encoder",
    "Encoder_Q": "query_encoder",
    "KV_M_r4": "memory_kv",
    "KV_Q_r4": "query_kv",
    "Decoder": "decoder",
}


def official_key(key: str) -> str | None:
    """This model's state-dict key for a key of the official STM checkpoint (``STM_weights.pth``).

    The ``module.`` prefix of the official ``DataParallel`` wrapper is optional. The encoders'
    ``mean``/``std`` buffers give None: they are ImageNet constants that frugalseg applies when it
    loads frames. Any other key this layout does not have raises a KeyError naming it.
    """
    unknown = KeyError(f"not a key of the official STM checkpoint: {key!r}")
    parts = key.removeprefix("module.").split(".")
    top = _TOP.get(parts[0])
    if top is None or len(parts) < 2:
        raise unknown
    rest = parts[1:]
    if top.endswith("_encoder"):
        if rest in (["mean"], ["std"]):
            return None
        if rest[0] not in _ENCODER_PARTS or (top == "query_encoder" and rest[0] in ("conv1_m", "conv1_o")):
            raise unknown
        rest = [_ENCODER_PARTS[rest[0]], *rest[1:]]
    elif top.endswith("_kv"):
        if rest[0] not in ("Key", "Value"):
            raise unknown
        rest = [rest[0].lower(), *rest[1:]]
    else:
        if rest[0] not in _DECODER_PARTS:
            raise unknown
        if rest[0] in ("RF3", "RF2"):
            if len(rest) < 2 or rest[1] not in _REFINE_PARTS:
                raise unknown
            rest = [rest[0], _REFINE_PARTS[rest[1]], *rest[2:]]
        rest = [_DECODER_PARTS[rest[0]], *rest[1:]]
    return ".".join([top, *rest])


def official_target(state: Mapping[str, Tensor]) -> Target:
    """``stm_r50`` with background + 10 objects, as the official evaluation (its ``K = 11``)."""
    return Target("stm_r50", 11, None)


converter = register_converter(
    Converter("stm", "DataParallel 'module.' state dict", official_key, official_target)
)


def _cfg(**kwargs: Any) -> ModelConfig:
    return ModelConfig(
        num_frames=3,
        video=True,
        task="vos",
        num_classes=11,
        paper="Oh et al., ICCV 2019",
        paper_url="https://arxiv.org/abs/1904.00607",
        code="https://github.com/seoungwugoh/STM",
        license="CC BY-NC-SA 4.0 (non-commercial)",
        **kwargs,
    )


default_cfgs: dict[str, ModelConfig] = {
    "stm_r50": _cfg(param_count=38.9),
    "stm_r18": _cfg(param_count=6.2),
}


@register_model
def stm_r50(num_classes: int = 11, num_frames: int = 3, **kwargs: Any) -> STM:
    """Paper size: ResNet-50 encoders, keys 128, values 512, decoder 256.

    Args:
        num_classes: objects + 1 (background first; 11 as the official evaluation).
        num_frames: frames of a training clip (3 in the paper).
        **kwargs: further :class:`STM` arguments (``memory_every`` …).
    """
    return STM(num_classes, num_frames, backbone="resnet50", **kwargs)


@register_model
def stm_r18(num_classes: int = 11, num_frames: int = 3, **kwargs: Any) -> STM:
    """Small CPU-friendly width: ResNet-18 encoders, keys 32, values 64, decoder 32.

    Args:
        num_classes: objects + 1 (background first).
        num_frames: frames of a training clip (3).
        **kwargs: further :class:`STM` arguments (they override the small widths).
    """
    options: dict[str, Any] = {"key_channels": 32, "value_channels": 64, "decoder_channels": 32}
    options.update(kwargs)
    return STM(num_classes, num_frames, backbone="resnet18", **options)
