"""Tiny DAVIS trees (and MOSE's, the same without a resolution folder) made from object-id maps.

``write_davis(root, masks)`` writes, for each sequence of ``masks`` (name → one H×W id map per frame:
0 background, k object k, 255 void), the frames
``JPEGImages/480p/<seq>/00000.jpg …`` and the masks ``Annotations/480p/<seq>/00000.png …`` as palette
PNGs of the ids (with ``binary``, grey 0/255 PNGs of object 1, as DAVIS 2016 stores them).
Frames show the ids in ``COLOURS`` unless ``frames`` (name → one H×W×3 image per frame) gives
them; ``resolution=None`` leaves out the resolution folder (the MOSE layout); ``image_sets``
(year → split → sequence names) writes ``ImageSets/<year>/<split>.txt``.

``write_moving_squares(root)`` writes the VOS tree of ``squares(t, seq)``: two sequences of
``SQUARES_FRAMES`` frames of ``SQUARES_SIZE`` whose objects move by known steps, listed in
ImageSets/2017 ``train`` and ``val``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = np.zeros((256, 3), np.uint8)
COLOURS[:3] = [[40, 60, 80], [220, 30, 30], [30, 200, 60]]  # background, object 1, object 2
PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 - 4) * 3  # DAVIS's first colours

SQUARES_SIZE = (48, 64)
SQUARES_FRAMES = 10


def palette_png(path: Path, ids: np.ndarray) -> None:
    """Write ``ids`` as a palette PNG (DAVIS 2017 masks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(PALETTE)
    image.save(path)


def grey_png(path: Path, values: np.ndarray) -> None:
    """Write ``values`` as a grey-level PNG (DAVIS 2016 masks hold 0 and 255)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8), mode="L").save(path)


def jpeg(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB frame as a JPEG of quality 95."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95)


def write_davis(
    root: Path,
    masks: dict[str, list[np.ndarray]],
    *,
    frames: dict[str, list[np.ndarray]] | None = None,
    resolution: str | None = "480p",
    binary: bool = False,
    image_sets: dict[str, dict[str, list[str]]] | None = None,
) -> Path:
    """Write the tree described in the module docstring under ``root``; return ``root``."""
    sub = (resolution,) if resolution else ()
    for seq, maps in masks.items():
        for t, ids in enumerate(maps):
            rgb = frames[seq][t] if frames is not None else COLOURS[ids]
            jpeg(root.joinpath("JPEGImages", *sub, seq, f"{t:05d}.jpg"), rgb)
            mask = root.joinpath("Annotations", *sub, seq, f"{t:05d}.png")
            if binary:
                grey_png(mask, (ids == 1) * 255)
            else:
                palette_png(mask, ids)
    for year, splits in (image_sets or {}).items():
        for split, names in splits.items():
            (root / "ImageSets" / year).mkdir(parents=True, exist_ok=True)
            (root / "ImageSets" / year / f"{split}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return root


def squares(t: int, seq: int) -> np.ndarray:
    """Object 1 moves right 2 px per frame, object 2 down 1 px per frame; sequence 1 has only object 1."""
    ids = np.zeros(SQUARES_SIZE, dtype=np.uint8)
    ids[8:20, 4 + 2 * t : 16 + 2 * t] = 1
    if seq == 0:
        ids[20 + t : 30 + t, 40:52] = 2
    return ids


def write_moving_squares(root: Path) -> Path:
    """Sequences ``squares-a`` and ``squares-b`` of ``squares``, both in ImageSets/2017 train and val."""
    names = ["squares-a", "squares-b"]
    masks = {name: [squares(t, seq) for t in range(SQUARES_FRAMES)] for seq, name in enumerate(names)}
    return write_davis(root, masks, image_sets={"2017": {"train": names, "val": names}})
