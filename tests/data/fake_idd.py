"""A tiny IDD segmentation tree (with IDD Temporal frames) and hand-chosen level-3 labels.

``write_idd(root)`` writes, at 32×48:

* ``train/0/000101``: label, instance map and polygons, and an IDD Temporal folder
  ``idd_temporal_train_1/00000/000101_leftImg8bit/`` of frames ``0000100``…``0000104`` whose
  ``0000102`` shows the annotated image (the others other scenes); ``with_gap`` leaves out
  ``0000103`` (a partial snippet);
* ``train/0/000102``: label and polygons, no temporal folder (a one-frame clip);
* ``val/1/frame0029``: an IDD 20k Part II style JPEG frame with its label;
* ``test/2/000301``: a frame without annotation.

Labels hold ``LABEL`` (level-3 ids, 255 unlabelled); the instance map holds ``INSTANCES`` (two persons,
one car, as ``json2instanceImg.py`` encodes them: level3Id × 1000 + k).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from frugalseg.data.io import write_png_atomic

H, W = 32, 48
ROAD, DRIVABLE_FALLBACK, PERSON, CAR, BUILDING, VEGETATION, SKY = 0, 1, 4, 9, 22, 24, 25
UNLABELLED = 255

LABEL = np.full((H, W), ROAD, np.uint8)
LABEL[:8] = SKY
LABEL[8:16, :20] = BUILDING
LABEL[8:16, 20:] = VEGETATION
LABEL[16:20, 40:] = DRIVABLE_FALLBACK
LABEL[18:26, 4:8] = PERSON
LABEL[18:26, 10:14] = PERSON
LABEL[20:28, 24:36] = CAR
LABEL[28:] = UNLABELLED  # ego vehicle

INSTANCES = LABEL.astype(np.uint16)  # plain level-3 ids where a class has no instances
INSTANCES[18:26, 4:8] = PERSON * 1000 + 0
INSTANCES[18:26, 10:14] = PERSON * 1000 + 1
INSTANCES[20:28, 24:36] = CAR * 1000 + 0

TEMPORAL = "idd_temporal_train_1/00000/000101_leftImg8bit"
TEMPORAL_NUMBERS = (100, 101, 102, 103, 104)
ANNOTATED_NUMBER = 102


def scene(seed: int) -> np.ndarray:
    """A 32×48 RGB frame of 4×4 blocks of random colours (distinct scenes for distinct seeds)."""
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(0, 256, (H // 4, W // 4, 3)), np.ones((4, 4, 1))).astype(np.uint8)


def _polygons(path: Path) -> None:
    record = {
        "imgHeight": H,
        "imgWidth": W,
        "objects": [{"label": "road", "polygon": [[0, 20], [47, 20], [47, 27], [0, 27]]}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record), encoding="utf-8")


def _jpeg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])


def write_idd(root: Path, with_gap: bool = False) -> Path:
    """Write the tree described in the module docstring under ``root``; return ``root``."""
    annotated = scene(101)
    write_png_atomic(root / "leftImg8bit/train/0/000101_leftImg8bit.png", annotated)
    write_png_atomic(root / "gtFine/train/0/000101_gtFine_labellevel3Ids.png", LABEL)
    write_png_atomic(root / "gtFine/train/0/000101_gtFine_instancelevel3Ids.png", INSTANCES)
    _polygons(root / "gtFine/train/0/000101_gtFine_polygons.json")
    for number in TEMPORAL_NUMBERS:
        if with_gap and number == 103:
            continue
        rgb = annotated if number == ANNOTATED_NUMBER else scene(1000 + number)
        _jpeg(root / TEMPORAL / f"{number:07d}.jpeg", rgb)

    write_png_atomic(root / "leftImg8bit/train/0/000102_leftImg8bit.png", scene(102))
    write_png_atomic(root / "gtFine/train/0/000102_gtFine_labellevel3Ids.png", LABEL)
    _polygons(root / "gtFine/train/0/000102_gtFine_polygons.json")

    _jpeg(root / "leftImg8bit/val/1/frame0029_leftImg8bit.jpg", scene(29))
    write_png_atomic(root / "gtFine/val/1/frame0029_gtFine_labellevel3Ids.png", LABEL)
    _polygons(root / "gtFine/val/1/frame0029_gtFine_polygons.json")

    write_png_atomic(root / "leftImg8bit/test/2/000301_leftImg8bit.png", scene(301))
    return root
