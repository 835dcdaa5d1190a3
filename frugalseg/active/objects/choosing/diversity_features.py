"""The diversity selector's frame features: a weight-free descriptor, QNet's or a timm encoder's embedding.

``descriptor`` (default, `frame_selectors.descriptors`) needs no weights; ``qnet`` embeds each frame
with its current mask by EVA-VOS's quality network (`frugalseg.zoo.QualityNet.embed`), and
``timm:<model>`` by a pretrained timm encoder on the frame alone (the paper's L2-encoder baseline).
The zoo (torch, timm) is imported only when a network is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from frugalseg.active.objects.choosing.frame_selectors import SelectionView, descriptors
from frugalseg.errors import ConfigError

if TYPE_CHECKING:
    from frugalseg.zoo import QualityNet

VOID = 255


def _embed(net: QualityNet, frames: np.ndarray, masks: np.ndarray, batch_size: int) -> np.ndarray:
    """``net.embed`` of resized uint8 frames and masks, in batches, in eval mode, without gradients."""
    import torch

    from frugalseg.zoo.quality_net import batch_inputs

    device = next(net.parameters(), torch.empty(0)).device
    training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = []
            for i in range(0, len(frames), batch_size):
                x, m = batch_inputs(frames[i : i + batch_size], masks[i : i + batch_size])
                out.append(net.embed(x.to(device), m.to(device)))
    finally:
        net.train(training)
    return torch.cat(out).float().cpu().numpy()


def qnet_features(net: QualityNet, *, batch_size: int = 32) -> Callable[[SelectionView], np.ndarray]:
    """Features for `DiversitySelector`: the QNet embedding of each frame of a view with its current mask.

    A frame with several objects gets the mean of its objects' embeddings; one whose mask shows no
    object, the embedding of an empty mask.

    Args:
        net: the trained quality network (`frugalseg.zoo.load_quality_net`).
        batch_size: (frame, object) pairs per forward pass.
    """
    from frugalseg.zoo.quality_net import resize_frame, resize_mask

    def features(view: SelectionView) -> np.ndarray:
        if view.frames is None or view.masks is None:
            raise ConfigError("frames", "QNet features need the frames and the current masks of the loop")
        size = net.input_size
        owners, frames, masks = [], [], []
        for t, (frame, mask) in enumerate(zip(view.frames, view.masks, strict=True)):
            small = resize_frame(frame, size)
            objects: list[int | None] = [int(v) for v in np.unique(mask) if v not in (0, VOID)]
            for obj in objects or [None]:
                owners.append(t)
                frames.append(small)
                empty = obj is None
                masks.append(np.zeros((size, size), np.uint8) if empty else resize_mask(mask == obj, size))
        embeddings = _embed(net, np.stack(frames), np.stack(masks), batch_size)
        sums = np.zeros((len(view.frames), embeddings.shape[1]), np.float64)
        np.add.at(sums, np.asarray(owners), embeddings)
        return (sums / np.bincount(owners, minlength=len(view.frames))[:, None]).astype(np.float32)

    return features


def encoder_features(
    name: str, weights: str | Path, *, input_size: int | None = None, batch_size: int = 32
) -> Callable[[SelectionView], np.ndarray]:
    """Features for `DiversitySelector` from a pretrained timm image encoder: each frame's pooled embedding.

    The baseline of paper 002's frame selection ("L2-encoders"): eq. 1 on the features of an image
    classifier, which sees the frame only, not its mask.

    Args:
        name: the timm model (e.g. ``resnet50``), built without its classifier; never downloaded.
        weights: its weights file (safetensors or a torch state dict; never unpickled).
        input_size: side of the square input each frame is resized to (QNet's, 224, by default).
        batch_size: frames per forward pass.

    Raises:
        ConfigError: an unknown timm model.
        WeightsError: naming the file, when it is missing, unreadable, or its tensors do not fit.
    """
    import torch

    from frugalseg.zoo import load_state_dict_strictly, read_weights_file
    from frugalseg.zoo.quality_net import DEFAULT_INPUT_SIZE, batch_inputs, image_encoder, resize_frame

    size = DEFAULT_INPUT_SIZE if input_size is None else input_size

    net = image_encoder(name).eval()
    loaded = read_weights_file(weights)
    head = getattr(net, "default_cfg", {}).get("classifier", "fc")
    state = {k: v for k, v in loaded.state_dict.items() if not k.startswith(f"{head}.")}
    load_state_dict_strictly(net, state, loaded.path)

    def features(view: SelectionView) -> np.ndarray:
        if view.frames is None:
            raise ConfigError("frames", "encoder features need the frames of the loop")
        small = np.stack([resize_frame(frame, size) for frame in view.frames])
        empty = np.zeros(small.shape[:3], np.uint8)
        with torch.no_grad():
            out = [
                net(batch_inputs(small[i : i + batch_size], empty[i : i + batch_size])[0])
                for i in range(0, len(small), batch_size)
            ]
        return torch.cat(out).float().numpy()

    return features


#: The features the diversity selector can compare (``timm:<model>`` names any timm image encoder).
DIVERSITY_FEATURES = ("descriptor", "qnet", "timm:<model>")


def get_diversity_features(
    features: str = "descriptor", weights: str | Path | None = None
) -> Callable[[SelectionView], np.ndarray]:
    """The features of the diversity selector: ``descriptor``, ``qnet`` or ``timm:<model>``.

    Args:
        features: ``descriptor`` (weight-free, `frame_descriptor`), ``qnet`` (the embedding of a
            quality network trained by ``annotate train-qnet``: the paper's) or ``timm:<model>``
            (a pretrained timm image encoder, e.g. ``timm:resnet50``: the paper's L2-encoder
            baseline).
        weights: the QNet file, or the encoder's weights file; none for ``descriptor``.

    Raises:
        ConfigError: unknown features, or weights missing or given where none are read.
        WeightsError: a weights file that is missing or does not fit.
    """
    if features == "descriptor":
        if weights is not None:
            raise ConfigError("diversity_weights", "the weight-free descriptor reads no weights file")
        return descriptors
    if not (features == "qnet" or (features.startswith("timm:") and len(features) > 5)):
        raise ConfigError(
            "diversity_features",
            f"unknown features {features!r}; choose from {', '.join(DIVERSITY_FEATURES)}",
        )
    if weights is None:
        raise ConfigError("diversity_weights", f"the {features!r} features need a weights file")
    if features == "qnet":
        from frugalseg.zoo import load_quality_net

        return qnet_features(load_quality_net(weights)[0])
    return encoder_features(features[len("timm:") :], weights)
