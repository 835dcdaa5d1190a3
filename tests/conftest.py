"""Shared fixtures: the real sample data, a small generated dataset, one torch thread, running the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (real Cityscapes and DAVIS samples); CI always has it beside the clone."""
    assert SHARED_DATA.is_dir(), f"expected the shared sample data at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """Point frugalseg's cache (synthetic data, pseudo-labels) at a fresh folder for the session."""
    cache = tmp_path_factory.mktemp("frugalseg_cache")
    previous = os.environ.get("FRUGALSEG_CACHE")
    os.environ["FRUGALSEG_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("FRUGALSEG_CACHE", None)
    else:
        os.environ["FRUGALSEG_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_streets(tmp_path_factory) -> Path:
    """A small synthetic streets set: 4 train and 3 val clips of 30 frames at 64×128."""
    from frugalseg.datamodules.formats.synthetic import generate_synthetic_streets

    root = tmp_path_factory.mktemp("streets") / "tiny"
    return generate_synthetic_streets(root, clips_per_split={"train": 4, "val": 3}, size=(64, 128))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op torch thread for the whole session, and for the processes tests start.

    The tests run tiny models, for which one thread is as fast as two; on a 2-core machine that
    also runs data-loader workers or other jobs, two OpenMP threads waiting on each other made
    small steps up to 100× slower.
    """
    import torch

    previous_threads, previous_env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(previous_threads)
    if previous_env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = previous_env
