"""Shared fixtures: the real sample data beside the repository and a small generated dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (real Cityscapes and DAVIS samples); CI always has it beside the clone."""
    assert SHARED_DATA.is_dir(), f"expected the shared sample data at {SHARED_DATA}"
    return SHARED_DATA
