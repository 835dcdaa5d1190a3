"""QualityNet: the quality network of EVA-VOS (paper 002, section 2.2), whose embedding selects frames.

Two image encoders in parallel (timm ``resnet18`` by default, ending in global average pooling),
one for the frame (ImageNet-normalised RGB) and one for the object's mask (a 0/1 mask repeated to
three channels, as the official code does so that ImageNet weights fit), are concatenated (1024-d
for ResNet-18), then Dropout(0.5) and a linear layer classify the mask's quality (its J against the
truth) into ``bins`` bins of width ``1 / bins`` (`quality_bins`). Frame selection reads only the
concatenated embedding (`QualityNet.embed`), the 20-way head is what training needs.

Inputs are square: frame and mask are resized to ``input_size`` (224 in the paper) by
`prepare_inputs`, frames by area averaging (bilinear when enlarging), masks by area averaging
rounded back to 0/1. Saved and loaded here as a plain safetensors state dict, its settings (encoder,
bins, input size) and the caller's facts (what it was trained on) in the file's metadata; loading
never unpickles. `load_encoder_weights` starts both branches from a user's timm weights file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import timm
import torch
from safetensors.torch import save
from torch import Tensor, nn

from frugalseg.data.io import write_bytes_atomic
from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.errors import ConfigError, WeightsError
from frugalseg.zoo._hub import load_encoder_weights as hub_load_encoder_weights
from frugalseg.zoo._loading import load_state_dict_strictly, read_tagged_safetensors

FORMAT = "frugalseg-quality-net"
DEFAULT_ENCODER = "resnet18"
DEFAULT_BINS = 20
DEFAULT_INPUT_SIZE = 224
#: The smallest input a ResNet (stride 32) still pools to one feature.
MIN_INPUT_SIZE = 32
# J within this many bins below a bin's lower edge counts as on it, so J = k/bins held in float32
# (0.35 is stored as 0.3499999940) lands in bin k; J from pixel counts never comes that close.
_EPS = 1e-5


def quality_bins(j: Tensor, bins: int = DEFAULT_BINS) -> Tensor:
    """The quality bin of each J (IoU) value: bins of width ``1 / bins``, J = 1 in the last bin (int64).

    Args:
        j: J values in 0…1.
        bins: number of bins.
    """
    return torch.clamp(torch.floor(j.double() * bins + _EPS), 0, bins - 1).long()


def bin_centres(bins: int = DEFAULT_BINS) -> Tensor:
    """The J at the middle of each bin (the predicted quality of a bin), float32.

    Args:
        bins: number of bins.
    """
    return (torch.arange(bins, dtype=torch.float32) + 0.5) / bins


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """A frame as size×size uint8 (area averaging when shrinking, bilinear otherwise).

    Args:
        frame: H×W×3 uint8 RGB.
        size: side of the square result.
    """
    shrink = frame.shape[0] >= size and frame.shape[1] >= size
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(frame), (size, size), interpolation=interpolation)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A mask as size×size uint8 0/1: area-averaged, then ≥ 0.5 is object.

    Args:
        mask: H×W bool (or 0/1) mask of one object.
        size: side of the square result.
    """
    small = cv2.resize(np.asarray(mask, np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return (small >= 0.5).astype(np.uint8)


def batch_inputs(frames: np.ndarray, masks: np.ndarray) -> tuple[Tensor, Tensor]:
    """Network inputs from resized uint8 arrays: frames N×S×S×3 → N×3×S×S normalised, masks N×S×S → N×1×S×S.

    Args:
        frames: RGB frames, already resized (`resize_frame`).
        masks: 0/1 object masks, already resized (`resize_mask`).
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    m = torch.from_numpy(np.ascontiguousarray(masks)).float().unsqueeze(1)
    return (x - mean) / std, m


def prepare_inputs(
    frame: np.ndarray, mask: np.ndarray, input_size: int = DEFAULT_INPUT_SIZE
) -> tuple[Tensor, Tensor]:
    """One frame and object mask as network inputs: 3×S×S (normalised) and 1×S×S (0/1).

    Args:
        frame: H×W×3 uint8 RGB.
        mask: H×W bool mask of one object.
        input_size: side S of the network's square input.
    """
    frames, masks = batch_inputs(resize_frame(frame, input_size)[None], resize_mask(mask, input_size)[None])
    return frames[0], masks[0]


def image_encoder(name: str) -> nn.Module:
    """The timm model ``name`` without its classifier (ending in global pooling), random weights.

    Args:
        name: a timm model name.

    Raises:
        ConfigError: an unknown timm model.
    """
    if not timm.is_model(name):
        raise ConfigError("encoder", f"unknown timm model {name!r}; QNet's is {DEFAULT_ENCODER!r}")
    return timm.create_model(name, pretrained=False, num_classes=0)


class QualityNet(nn.Module):
    """Frame B×3×S×S and object mask B×1×S×S → logits of the mask's quality bin (B×bins).

    Args:
        encoder: timm model name of both branches (``resnet18`` in the paper); built without its
            classifier, so it ends in global average pooling; never downloaded.
        bins: quality bins (20 in the paper: J bins of width 0.05).
        input_size: side of the square inputs the network is fed (224 in the paper).
        dropout: dropout before the linear head.
    """

    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        bins: int = DEFAULT_BINS,
        input_size: int = DEFAULT_INPUT_SIZE,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if bins < 2:
            raise ConfigError("bins", f"quality needs at least 2 bins, got {bins}")
        if input_size < MIN_INPUT_SIZE:
            raise ConfigError("input_size", f"must be ≥ {MIN_INPUT_SIZE} pixels, got {input_size}")
        self.encoder, self.bins, self.input_size = encoder, bins, input_size
        self.frame_encoder = image_encoder(encoder)
        self.mask_encoder = image_encoder(encoder)
        self.embedding_size = 2 * cast(int, self.frame_encoder.num_features)  # timm models set it
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.embedding_size, bins)

    def _check(self, frames: Tensor, masks: Tensor) -> None:
        """Raise a ValueError unless frames are B×3×S×S and masks B×1×S×S with S = ``input_size``."""
        size = self.input_size
        if frames.ndim != 4 or tuple(frames.shape[1:]) != (3, size, size):
            raise ValueError(
                f"QualityNet expects frames of shape B×3×{size}×{size}, received "
                f"{'×'.join(map(str, frames.shape))} (resize with prepare_inputs)"
            )
        if tuple(masks.shape) != (frames.shape[0], 1, size, size):
            raise ValueError(
                f"QualityNet expects masks of shape {frames.shape[0]}×1×{size}×{size} (one per frame), "
                f"received {'×'.join(map(str, masks.shape))}"
            )

    def embed(self, frames: Tensor, masks: Tensor) -> Tensor:
        """The concatenated frame and mask embeddings (B×``embedding_size``), what frame selection reads.

        Args:
            frames: B×3×S×S ImageNet-normalised RGB.
            masks: B×1×S×S object masks in {0, 1}.
        """
        self._check(frames, masks)
        masks = masks.to(frames.dtype).expand(-1, 3, -1, -1)
        return torch.cat([self.frame_encoder(frames), self.mask_encoder(masks)], 1)

    def forward(self, frames: Tensor, masks: Tensor) -> Tensor:
        """Logits of the quality bins (B×bins).

        Args:
            frames: B×3×S×S ImageNet-normalised RGB.
            masks: B×1×S×S object masks in {0, 1}.
        """
        return self.head(self.dropout(self.embed(frames, masks)))


def load_encoder_weights(net: QualityNet, path: str | Path | bool) -> None:
    """Start both branches of ``net`` from one timm weights file of its encoder (without ``fc.*``).

    The file is safetensors (verified against a card beside it when there is one) or a torch state
    dict read with ``weights_only=True``; it is never unpickled.

    Args:
        net: the network whose frame and mask encoders are set.
        path: the encoder's weights: a file (e.g. ImageNet ResNet-18 weights saved by timm), an
            ``hf-hub:`` id or ``True`` (timm's default pretrained weights of the encoder).

    Raises:
        WeightsError: naming the file, when it is missing, unreadable, or its tensors do not fit.
    """
    hub_load_encoder_weights(net.frame_encoder, path, timm_model=net.encoder)
    net.mask_encoder.load_state_dict(net.frame_encoder.state_dict())


def save_quality_net(net: QualityNet, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``net`` as safetensors (atomically), its settings and ``meta`` (JSON) in the metadata.

    Args:
        net: the network.
        path: the file to write.
        meta: facts to keep with it, such as the runs and videos it was trained on.
    """
    path = Path(path)
    metadata = {
        "format": FORMAT,
        "encoder": net.encoder,
        "bins": str(net.bins),
        "input_size": str(net.input_size),
        "meta": json.dumps(meta or {}, sort_keys=True),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    write_bytes_atomic(path, save(state, metadata=metadata))
    return path


def _settings(path: Path, metadata: dict[str, str]) -> tuple[str, int, int, dict[str, Any]]:
    """(encoder, bins, input size, meta) from a quality network's metadata."""
    try:
        meta = json.loads(metadata.get("meta", "{}"))
        return metadata["encoder"], int(metadata["bins"]), int(metadata["input_size"]), dict(meta)
    except (KeyError, ValueError, TypeError) as err:
        raise WeightsError(path, f"metadata of a quality network is damaged ({err!r})") from err


def load_quality_net(path: str | Path) -> tuple[QualityNet, dict[str, Any]]:
    """The network saved in ``path`` (in eval mode) and the ``meta`` it was saved with.

    Args:
        path: a file `save_quality_net` wrote.

    Raises:
        WeightsError: naming the file, when it is missing, not safetensors, not a quality network,
            or its tensors do not fit the network its metadata describes.
    """
    path = Path(path)
    state, metadata = read_tagged_safetensors(path, FORMAT, "quality network")
    encoder, bins, input_size, meta = _settings(path, metadata)
    try:
        net = QualityNet(encoder, bins, input_size)
    except ConfigError as err:
        raise WeightsError(path, f"metadata describes no buildable network ({err})") from err
    load_state_dict_strictly(net, state, path)
    return net.eval(), meta


__all__ = [
    "QualityNet",
    "batch_inputs",
    "bin_centres",
    "load_encoder_weights",
    "load_quality_net",
    "prepare_inputs",
    "quality_bins",
    "resize_frame",
    "resize_mask",
    "save_quality_net",
]
