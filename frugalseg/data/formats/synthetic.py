"""Synthetic street scenes in the Cityscapes layout, with ground truth on every frame.

Real video data sets label one frame per snippet, so a propagated pseudo-label cannot be scored
on the others. These scenes can: road/sidewalk/vegetation/building/sky bands seen through a
panning camera, with cars and people that move by whole pixels per frame. Every surface carries a
static noise texture that moves with it, so optical flow has something to track. The output is
deterministic for a seed and is cached: generating into a folder that already holds the same
parameters returns at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from frugalseg.data.classes import CITYSCAPES
from frugalseg.data.clips import IGNORE_INDEX, Clip, LabelKind, LabelRef
from frugalseg.data.files import keyed_rng
from frugalseg.data.formats.cityscapes import FRAME_SUFFIX, CityscapesFormat
from frugalseg.data.io import cache_dir, encode_png
from frugalseg.errors import DataError

CITY = "synthtown"
ANCHOR_FRAME = 19
PARAMS_FILE = "synthetic.json"
GENERATOR_VERSION = 1

# Cityscapes train ids and label ids of the classes drawn here.
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, CAR = 0, 1, 2, 8, 10, 11, 13
TRAIN_TO_LABEL_ID = {
    train_id: int(CITYSCAPES.train_id_to_label_id[train_id])
    for train_id in (ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, CAR)
}
_TRAIN_TO_LABEL_ID_TABLE = np.zeros(256, dtype=np.uint16)
for _train_id, _label_id in TRAIN_TO_LABEL_ID.items():
    _TRAIN_TO_LABEL_ID_TABLE[_train_id] = _label_id
COARSE_ERODE_PX = 3


@dataclass
class _Sprite:
    """A moving object: its mask and texture, its place at the anchor frame and its motion."""

    train_id: int
    instance: int
    mask: np.ndarray  # h×w bool
    texture: np.ndarray  # h×w×3 uint8 (RGB)
    x: int  # left column at the anchor frame, image coordinates
    y: int  # top row
    dx: int  # image motion per frame (world motion minus camera pan)


def _params(
    clips_per_split: dict[str, int] | None, size: tuple[int, int], num_frames: int, seed: int
) -> dict[str, Any]:
    """The parameters that define a generated data set, in a canonical JSON-able form."""
    splits = {"train": 24, "val": 6} if clips_per_split is None else dict(clips_per_split)
    return {
        "generator": "synthetic_streets",
        "version": GENERATOR_VERSION,
        "clips_per_split": {name: int(splits[name]) for name in sorted(splits)},
        "size": [int(size[0]), int(size[1])],
        "num_frames": int(num_frames),
        "seed": int(seed),
    }


def default_synthetic_root(
    clips_per_split: dict[str, int] | None = None,
    size: tuple[int, int] = (128, 256),
    num_frames: int = 30,
    seed: int = 0,
) -> Path:
    """Cache folder for these parameters: ``$FRUGALSEG_CACHE`` (default ~/.cache/frugalseg)."""
    params = _params(clips_per_split, size, num_frames, seed)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    cache = cache_dir()
    return cache / f"synthetic_streets-{digest}"


def generate_synthetic_streets(
    root: str | Path,
    clips_per_split: dict[str, int] | None = None,
    size: tuple[int, int] = (128, 256),
    num_frames: int = 30,
    seed: int = 0,
) -> Path:
    """Write (or find cached) synthetic street clips in the Cityscapes layout under ``root``.

    ``size`` is (H, W); frames are numbered 0…num_frames−1 and frame 19 is the annotated one.
    Raises `DataError` when ``root`` holds data made with other parameters, or other files.
    """
    root = Path(root)
    params = _params(clips_per_split, size, num_frames, seed)
    height, width = params["size"]
    if num_frames <= ANCHOR_FRAME:
        raise ValueError(
            f"num_frames must be > {ANCHOR_FRAME} (frame {ANCHOR_FRAME} is annotated), got {num_frames}"
        )
    if height < 48 or width < 64:
        raise ValueError(f"size must be at least (48, 64) so that objects fit, got {size}")
    if _cached(root, params):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        for split, count in params["clips_per_split"].items():
            for number in range(count):
                _write_clip(work, split, number, params)
        (work / PARAMS_FILE).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        try:
            os.rename(work, root)
        except OSError:
            if not _cached(root, params):  # another process did not just write the same thing
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root


def _cached(root: Path, params: dict[str, Any]) -> bool:
    """True when ``root`` already holds these parameters; raise if it holds anything else."""
    if not root.exists():
        return False
    record = root / PARAMS_FILE
    if not record.is_file():
        if root.is_dir() and not any(root.iterdir()):
            return False
        raise DataError(
            root, f"exists but holds no {PARAMS_FILE}: not a synthetic data set, refusing to overwrite"
        )
    held = read_params(root)
    if held != params:
        raise DataError(
            record, f"holds synthetic data made with {held}, not the requested {params}; use another root"
        )
    return True


def read_params(root: str | Path) -> dict[str, Any]:
    """The generator parameters recorded in ``root/synthetic.json``; `DataError` naming it if unreadable."""
    record = Path(root) / PARAMS_FILE
    try:
        params = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DataError(
            record,
            "does not exist: not a generated synthetic data set (`generate_synthetic_streets` makes one, "
            "as a data module's prepare_data() does)",
        ) from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(record, f"not valid JSON ({err})") from err
    if not isinstance(params, dict) or not isinstance(params.get("num_frames"), int):
        raise DataError(record, "not the parameters of the synthetic generator (no integer 'num_frames')")
    return params


class SyntheticFormat(CityscapesFormat):
    """The generated synthetic streets set: the Cityscapes layout with ground truth on every frame.

    Args:
        root: a folder written by `generate_synthetic_streets` (it holds ``synthetic.json``).
    """

    name = "synthetic"

    def __init__(self, root: str | Path) -> None:
        params = read_params(root)
        super().__init__(
            root, frames_before=ANCHOR_FRAME, frames_after=params["num_frames"] - 1 - ANCHOR_FRAME
        )

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """A generated set holds the generator's ``synthetic.json``."""
        return (root / PARAMS_FILE).is_file()

    def ground_truth(self, clip: Clip) -> dict[int, LabelRef]:
        """The train-id map of every frame of the clip (``gtFine_sequence``)."""
        truth: dict[int, LabelRef] = {}
        for offset in clip.present_offsets:
            frame = clip.frame_path(offset)
            stem = frame.name[: -len(FRAME_SUFFIX)]
            path = (
                self.root
                / "gtFine_sequence"
                / clip.split
                / frame.parent.name
                / f"{stem}_gtFine_labelTrainIds.png"
            )
            if path.is_file():
                truth[offset] = LabelRef(path, LabelKind.FINE)
        return truth


