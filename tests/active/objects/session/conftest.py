"""A person's own folder of frames without masks (squares-a of `data.fake_davis`), shared by the CLI tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from data.fake_davis import palette_png, squares, write_moving_squares


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of squares-a's frames, without masks; its first frame's object ids beside it (a0.png)."""
    tmp = tmp_path_factory.mktemp("own")
    davis = write_moving_squares(tmp / "davis")
    shutil.rmtree(davis / "Annotations")
    palette_png(tmp / "a0.png", squares(0, 0))
    return davis / "JPEGImages" / "480p" / "squares-a"
