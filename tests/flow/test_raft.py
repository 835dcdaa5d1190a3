"""RAFT as a flow engine with the user's weights: loaded strictly from a file, never downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from frugalseg.autolabel.flow_options import FlowEstimator, FlowOptions
from frugalseg.autolabel.flow_propagate import FlowPropagator
from frugalseg.errors import ConfigError, WeightsError
from frugalseg.flow.raft import RAFTFlow


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights of torchvision's raft_small as a safetensors file."""
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("raft") / "raft_small.safetensors"
    save_file({k: v.contiguous() for k, v in raft_small(weights=None).state_dict().items()}, str(path))
    return path


def _frames(height: int = 36, width: int = 52) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    first = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return first, np.roll(first, 2, axis=1)


def test_raft_gives_a_finite_flow_of_the_frames_size_from_a_safetensors_or_a_state_dict(
    small_weights: Path, tmp_path: Path
) -> None:
    first, second = _frames()
    flow = RAFTFlow(small_weights, model="small", device="cpu", iterations=2)(first, second)
    assert flow.shape == (36, 52, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    as_torch = tmp_path / "raft_small.pth"
    from safetensors.torch import load_file

    torch.save(load_file(str(small_weights)), as_torch)
    again = RAFTFlow(as_torch, model="small", device="cpu", iterations=2)(first, second)
    np.testing.assert_allclose(again, flow, atol=1e-5)


def test_the_settings_key_the_flow_by_the_weights_content(small_weights: Path) -> None:
    import hashlib

    settings = RAFTFlow(small_weights, model="small", device="cpu").settings
    assert settings["sha256"] == hashlib.sha256(small_weights.read_bytes()).hexdigest()
    assert settings["engine"] == "raft" and settings["model"] == "small"


def test_missing_weights_are_named(tmp_path: Path) -> None:
    gone = tmp_path / "raft_large.pth"
    with pytest.raises(WeightsError, match=r"raft_large\.pth: RAFT weights file does not exist"):
        RAFTFlow(gone)


def test_weights_of_the_other_model_are_refused_by_name(small_weights: Path) -> None:
    with pytest.raises(WeightsError, match=r"raft_small\.safetensors: not torchvision RAFT-large weights"):
        RAFTFlow(small_weights, model="large", device="cpu")


class _Payload:
    """An object a pickle would rebuild by running code."""


def test_a_pickle_is_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"weights": _Payload()}, path)
    with pytest.raises(WeightsError, match=r"evil\.pth: cannot read RAFT weights: it holds Python objects"):
        RAFTFlow(path)


def test_the_propagator_uses_raft_and_needs_its_weights(small_weights: Path) -> None:
    with pytest.raises(ConfigError, match="raft_weights: the RAFT flow needs a weights file"):
        FlowPropagator(FlowOptions(estimator=FlowEstimator(method="raft")))
    with pytest.raises(ConfigError, match="flow: unknown flow engine 'pwc'"):
        FlowPropagator(FlowOptions(estimator=FlowEstimator(method="pwc")))
    engine = FlowPropagator(
        FlowOptions(
            estimator=FlowEstimator("raft", raft_weights=str(small_weights), raft_model="small", device="cpu")
        )
    )
    assert engine.settings["flow"]["engine"] == "raft"
    first, second = _frames()
    label = np.zeros(first.shape[:2], np.uint8)
    label[10:25, 10:30] = 1
    out = engine.propagate([first, second], 0, label, [1])
    assert out[1].shape == label.shape and set(np.unique(out[1])) <= {0, 1, 255}


def test_a_file_that_is_not_weights_is_named_so(tmp_path: Path) -> None:
    """A raw KeyError value had been the whole reason (``cannot read RAFT weights: 174812789``)."""
    path = tmp_path / "junk.pt"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(WeightsError) as refused:
        RAFTFlow(path)
    assert str(refused.value).startswith(
        f"{path}: cannot read RAFT weights: not a safetensors or PyTorch weights file, or a damaged one ("
    )
    assert "weights_only" not in str(refused.value)
