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

#: gtFine's label id of the pixels no polygon covers.
UNLABELED = 0
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def class_name(instance: int) -> str:
    """The train class's name of an instance id (26005: "car"); ``label<id>`` for a class of no train id."""
    label_id = instance // INSTANCE_ID_BASE
    train_id = int(CITYSCAPES.label_id_to_train_id[label_id])
    return CITYSCAPES.names[train_id] if train_id < CITYSCAPES.num_classes else f"label{label_id}"


def objects(root: Path, min_area: int) -> list[tuple[Path, Path, int]]:
    """Every (image, instance map, instance id) of at least ``min_area`` pixels under ``root``'s gtFine.

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
        frame = path.name[: -len(INSTANCE_SUFFIX)]
        image = root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png"
        for needed in (image, path.with_name(f"{frame}{LABEL_SUFFIX}")):
            if not needed.is_file():
                raise FileNotFoundError(f"{needed}: missing beside the instance map {path}")
        ids, areas = np.unique(read_instance_ids(path), return_counts=True)
        found += [(image, path, int(i)) for i, area in zip(ids, areas, strict=True) if i and area >= min_area]
    return found


def object_mask(instance_map: Path, instance: int) -> np.ndarray:
    """The instance's mask (uint8): 255 the instance, 128 unlabeled, 0 the rest."""
    frame = instance_map.name[: -len(INSTANCE_SUFFIX)]
    labels = cv2.imread(str(instance_map.with_name(f"{frame}{LABEL_SUFFIX}")), cv2.IMREAD_GRAYSCALE)
    mask = np.where(labels == UNLABELED, 128, 0).astype(np.uint8)
    mask[read_instance_ids(instance_map) == instance] = 255
    return mask


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
    for image, instance_map, instance in found:
        name = class_name(instance)
        number = numbers[name] = numbers.get(name, -1) + 1
        stem = f"{name}{number:02d}_{instance_map.name[: -len(INSTANCE_SUFFIX)]}"
        shutil.copyfile(image, args.out / "images" / f"{stem}.png")
        cv2.imwrite(str(args.out / "masks" / f"{stem}.png"), object_mask(instance_map, instance))
    print(f"{len(found)} objects of ≥ {args.min_area} px in {args.out}")


if __name__ == "__main__":
    main()
