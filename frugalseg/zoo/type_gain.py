"""TypeGainNet: a tiny MLP that predicts the J&F gain of each annotation type on a frame (paper 002).

The learned annotation-type policy of the annotation loop (`active.objects.type_policies`) reads cheap
features of a frame and its current mask and asks this network how much the frame's J&F would
rise with each type (``mask``, ``clicks``); dividing by each type's cost gives the gain per second.
The features' mean and spread are buffers of the network, so one safetensors file holds all it
needs. Saved and loaded here as a plain safetensors state dict, its settings in the file's metadata;
loading never unpickles.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save
from torch import Tensor, nn

from frugalseg.data.io import write_bytes_atomic
from frugalseg.errors import WeightsError
from frugalseg.zoo._loading import read_tagged_safetensors

FORMAT = "frugalseg-type-gain"


class TypeGainNet(nn.Module):
    """Features (B×F) → predicted J&F gain of each annotation type (B×K).

    Args:
        num_features: features per frame (F).
        num_types: annotation types (K), in the order the policy names them.
        hidden: width of the two hidden layers.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, num_features: int, num_types: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.num_features, self.num_types, self.hidden = num_features, num_types, hidden
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        self.layers = nn.Sequential(
            nn.Linear(num_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_types),
        )

    def set_normalisation(self, features: Tensor) -> None:
        """Standardise inputs by the mean and spread of ``features`` (N×F; constant ones keep spread 1)."""
        std = features.std(0) if len(features) > 1 else torch.ones(self.num_features)
        self.mean.copy_(features.mean(0))
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, features: Tensor) -> Tensor:
        """The predicted gain of each type for each row of ``features``."""
        return self.layers((features - self.mean) / self.std)


def save_type_gain(net: TypeGainNet, path: str | Path, types: list[str], feature_names: list[str]) -> Path:
    """Write ``net`` as safetensors (atomically), with its sizes, type and feature names in the metadata."""
    path = Path(path)
    meta = {
        "format": FORMAT,
        "num_features": str(net.num_features),
        "hidden": str(net.hidden),
        "types": json.dumps(types),
        "features": json.dumps(feature_names),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    write_bytes_atomic(path, save(state, metadata=meta))
    return path


def load_type_gain(path: str | Path) -> tuple[TypeGainNet, list[str], list[str]]:
    """The network saved in ``path`` with its type names and feature names.

    Raises:
        WeightsError: naming the file, when it is missing, not safetensors, or not a type-gain network.
    """
    path = Path(path)
    state, meta = read_tagged_safetensors(path, FORMAT, "annotation-type policy")
    types, features = json.loads(meta["types"]), json.loads(meta["features"])
    net = TypeGainNet(int(meta["num_features"]), len(types), int(meta["hidden"]))
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise WeightsError(path, f"tensors do not fit the network its metadata describes ({err})") from err
    return net.eval(), types, features


__all__ = ["TypeGainNet", "load_type_gain", "save_type_gain"]
