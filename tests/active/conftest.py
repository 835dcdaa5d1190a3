"""A random SAM 2 click model (sam2.1_hiera_t at 64 px) and its checkpoint file, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SAM2_IMAGE_SIZE = 64  # the smallest SAM 2 input; its low-resolution masks are 16×16


@pytest.fixture(scope="session")
def sam2_clicks():
    """The ``sam2`` click model with random weights: tests of the pipeline, not of quality."""
    from frugalseg.active.objects.click_models import SAM2Clicks

    torch.manual_seed(0)
    return SAM2Clicks(random_weights=True, image_size=SAM2_IMAGE_SIZE, device="cpu")


@pytest.fixture(scope="session")
def sam2_clicks_checkpoint(sam2_clicks, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam2_clicks``' weights in the official checkpoint layout, half precision to keep the file small."""
    path = tmp_path_factory.mktemp("sam2_clicks") / "tiny_random.pt"
    state = sam2_clicks.predictor.model.state_dict()
    torch.save({"model": {k: v.half() for k, v in state.items()}}, path)
    return path
