"""A tiny VEIS tree (the layout `frugalseg.data.formats.veis` assumes) with hand-chosen colour labels.

``write_veis(root)`` writes, at 32×48, split ``train`` with video ``town01`` (frames ``000000``…
``000003``) and split ``val`` with video ``town02`` (``000000``, ``000001``): ``images/<split>/<video>/
<frame>.png``, a colour label per frame in ``labels/…`` and, for ``town01/000001``, an RGB instance
image in ``instances/…``. Each label shows the Cityscapes colours of ``COLOUR_REGIONS`` and, in its
top-left 4×4 block, the class of its frame index (``FRAME_CLASSES``), so frames can be told apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frugalseg.data.io import write_png_atomic

H, W = 32, 48
ROAD, SIDEWALK, BUILDING, POLE, VEGETATION, SKY, PERSON, CAR, BICYCLE = 0, 1, 2, 5, 8, 10, 11, 13, 18
IGNORE = 255

#: (rows, cols, Cityscapes colour, expected train id); later regions are painted over earlier ones.
COLOUR_REGIONS = [
    (slice(0, H), slice(0, W), (128, 64, 128), ROAD),
    (slice(0, 8), slice(0, W), (70, 130, 180), SKY),
    (slice(8, 16), slice(0, 24), (70, 70, 70), BUILDING),
    (slice(8, 16), slice(24, W), (107, 142, 35), VEGETATION),
    (slice(16, 20), slice(0, 10), (244, 35, 232), SIDEWALK),
    (slice(16, 20), slice(10, 20), (250, 170, 160), IGNORE),  # parking: a Cityscapes label, no train id
    (slice(16, 24), slice(22, 24), (153, 153, 153), POLE),  # pole's colour (polegroup shares it)
    (slice(20, 28), slice(26, 38), (0, 0, 142), CAR),
    (slice(20, 28), slice(40, 44), (119, 11, 32), BICYCLE),
    (slice(20, 28), slice(2, 6), (220, 20, 60), PERSON),
    (slice(28, H), slice(0, W), (0, 0, 0), IGNORE),  # unlabelled
]
FRAME_CLASSES = {0: SKY, 1: BUILDING, 2: POLE, 3: VEGETATION}
FRAME_COLOURS = {
    SKY: (70, 130, 180),
    BUILDING: (70, 70, 70),
    POLE: (153, 153, 153),
    VEGETATION: (107, 142, 35),
}
CHANGE = (slice(0, 4), slice(0, 4))

VIDEOS = {"train": {"town01": 4}, "val": {"town02": 2}}
INSTANCE_FRAME = ("train", "town01", 1)
#: The instance image of INSTANCE_FRAME: the car and the person, each one colour.
INSTANCE_COLOURS = {CAR: (10, 200, 30), PERSON: (200, 10, 30)}


def expected_label(index: int) -> np.ndarray:
    """Train ids of the label of the ``index``-th frame of a video."""
    label = np.zeros((H, W), np.uint8)
    for rows, cols, _, train_id in COLOUR_REGIONS:
        label[rows, cols] = train_id
    label[CHANGE] = FRAME_CLASSES[index]
    return label


def colour_label(index: int) -> np.ndarray:
    """The RGB label file of the ``index``-th frame."""
    rgb = np.zeros((H, W, 3), np.uint8)
    for rows, cols, colour, _ in COLOUR_REGIONS:
        rgb[rows, cols] = colour
    rgb[CHANGE] = FRAME_COLOURS[FRAME_CLASSES[index]]
    return rgb


def frame(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(0, 256, (H // 4, W // 4, 3)), np.ones((4, 4, 1))).astype(np.uint8)


def write_veis(root: Path) -> Path:
    """Write the tree described in the module docstring under ``root``; return ``root``."""
    for split, videos in VIDEOS.items():
        for video, count in videos.items():
            for index in range(count):
                name = f"{index:06d}.png"
                write_png_atomic(root / "images" / split / video / name, frame(index))
                write_png_atomic(root / "labels" / split / video / name, colour_label(index))
    split, video, index = INSTANCE_FRAME
    instances = np.zeros((H, W, 3), np.uint8)
    for rows, cols, _, train_id in COLOUR_REGIONS:
        if train_id in INSTANCE_COLOURS:
            instances[rows, cols] = INSTANCE_COLOURS[train_id]
    write_png_atomic(root / "instances" / split / video / f"{index:06d}.png", instances)
    return root
