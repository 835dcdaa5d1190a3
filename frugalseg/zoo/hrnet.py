"""HRNetV2 semantic segmentation (HRNet-Semantic-Segmentation ``seg_hrnet.py``) on timm's HRNet.

timm's ``features_only`` model with ``feature_location=''`` returns the four raw branches
(/4, /8, /16, /32) instead of its classification ``incre_modules``. The HRNetV2 head upsamples
branches 2–4 to branch 1 (bilinear, align_corners=False), concatenates them and classifies with
``last_layer`` = 1×1 conv (bias) + BN + ReLU + 1×1 conv (bias). Logits at 1/4 are resized to the
input size. timm fuses the branches with nearest upsampling where the official backbone
interpolates bilinearly; its fusion upsamplers are switched to bilinear (``fusion``), so official
HRNet-Seg weights give the official model's outputs (on frames padded to a multiple of 32, where
a scale factor and the official interpolation to the branch size agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import timm
import torch
from torch import Tensor, nn

from frugalseg.zoo._base import ImageStudent, feature_info, pad_to_multiple, resize_to
from frugalseg.zoo._convert import Converter, Target, register_converter, shape_of
from frugalseg.zoo._registry import ModelConfig, PublishedWeights, register_model

_STRIDE = 32


class HRNetV2(ImageStudent):
    """HRNetV2 image student: timm's HRNet branches, concatenated at 1/4 and classified.

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        backbone: timm HRNet name (``hrnet_w48``, ``hrnet_w18``, ``hrnet_w18_small``).
        fusion: ``"bilinear"`` (official HRNet-Seg fusion upsampling) or ``"nearest"`` (timm's).
    """

    def __init__(
        self, num_classes: int, num_frames: int = 1, backbone: str = "hrnet_w48", fusion: str = "bilinear"
    ):
        super().__init__(num_classes, num_frames)
        if fusion not in ("bilinear", "nearest"):
            raise ValueError(f"fusion must be 'bilinear' (official) or 'nearest' (timm), got {fusion!r}")
        self.backbone = timm.create_model(
            backbone, features_only=True, feature_location="", out_indices=(1, 2, 3, 4), pretrained=False
        )
        if fusion == "bilinear":
            _bilinear_fusion(self.backbone)
        reductions = feature_info(self.backbone).reduction()
        if list(reductions) != [4, 8, 16, 32]:
            raise ValueError(f"timm {backbone!r} has branch strides {reductions}, expected [4, 8, 16, 32]")
        width = sum(feature_info(self.backbone).channels())
        self.last_layer = nn.Sequential(
            nn.Conv2d(width, width, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, num_classes, 1),
        )

    def segment(self, image: Tensor) -> Tensor:
        """Logits at the image size.

        The image is zero-padded to a multiple of 32 (the fusion upsamples by powers of two),
        classified at 1/4, upsampled and cropped back.
        """
        h, w = image.shape[-2:]
        padded = pad_to_multiple(image, _STRIDE)
        branches = self.backbone(padded)
        size = branches[0].shape[-2:]
        fused = torch.cat([branches[0]] + [resize_to(b, size) for b in branches[1:]], dim=1)
        return resize_to(self.last_layer(fused), padded.shape[-2:])[..., :h, :w]


def _bilinear_fusion(backbone: nn.Module) -> None:
    """Replace timm's nearest fusion upsamplers by bilinear ones (align_corners=False), as official."""
    for name, module in list(backbone.named_modules()):
        if isinstance(module, nn.Upsample) and module.mode == "nearest":
            parent_name, _, child = name.rpartition(".")
            upsample = nn.Upsample(scale_factor=module.scale_factor, mode="bilinear", align_corners=False)
            setattr(backbone.get_submodule(parent_name), child, upsample)


def _cfg(**kwargs: Any) -> ModelConfig:
    return ModelConfig(
        paper="Wang et al., TPAMI 2020",
        paper_url="https://arxiv.org/abs/1908.07919",
        code="https://github.com/HRNet/HRNet-Semantic-Segmentation",
        license="MIT",
        **kwargs,
    )


default_cfgs: dict[str, ModelConfig] = {
    "hrnetv2_w48": _cfg(param_count=65.9),
    "hrnetv2_w18": _cfg(param_count=9.6),
    "hrnetv2_w18_small": _cfg(
        param_count=1.5,
        weights={
            "streets-hrnetv2-w18s": PublishedWeights(
                file="streets-hrnetv2-w18s-2ad92500.safetensors",
                sha256="2ad92500c33635903597f4137830da930aec612cc8e49479e1fd6bab5f1b63b3",
            )
        },
    ),
}


@register_model
def hrnetv2_w48(num_classes: int, num_frames: int = 1, **kwargs: Any) -> HRNetV2:
    """HRNetV2-W48 (branches 48/96/192/384, 720-channel head), the paper's Cityscapes model.

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further :class:`HRNetV2` arguments (``fusion``).
    """
    return HRNetV2(num_classes, num_frames, backbone="hrnet_w48", **kwargs)


@register_model
def hrnetv2_w18(num_classes: int, num_frames: int = 1, **kwargs: Any) -> HRNetV2:
    """HRNetV2-W18 (branches 18/36/72/144, 270-channel head).

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further :class:`HRNetV2` arguments (``fusion``).
    """
    return HRNetV2(num_classes, num_frames, backbone="hrnet_w18", **kwargs)


@register_model
def hrnetv2_w18_small(num_classes: int, num_frames: int = 1, **kwargs: Any) -> HRNetV2:
    """HRNetV2-W18-Small, timm ``hrnet_w18_small`` (v1 small: branches 16/32/64/128, 240-channel head).

    Args:
        num_classes: output classes.
        num_frames: frames per clip (1: an image student).
        **kwargs: further :class:`HRNetV2` arguments (``fusion``).
    """
    return HRNetV2(num_classes, num_frames, backbone="hrnet_w18_small", **kwargs)


#: Top-level modules of the official HRNet backbone (timm uses the same names).
_OFFICIAL_BACKBONE = frozenset(
    ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "transition2", "transition3")
    + ("stage2", "stage3", "stage4")
)


