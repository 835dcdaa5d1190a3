"""RAFT optical flow (Teed and Deng, ECCV 2020) from torchvision, with weights from a file the user names.

Nothing is downloaded: the network is built with ``weights=None`` and filled from ``weights``, a
safetensors file or a torch state dict (read with ``weights_only=True``) of torchvision's
``raft_large`` or ``raft_small``, e.g. the file torchvision's own ``Raft_Large_Weights`` download
leaves in ``~/.cache/torch/hub/checkpoints``. A file that is missing, unreadable or holds another
model is an error that names it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from frugalseg.data.files import sha256_file
from frugalseg.errors import ConfigError, WeightsError

MODELS = ("large", "small")
MIN_SIDE = 128  # 8 × the 16 feature pixels RAFT's four-level correlation pyramid needs


class RAFTFlow:
    """Dense flow between two frames with torchvision's RAFT, on the CPU or a GPU.

    Frames are padded by edge replication to a multiple of 8 (RAFT's stride) and to at least 128
    pixels a side (its correlation pyramid needs 16 feature pixels), and the flow is cropped back, so
    it has the frames' size.

    Args:
        weights: the RAFT weights file (safetensors, or a torch state dict).
        model: ``large`` (torchvision's ``raft_large``) or ``small`` (``raft_small``).
        device: ``cpu``, ``cuda``, ``cuda:1`` …, or ``auto`` (a GPU when there is one).
        iterations: refinement iterations of RAFT's recurrent update (12, torchvision's default).
    """

    def __init__(
        self, weights: str | Path, model: str = "large", device: str = "auto", iterations: int = 12
    ) -> None:
        if model not in MODELS:
            raise ConfigError("raft_model", f"unknown RAFT model {model!r}; choose one of {list(MODELS)}")
        if iterations < 1:
            raise ConfigError("raft_iterations", f"must be >= 1, got {iterations}")
        self.weights = Path(weights)
        self.model = model
        self.iterations = iterations
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        )
        self.sha256 = _sha256(self.weights)
        self.net = _build(model, _read_state_dict(self.weights), self.weights).to(self.device).eval()

    @property
    def settings(self) -> dict[str, object]:
        """What decides the flow it computes (for caches and records): the model and the weights' hash."""
        return {"engine": "raft", "model": self.model, "iterations": self.iterations, "sha256": self.sha256}

    @torch.inference_mode()
    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Flow first→second as an H×W×2 float32 array; frames are H×W×3 uint8 RGB."""
        if first.shape != second.shape or first.ndim != 3 or first.shape[2] != 3:
            raise ValueError(f"expected two H×W×3 frames of one size, got {first.shape} and {second.shape}")
        height, width = first.shape[:2]
        pair = torch.from_numpy(np.stack([first, second])).to(self.device).permute(0, 3, 1, 2).float()
        pair = pair / 127.5 - 1.0  # RAFT reads colours in [-1, 1]
        pad_h, pad_w = (max(MIN_SIDE, size + -size % 8) - size for size in (height, width))
        pair = F.pad(pair, (0, pad_w, 0, pad_h), mode="replicate")
        flows = self.net(pair[:1], pair[1:], num_flow_updates=self.iterations)
        flow = flows[-1][0, :, :height, :width].permute(1, 2, 0)
        result: np.ndarray = flow.float().cpu().numpy()
        return result


def _sha256(path: Path) -> str:
    """The sha256 of a weights file, which keys the flows it makes; a missing file is named."""
    if not path.is_file():
        raise WeightsError(path, "RAFT weights file does not exist (pass the file with --raft-weights)")
    return sha256_file(path)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file or a torch state dict, never unpickling other objects."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any reader failure means the file is not usable weights
        if "Unsupported global" in str(error):  # torch's text advises weights_only=False: never taken here
            problem = "it holds Python objects other than tensors, never unpickled here"
            raise WeightsError(path, f"cannot read RAFT weights: {problem}") from error
        first = (str(error).splitlines() or [""])[0]
        detail = type(error).__name__  # torch's own first line advises weights_only=False: left out
        if first and "weights_only" not in first:
            detail += f": {first}"
        raise WeightsError(
            path,
            f"cannot read RAFT weights: not a safetensors or PyTorch weights file, or a damaged one "
            f"({detail})",
        ) from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(path, "not a state dict of tensors")
    return state


def _build(model: str, state: dict[str, torch.Tensor], path: Path) -> torch.nn.Module:
    """Torchvision's RAFT ``model`` with random weights, filled strictly from ``state``."""
    from torchvision.models.optical_flow import raft_large, raft_small

    net: torch.nn.Module = (raft_large if model == "large" else raft_small)(weights=None, progress=False)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or misshapen:
        first = (missing or unexpected or misshapen)[0]
        raise WeightsError(
            path,
            f"not torchvision RAFT-{model} weights: {len(missing)} missing, {len(unexpected)} unexpected and "
            f"{len(misshapen)} misshapen tensors (e.g. {first!r}); is it the other model (--raft-model)?",
        )
    net.load_state_dict(state)
    return net
