"""The run-length encodings of masks that the tools write: COCO's (pycocotools), CVAT's, Label Studio's.

- COCO: pycocotools does it (column-major runs, compressed to a string, or a plain ``counts`` list).
- CVAT (XML 1.1 ``<mask rle=… left top width height>``): runs over the mask's box in row-major
  order, the first run counting zeros (so a box whose first pixel is set starts with 0).
- Label Studio (``brushlabels`` with ``format: rle``): its bit-packed RLE of the RGBA image (every
  pixel four bytes, the mask in the alpha channel), as ``label_studio_converter.brush`` writes it:
  a 32-bit value count, a 5-bit word size − 1, four 4-bit run-length widths − 1, then blocks of
  one flag bit (1: a run of one value, 0: literal values), a 2-bit width index, the block length − 1
  in that width, and the value(s) in the word size; bits most significant first, zero-padded to bytes.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

_LS_RLE_WIDTHS = (3, 4, 8, 16)
_LS_WORD = 8


def coco_decode(segmentation: Any, height: int, width: int) -> np.ndarray:
    """The H×W bool mask of a COCO segmentation: polygons, an RLE with a counts list, or a compressed RLE."""
    if isinstance(segmentation, list):
        rles = coco_mask.frPyObjects(segmentation, height, width)
        rle = coco_mask.merge(rles) if rles else coco_mask.encode(np.zeros((height, width, 1), np.uint8))[0]
    elif isinstance(segmentation["counts"], list):
        rle = coco_mask.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    with warnings.catch_warnings():
        # pycocotools 2.0.11's Masks.__array__ lacks numpy 2's copy keyword; cocoapi is unmaintained
        # (cocodataset/cocoapi#686 closed unmerged): the decoded array is right, only the warning is noise.
        warnings.filterwarnings(
            "ignore", "__array__ implementation doesn't accept a copy", DeprecationWarning
        )
        return np.asarray(coco_mask.decode(rle), bool).reshape(height, width)


def coco_counts(text: str) -> np.ndarray:
    """The runs of COCO's compressed RLE string, decoded as pycocotools' ``rleFrString`` does.

    Each count is 5-bit groups, least significant first, written as characters ``0``…``o`` (48 +
    group); a group's 6th bit says another follows, the last one's 5th bit is the count's sign. From
    the fourth count on, each is the difference from the count two before it.

    Raises:
        ValueError: a character outside ``0``…``o``, a count of more than 12 characters, or the string
            ends within a count.
    """
    codes = np.frombuffer(text.encode("ascii", "replace"), np.uint8).astype(np.int64) - 48
    bad = (codes < 0) | (codes >= 64)
    if bad.any() or not text.isascii():
        position = next(k for k, c in enumerate(text) if not 0 <= ord(c) - 48 < 64)
        raise ValueError(f"character {text[position]!r} at {position} is none of its characters")
    last = (codes & 0x20) == 0
    if not codes.size:
        return np.zeros(0, np.int64)
    if not last[-1]:
        raise ValueError("it ends within a count")
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    index = np.arange(codes.size) - np.repeat(starts, ends - starts + 1)
    if index.size and index.max() >= 12:
        raise ValueError("a count of more than 12 characters")
    values = np.zeros(ends.size, np.int64)
    np.add.at(values, np.repeat(np.arange(ends.size), ends - starts + 1), (codes & 0x1F) << (5 * index))
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (index[ends[negative]] + 1))
    values[1::2] = np.cumsum(values[1::2])
    values[2::2] = np.cumsum(values[2::2])
    return values


def coco_encode(mask: np.ndarray) -> dict[str, Any]:
    """A bool mask as COCO's compressed RLE (``{"size": [H, W], "counts": "…"}``, JSON-ready)."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def polygon_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """The H×W bool mask of a closed polygon (N×2 x, y), rasterised as COCO does (pycocotools)."""
    return coco_decode([points.reshape(-1).tolist()], height, width)


def cvat_decode(counts: list[int], width: int, height: int) -> np.ndarray:
    """The height×width bool mask of CVAT's row-major runs (zeros first).

    Raises:
        ValueError: the runs do not add up to width × height, or one is negative.
    """
    runs = np.asarray(counts, np.int64)
    if (runs < 0).any() or int(runs.sum()) != width * height:
        raise ValueError(f"its runs add up to {int(runs.sum())} pixels, its box has {width}×{height}")
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(height, width)


def cvat_encode(mask: np.ndarray) -> list[int]:
    """CVAT's row-major runs of a bool mask (the mask's own box), zeros first."""
    flat = mask.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    return [0, *runs] if flat.size and flat[0] else runs


class _Bits:
    """Reads unsigned integers of any width from a bit array, most significant bit first."""

    def __init__(self, data: bytes) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, np.uint8))
        self.pos = 0

    def read(self, width: int) -> int:
        if self.pos + width > self.bits.size:
            raise ValueError("the RLE ends early")
        value = 0
        for bit in self.bits[self.pos : self.pos + width]:
            value = (value << 1) | int(bit)
        self.pos += width
        return value


def ls_decode(rle: list[int], height: int, width: int) -> np.ndarray:
    """The H×W bool mask of a Label Studio brush RLE (alpha ≥ 128 is inside).

    Raises:
        ValueError: the RLE is cut short or does not hold height × width × 4 values.
    """
    bits = _Bits(bytes(rle))
    count = bits.read(32)
    if count != height * width * 4:
        raise ValueError(
            f"it holds {count} values, an RGBA image of {width}×{height} has {height * width * 4}"
        )
    word = bits.read(5) + 1
    widths = [bits.read(4) + 1 for _ in range(4)]
    out = np.zeros(count, np.uint8)
    i = 0
    while i < count:
        same = bits.read(1)
        end = min(i + 1 + bits.read(widths[bits.read(2)]), count)
        if same:
            out[i:end] = bits.read(word)
        else:
            out[i:end] = [bits.read(word) for _ in range(end - i)]
        i = end
    return out.reshape(height, width, 4)[:, :, 3] >= 128


def ls_encode(mask: np.ndarray) -> list[int]:
    """Label Studio's brush RLE of a bool mask (RGBA 255 inside, 0 outside), as its converter writes it."""
    values = np.repeat(np.where(mask.reshape(-1), 255, 0).astype(np.int64), 4)
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [values.size]]))
    parts = [f"{values.size:032b}", f"{_LS_WORD - 1:05b}", *(f"{w - 1:04b}" for w in _LS_RLE_WIDTHS)]
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        word = f"{int(values[start]):0{_LS_WORD}b}"
        while length > 0:
            block = min(length, 1 << _LS_RLE_WIDTHS[-1])
            index = next(k for k, w in enumerate(_LS_RLE_WIDTHS) if block - 1 < (1 << w))
            parts.append(f"1{index:02b}{block - 1:0{_LS_RLE_WIDTHS[index]}b}{word}")
            length -= block
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    return [int(bits[k : k + 8], 2) for k in range(0, len(bits), 8)]
