"""Cityscapes' instances as image and mask pairs for `bench_interactive.py`: small objects in large frames.

Each instance of a gtFine ``*_instanceIds.png`` (a value ≥ 1000: the label id × 1000 + its number) of at least
``--min-area`` pixels is an object, written as ``OUT/images/<class>NN_<frame>.png`` (the frame's own
``leftImg8bit`` PNG, copied) and ``OUT/masks/<class>NN_<frame>.png``: 255 the instance, 0 the rest, 128 the
pixels gtFine leaves unlabeled (label id 0, the gaps between polygons), which `bench_interactive.py`
ignores as it ignores the GrabCut set's band. The objects are small: on `cityscapes_dev`'s one gtFine frame,
12 of 665 to 17,424 pixels, under 1 % of the frame each.

    PYTHONPATH=. .venv/bin/python benchmarks/cityscapes_objects.py --root ../shared/data/cityscapes_dev \\
        --out /tmp/cityscapes_objects
    PYTHONPATH=. .venv/bin/python benchmarks/bench_interactive.py --images /tmp/cityscapes_objects/images \\
        --masks /tmp/cityscapes_objects/masks --json /tmp/cityscapes_objects.json
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2
import numpy as np

from frugalseg.data.classes import CITYSCAPES
from frugalseg.data.formats.cityscapes import INSTANCE_ID_BASE, read_instance_ids
from frugalseg.errors import DataError

#: gtFine's label id of the pixels no polygon covers.
UNLABELED = 0
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def class_name(instance: int) -> str:
    """The train class's name of an instance id (26005: "car"); ``label<id>`` for a class of no train id."""
    label_id = instance // INSTANCE_ID_BASE
    train_id = int(CITYSCAPES.label_id_to_train_id[label_id])
    return CITYSCAPES.names[train_id] if train_id < CITYSCAPES.num_classes else f"label{label_id}"


def objects(root: Path, min_area: int) -> list[tuple[Path, Path, list[int]]]:
    """Each gtFine frame under ``root``: its image, its instance map and its instances of ≥ ``min_area`` px.

    Raises:
        FileNotFoundError: if ``root`` has no gtFine instance maps, or a map has no frame or label map.
        DataError: an instance map that cannot be read (`read_instance_ids`), naming it.
    """
    maps = sorted((root / "gtFine").glob(f"*/*/*{INSTANCE_SUFFIX}"))
    if not maps:
        raise FileNotFoundError(f"{root / 'gtFine'}: no gtFine instance maps (*{INSTANCE_SUFFIX})")
    found = []
    for path in maps:
        split, city = path.parent.parent.name, path.parent.name
        image = root / "leftImg8bit" / split / city / f"{frame_name(path)}_leftImg8bit.png"
        for needed in (image, labels_path(path)):
            if not needed.is_file():
                raise FileNotFoundError(f"{needed}: missing beside the instance map {path}")
        ids, areas = np.unique(read_instance_ids(path), return_counts=True)
        found.append(
            (image, path, [int(i) for i, area in zip(ids, areas, strict=True) if i and area >= min_area])
        )
    return found


def frame_name(instance_map: Path) -> str:
    """The frame an instance map belongs to (``aachen_000000_000019``)."""
    return instance_map.name[: -len(INSTANCE_SUFFIX)]


def labels_path(instance_map: Path) -> Path:
    """The gtFine label-id map beside an instance map."""
    return instance_map.with_name(f"{frame_name(instance_map)}{LABEL_SUFFIX}")


def object_masks(instance_map: Path, instances: list[int]) -> list[np.ndarray]:
    """Each instance's mask (uint8): 255 the instance, 128 unlabeled, 0 the rest; each map read once.

    Raises:
        DataError: a label-id map that cannot be decoded, naming it.
    """
    labels = cv2.imread(str(labels_path(instance_map)), cv2.IMREAD_GRAYSCALE)
    if labels is None:
        raise DataError(labels_path(instance_map), "cannot decode image (corrupt or not an image)")
    ids = read_instance_ids(instance_map, labels.shape)
    unlabeled = np.where(labels == UNLABELED, 128, 0).astype(np.uint8)
    return [np.where(ids == instance, 255, unlabeled).astype(np.uint8) for instance in instances]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="Cityscapes in its own layout")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/images and OUT/masks")
    parser.add_argument("--min-area", type=int, default=500, help="an object's least pixels")
    args = parser.parse_args()
    found = objects(args.root, args.min_area)
    for folder in ("images", "masks"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    numbers: dict[str, int] = {}
    for image, instance_map, instances in found:
        for instance, mask in zip(instances, object_masks(instance_map, instances), strict=True):
            name = class_name(instance)
            number = numbers[name] = numbers.get(name, -1) + 1
            stem = f"{name}{number:02d}_{frame_name(instance_map)}"
            shutil.copyfile(image, args.out / "images" / f"{stem}.png")
            cv2.imwrite(str(args.out / "masks" / f"{stem}.png"), mask)
    print(f"{sum(len(instances) for *_, instances in found)} objects of ≥ {args.min_area} px in {args.out}")


if __name__ == "__main__":
    main()
