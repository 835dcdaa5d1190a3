"""A randomly initialised SAM 2 (sam2.1_hiera_t at 64 px) and its checkpoint file, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SAM2_IMAGE_SIZE = 64  # the smallest SAM 2 input; masks are 16×16


@pytest.fixture(scope="session")
def sam2_engine():
    """The SAM 2 propagation engine with random weights: tests of the pipeline, not of quality."""
    from frugalseg.autolabel.sam2_propagate import SAM2Propagator

    torch.manual_seed(0)
    return SAM2Propagator(random_weights=True, image_size=SAM2_IMAGE_SIZE, device="cpu")


@pytest.fixture(scope="session")
def sam2_checkpoint(sam2_engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam2_engine``'s weights in the official checkpoint layout, half precision to keep the file small."""
    path = tmp_path_factory.mktemp("sam2") / "tiny_random.pt"
    torch.save({"model": {k: v.half() for k, v in sam2_engine.predictor.state_dict().items()}}, path)
    return path
