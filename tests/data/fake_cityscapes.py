"""Tiny Cityscapes trees: snippets around annotated frames, a partial snippet, and a lone still.

* ``write_snippets(root, anchors)`` writes, in city ``c`` and sequence ``1`` of split ``train``, for
  each anchor frame number the 30-frame snippet ``anchor−19 … anchor+10`` (or the frame ``numbers``
  given) in ``leftImg8bit_sequence/`` and the anchor's fine label ``gtFine/…_gtFine_labelTrainIds.png``.
  Frames are ``SIZE`` (4×6), flat grey of their frame number, unless ``size`` and ``frame(number)``
  say otherwise; the label is ``label_for(size)`` (train ids 0…18 in turn) unless one is given.
* ``write_partial_snippets(root)``: a 32×48 scene panning 1 px per frame with a car in its label, as
  one whole snippet (``c_000001_000019``) and one of 15 frames, offsets −7…+7 (``c_000002_000019``).
* ``write_still(root)``: one 8×16 image in ``leftImg8bit/test/city`` and, with ``fine``, its fine
  label: the real test split (nothing to label) or, with ``fine``, ``cityscapes_tiny`` (no coarse label).

``frame_path`` and ``fine_path`` give the file names the writers use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from frugalseg.data.io import write_png_atomic

SIZE = (4, 6)
CAR = 13


def frame_path(root: Path, number: int, *, split: str = "train", city: str = "c", seq: int = 1) -> Path:
    """The sequence frame ``number`` of ``city``/``seq``."""
    return root / f"leftImg8bit_sequence/{split}/{city}/{city}_{seq:06d}_{number:06d}_leftImg8bit.png"


def fine_path(root: Path, anchor: int, *, split: str = "train", city: str = "c", seq: int = 1) -> Path:
    """The fine label (train ids) of the annotated frame ``anchor`` of ``city``/``seq``."""
    return root / f"gtFine/{split}/{city}/{city}_{seq:06d}_{anchor:06d}_gtFine_labelTrainIds.png"


def label_for(size: tuple[int, int]) -> np.ndarray:
    """A label of ``size`` whose pixels take the train ids 0…18 in turn (every value valid)."""
    return (np.arange(size[0] * size[1], dtype=np.uint8).reshape(size) % 19).astype(np.uint8)


def write_snippets(
    root: Path,
    anchors: Iterable[int] = (19,),
    *,
    numbers: Iterable[int] | None = None,
    split: str = "train",
    city: str = "c",
    seq: int = 1,
    size: tuple[int, int] = SIZE,
    frame: Callable[[int], np.ndarray] | None = None,
    label: np.ndarray | None = None,
) -> Path:
    """Write the snippet and fine label of each anchor (see the module docstring); return ``root``."""
    for anchor in anchors:
        for number in range(anchor - 19, anchor + 11) if numbers is None else numbers:
            rgb = np.full((*size, 3), number % 256, np.uint8) if frame is None else frame(number)
            write_png_atomic(frame_path(root, number, split=split, city=city, seq=seq), rgb)
        write_png_atomic(
            fine_path(root, anchor, split=split, city=city, seq=seq),
            label_for(size) if label is None else label,
        )
    return root


def write_partial_snippets(root: Path) -> Path:
    """Write the whole and the partial snippet of a panning textured scene (see the module docstring)."""
    base = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    label = np.zeros((32, 48), np.uint8)
    label[8:20, 10:30] = CAR

    def panned(number: int) -> np.ndarray:
        return np.roll(base, number, axis=1)[4:36, 4:52]

    for seq, numbers in ((1, range(0, 30)), (2, range(12, 27))):
        write_snippets(root, (19,), numbers=numbers, seq=seq, size=(32, 48), frame=panned, label=label)
    return root


def write_still(
    root: Path,
    *,
    split: str = "test",
    city: str = "city",
    size: tuple[int, int] = (8, 16),
    fine: bool = False,
) -> Path:
    """Write one black still in ``leftImg8bit/<split>/<city>`` and, with ``fine``, its fine label."""
    write_png_atomic(
        root / f"leftImg8bit/{split}/{city}/{city}_000000_000019_leftImg8bit.png",
        np.zeros((*size, 3), np.uint8),
    )
    if fine:
        write_png_atomic(fine_path(root, 19, split=split, city=city, seq=0), label_for(size))
    return root