def _clip_rng(params: dict[str, Any], split: str, number: int) -> np.random.Generator:
    """One generator per clip, so a clip does not change when other clips are added."""
    return keyed_rng(params["seed"], split, number)


def _noise(rng: np.random.Generator, shape: tuple[int, int], amplitude: float, blur: int = 3) -> np.ndarray:
    """Smooth random texture (float32, zero mean) of ``amplitude`` standard deviation."""
    noise: np.ndarray = rng.normal(0.0, 1.0, shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), blur / 3.0)
    return noise * (amplitude / max(float(noise.std()), 1e-6))


def _background(rng: np.random.Generator, height: int, world_width: int) -> tuple[np.ndarray, np.ndarray]:
    """The static world seen by the panning camera: RGB image and train-id map."""
    labels = np.full((height, world_width), SKY, dtype=np.uint8)
    rows = np.arange(height)[:, None]
    road_top = int(height * rng.uniform(0.60, 0.64))
    walk_top = road_top - int(height * 0.10)
    veg_top = (
        walk_top - height * rng.uniform(0.06, 0.12) + 3 * np.sin(np.arange(world_width) / rng.uniform(5, 9))
    ).astype(int)
    roof = np.empty(world_width, dtype=int)
    narrowest = max(8, height // 8)
    x = 0
    while x < world_width:  # buildings of random width and height
        block = int(rng.integers(narrowest, 3 * narrowest))
        roof[x : x + block] = int(height * rng.uniform(0.12, 0.35))
        x += block
    labels[rows >= roof[None, :]] = BUILDING
    labels[rows >= veg_top[None, :]] = VEGETATION
    labels[walk_top:] = SIDEWALK
    labels[road_top:] = ROAD

    colours = {
        SKY: (135, 175, 215),
        BUILDING: (120, 105, 95),
        VEGETATION: (70, 120, 45),
        SIDEWALK: (170, 160, 150),
        ROAD: (85, 85, 90),
    }
    amplitude = {SKY: 4.0, BUILDING: 14.0, VEGETATION: 24.0, SIDEWALK: 10.0, ROAD: 9.0}
    image = np.zeros((height, world_width, 3), dtype=np.float32)
    for train_id, colour in colours.items():
        region = labels == train_id
        tint = np.asarray(colour, np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
        texture = _noise(
            rng, (height, world_width), amplitude[train_id], blur=2 if train_id != VEGETATION else 4
        )
        image[region] = tint + texture[region][:, None]
    step = max(6, height // 16)  # windows: a dark grid on every building
    windows = ((rows % step) < step // 2) & ((np.arange(world_width)[None, :] % step) < step // 2)
    windows &= (labels == BUILDING) & (rows >= roof[None, :] + 2)
    image[windows] = image[windows] * 0.45 + np.float32(20)
    dash = (np.arange(world_width) % (4 * step)) < 2 * step  # lane markings
    lane_row = road_top + (height - road_top) // 2
    image[lane_row - 1 : lane_row + 1, dash] = (225, 225, 215)
    return np.clip(image, 0, 255).astype(np.uint8), labels


def _car_mask(height: int, width: int) -> np.ndarray:
    """Side view of a car: a body and a narrower cabin on top."""
    mask = np.zeros((height, width), dtype=bool)
    mask[height * 2 // 5 :, :] = True
    mask[: height * 2 // 5, width // 5 : width * 4 // 5] = True
    return mask


def _person_mask(height: int, width: int) -> np.ndarray:
    """A person: round head, body and two legs."""
    mask = np.zeros((height, width), dtype=bool)
    head = max(2, height // 6)
    cv2.circle(mask.view(np.uint8), (width // 2, head // 2 + 1), head // 2 + 1, 1, -1)
    mask[head : height * 3 // 5, width // 6 : width - width // 6] = True
    mask[height * 3 // 5 :, : width * 2 // 5] = True
    mask[height * 3 // 5 :, width * 3 // 5 :] = True
    return mask


def _textured(rng: np.random.Generator, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """A noise texture that stays fixed to the object, so flow can track it."""
    texture = colour[None, None, :] + _noise(rng, mask.shape, 22.0, blur=2)[..., None]
    textured: np.ndarray = np.clip(texture, 0, 255).astype(np.uint8)
    return textured


def _sprites(rng: np.random.Generator, height: int, width: int, road_top: int, pan: int) -> list[_Sprite]:
    """Cars in two lanes whose rows never overlap, and people on the sidewalk above them."""
    sprites: list[_Sprite] = []
    road = height - road_top
    lanes = [(road_top + 1, int(road * 0.40)), (road_top + int(road * 0.45), int(road * 0.50))]
    for lane, (top, car_height) in enumerate(lanes):
        if lane == 0 and rng.random() < 0.3:
            continue
        car_width = int(car_height * rng.uniform(2.0, 2.6))
        mask = _car_mask(car_height, car_width)
        speed = int(rng.choice([-4, -3, -2, 2, 3, 4]))
        colour = rng.uniform(30, 230, 3).astype(np.float32)
        x = int(rng.integers(0, max(1, width - car_width)))
        sprites.append(_Sprite(CAR, len(sprites), mask, _textured(rng, mask, colour), x, top, speed - pan))
    walk_bottom = road_top - 1
    for _ in range(int(rng.integers(1, 4))):
        person_height = int(height * rng.uniform(0.22, 0.30))
        person_width = max(5, person_height // 3)
        mask = _person_mask(person_height, person_width)
        colour = rng.uniform(20, 240, 3).astype(np.float32)
        x = int(rng.integers(0, width - person_width))
        y = walk_bottom - person_height - int(rng.integers(0, 3))
        speed = int(rng.choice([-1, 0, 1]))
        sprites.append(_Sprite(PERSON, len(sprites), mask, _textured(rng, mask, colour), x, y, speed - pan))
    return sprites


def _paste(canvas: np.ndarray, values: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Paste ``values`` where ``mask`` is set, with its top-left at (x, y), clipped to the canvas."""
    h, w = mask.shape
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + h, canvas.shape[0]), min(x + w, canvas.shape[1])
    if top >= bottom or left >= right:
        return
    sub = mask[top - y : bottom - y, left - x : right - x]
    region = canvas[top:bottom, left:right]
    region[sub] = values[top - y : bottom - y, left - x : right - x][sub] if values.ndim >= 2 else values


def _coarse(fine: np.ndarray) -> np.ndarray:
    """A Cityscapes-style coarse label: each class region eroded, borders between regions ignored."""
    coarse = np.full_like(fine, IGNORE_INDEX)
    kernel = np.ones((2 * COARSE_ERODE_PX + 1, 2 * COARSE_ERODE_PX + 1), np.uint8)
    for train_id in np.unique(fine):
        if train_id == IGNORE_INDEX:
            continue
        inside = cv2.erode((fine == train_id).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
        coarse[inside.astype(bool)] = train_id
    return coarse


def _imwrite(path: Path, array: np.ndarray) -> None:
    """Write a PNG (RGB when 3 channels) into the private work folder; fail loudly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(array, path))  # not cv2.imwrite: it crashes on names the locale cannot encode


def _write_clip(work: Path, split: str, number: int, params: dict[str, Any]) -> None:
    """Render and write all frames and labels of one clip."""
    rng = _clip_rng(params, split, number)
    height, width = params["size"]
    num_frames = params["num_frames"]
    pan = int(rng.choice([-2, -1, 0, 1, 2]))
    world_width = width + abs(pan) * num_frames + 1
    world_image, world_labels = _background(rng, height, world_width)
    road_top = int(np.argmax((world_labels == ROAD).any(axis=1)))
    sprites = _sprites(rng, height, width, road_top, pan)
    sprites.sort(key=lambda s: s.y + s.mask.shape[0])  # nearer (lower) objects drawn last
    start = 0 if pan >= 0 else world_width - width  # camera column of frame 0

    seq = f"{number:06d}"
    for frame in range(num_frames):
        column = start + pan * frame
        image = world_image[:, column : column + width].copy()
        labels = world_labels[:, column : column + width].copy()
        instances = _TRAIN_TO_LABEL_ID_TABLE[labels] if frame == ANCHOR_FRAME else None
        for sprite in sprites:
            x = sprite.x + sprite.dx * (frame - ANCHOR_FRAME)
            _paste(image, sprite.texture, sprite.mask, x, sprite.y)
            _paste(labels, np.uint8(sprite.train_id), sprite.mask, x, sprite.y)
            if instances is not None:
                instance_id = np.uint16(TRAIN_TO_LABEL_ID[sprite.train_id] * 1000 + sprite.instance)
                _paste(instances, instance_id, sprite.mask, x, sprite.y)
        name = f"{CITY}_{seq}_{frame:06d}"
        _imwrite(work / "leftImg8bit_sequence" / split / CITY / f"{name}_leftImg8bit.png", image)
        _imwrite(work / "gtFine_sequence" / split / CITY / f"{name}_gtFine_labelTrainIds.png", labels)
        if instances is not None:
            _imwrite(work / "leftImg8bit" / split / CITY / f"{name}_leftImg8bit.png", image)
            _imwrite(work / "gtFine" / split / CITY / f"{name}_gtFine_labelTrainIds.png", labels)
            _imwrite(work / "gtFine" / split / CITY / f"{name}_gtFine_instanceIds.png", instances)
            _imwrite(work / "gtCoarse" / split / CITY / f"{name}_gtCoarse_labelTrainIds.png", _coarse(labels))
    motion = {
        "camera_pan": pan,
        "objects": [
            {
                "instance_id": TRAIN_TO_LABEL_ID[s.train_id] * 1000 + s.instance,
                "train_id": s.train_id,
                "dx": s.dx,
                "dy": 0,
            }
            for s in sprites
        ],
    }
    motion_path = work / "motion" / split / CITY / f"{CITY}_{seq}_{ANCHOR_FRAME:06d}_motion.json"
    motion_path.parent.mkdir(parents=True, exist_ok=True)
    motion_path.write_text(json.dumps(motion, indent=2) + "\n", encoding="utf-8")
