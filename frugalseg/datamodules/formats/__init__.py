"""Data set formats: readers that turn an on-disk layout into `Clip` records."""

from __future__ import annotations

import json
from pathlib import Path

from frugalseg.datamodules.formats.cityscapes import CityscapesFormat
from frugalseg.datamodules.formats.davis import DavisFormat
from frugalseg.datamodules.formats.synthetic import (
    ANCHOR_FRAME,
    PARAMS_FILE,
    default_synthetic_root,
    generate_synthetic_streets,
)

FORMATS = ("cityscapes", "synthetic", "davis", "mose")


def get_format(name: str, root: str | Path | None) -> CityscapesFormat | DavisFormat:
    """The reader for format ``name`` over ``root``.

    ``synthetic`` reads a generated data set in the Cityscapes layout: an existing one at ``root``
    as it is, otherwise one generated there with the default parameters (``root=None``: the
    default cache folder). ``davis`` and ``mose`` read the DAVIS layout (`DavisFormat`).
    """
    if name not in FORMATS:
        raise ValueError(f"unknown data format {name!r}; known formats: {', '.join(FORMATS)}")
    if name == "cityscapes":
        if root is None:
            raise ValueError("the cityscapes format needs a root folder")
        return CityscapesFormat(root)
    if name in ("davis", "mose"):
        if root is None:
            raise ValueError(f"the {name} format needs a root folder")
        return DavisFormat(root, name=name)
    root = Path(root) if root is not None else default_synthetic_root()
    if not (root / PARAMS_FILE).is_file():
        generate_synthetic_streets(root)
    num_frames = int(json.loads((root / PARAMS_FILE).read_text())["num_frames"])
    return CityscapesFormat(root, frames_before=ANCHOR_FRAME, frames_after=num_frames - 1 - ANCHOR_FRAME)


__all__ = [
    "FORMATS",
    "CityscapesFormat",
    "DavisFormat",
    "generate_synthetic_streets",
    "default_synthetic_root",
    "get_format",
]
