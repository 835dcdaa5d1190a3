"""A tiny DAVIS-layout tree for the VOS tests: two sequences of moving squares.

(One generator per data set layout belongs in ``tests/data``; this one moves there with the others.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (48, 64)
FRAMES = 10


def _palette_png(path: Path, ids: np.ndarray) -> None:
    image = Image.fromarray(ids, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 - 4) * 3)
    image.save(path)


def squares(t: int, seq: int) -> np.ndarray:
    """Object 1 moves right 2 px per frame, object 2 down 1 px per frame; sequence 1 has only object 1."""
    ids = np.zeros(SIZE, dtype=np.uint8)
    ids[8:20, 4 + 2 * t : 16 + 2 * t] = 1
    if seq == 0:
        ids[20 + t : 30 + t, 40:52] = 2
    return ids


def make_davis(root: Path) -> Path:
    """A DAVIS-layout folder: 2 sequences × 10 frames of moving squares, ImageSets/2017 train and val."""
    colours = np.array([[40, 60, 80], [220, 30, 30], [30, 200, 60]], dtype=np.uint8)
    names = ["squares-a", "squares-b"]
    for seq, name in enumerate(names):
        (root / "JPEGImages" / "480p" / name).mkdir(parents=True)
        (root / "Annotations" / "480p" / name).mkdir(parents=True)
        for t in range(FRAMES):
            ids = squares(t, seq)
            frame = root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg"
            Image.fromarray(colours[ids]).save(frame, quality=95)
            _palette_png(root / "Annotations" / "480p" / name / f"{t:05d}.png", ids)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("\n".join(names) + "\n")
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(names) + "\n")
    return root