def official_key(key: str) -> str | None:
    """This model's state-dict key for a key of an official HRNet-Semantic-Segmentation checkpoint.

    Official training wraps the network in ``FullModel(model, loss)``, so its keys read
    ``model.conv1.weight``, ``model.stage4.2.fuse_layers.0.3.0.weight``, ``model.last_layer.3.weight``;
    the prefix is optional here. The backbone modules (``conv1``, ``bn1``, ``conv2``, ``bn2``,
    ``layer1``, ``transition{1,2,3}``, ``stage{2,3,4}``) have timm's names under ``backbone.``, and
    ``last_layer.{0,1,3}`` keeps its name. ``loss.*`` (the class weights of the criterion) gives None.
    Any other key raises a KeyError naming it.
    """
    if key.startswith("loss."):
        return None
    key = key.removeprefix("model.")
    top = key.split(".", 1)[0]
    if top == "last_layer":
        return key
    if top in _OFFICIAL_BACKBONE:
        return f"backbone.{key}"
    raise KeyError(f"not a key of an official HRNet-Seg checkpoint: {key!r}")


#: Branch width of the official checkpoint's first transition → zoo model.
_WIDTHS = {48: "hrnetv2_w48", 18: "hrnetv2_w18", 16: "hrnetv2_w18_small"}


def official_target(state: Mapping[str, Tensor]) -> Target:
    """The zoo model an official HRNet-Seg state dict describes.

    Its width comes from ``transition1``, its classes from ``last_layer.3``.
    """
    state = {k.removeprefix("model."): v for k, v in state.items()}
    width = int(shape_of(state, "transition1.0.0.weight", "HRNet-Seg")[0])
    if width not in _WIDTHS:
        raise ValueError(f"HRNet branch width {width} is not one of the zoo's ({sorted(_WIDTHS)})")
    return Target(_WIDTHS[width], int(shape_of(state, "last_layer.3.weight", "HRNet-Seg")[0]), 1)


converter = register_converter(
    Converter(
        "hrnet", "HRNet-Semantic-Segmentation (FullModel 'model.' prefix)", official_key, official_target
    )
)
