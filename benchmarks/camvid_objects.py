"""CamVid's street objects as image and mask pairs for `bench_interactive.py`, a set the tools never saw.

Each 8-connected region of a thing class (pole, sign, car, pedestrian, bicyclist) of at least ``--min-area``
pixels in CamVid's label maps is an object (regions of one class that touch, such as a row of parked cars,
are one object: CamVid has no instances). ``--per-class`` of them per class, evenly spaced over the
frames of the splits, are written as ``OUT/images/<class>NN_<frame>.jpg`` (the frame's own JPEG, copied) and
``OUT/masks/<class>NN_<frame>.png``: 255 the object, 0 the rest, 128 CamVid's void pixels (label 11), which
`bench_interactive.py` ignores as it ignores the GrabCut set's band.

    PYTHONPATH=. .venv/bin/python benchmarks/camvid_objects.py --root ../shared/data/camvid_dev \\
        --out /tmp/camvid_objects
    PYTHONPATH=. .venv/bin/python benchmarks/bench_interactive.py --images /tmp/camvid_objects/images \\
        --masks /tmp/camvid_objects/masks --json /tmp/camvid_objects.json
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2
import numpy as np

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.formats.camvid import CAMVID, read_segnet_label

#: The thing classes' ids in CamVid's SegNet-layout labels (`CAMVID`'s names), by the names the files take.
THINGS = {
    name: CAMVID.names.index(table_name)
    for name, table_name in (
        ("pole", "Pole"),
        ("sign", "SignSymbol"),
        ("car", "Car"),
        ("pedestrian", "Pedestrian"),
        ("bicyclist", "Bicyclist"),
    )
}


def regions(root: Path, splits: list[str], class_id: int, min_area: int) -> list[tuple[Path, Path, int]]:
    """Every (image, label, region index) of ``class_id`` with at least ``min_area`` pixels, in file order.

    Args:
        root: CamVid in SegNet's layout (``<split>/*.jpg``, ``<split>annot/*.png``).
        splits: the splits to read, e.g. ``["train", "val"]``.
        class_id: the label id of the class.
        min_area: an object's least pixels.

    Raises:
        FileNotFoundError: if a split has no label folder or a label has no image.
        DataError: a label that is not a SegNet-layout label (`read_segnet_label`), naming it.
    """
    found = []
    for split in splits:
        labels = root / f"{split}annot"
        if not labels.is_dir():
            raise FileNotFoundError(f"{labels}: no CamVid label folder (SegNet's layout)")
        for label_path in sorted(labels.glob("*.png")):
            image_path = root / split / f"{label_path.stem}.jpg"
            if not image_path.is_file():
                raise FileNotFoundError(f"{image_path}: the image of label {label_path} is missing")
            ours = (read_segnet_label(label_path) == class_id).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(ours, connectivity=8)
            areas = stats[:, cv2.CC_STAT_AREA]
            found += [(image_path, label_path, i) for i in range(1, count) if areas[i] >= min_area]
    return found


def object_mask(label_path: Path, class_id: int, index: int) -> np.ndarray:
    """The region's mask (uint8): 255 the region, 128 void, 0 the rest."""
    label = read_segnet_label(label_path)  # void read as `IGNORE_INDEX`
    _, parts = cv2.connectedComponents((label == class_id).astype(np.uint8), connectivity=8)
    mask = np.where(label == IGNORE_INDEX, 128, 0).astype(np.uint8)
    mask[parts == index] = 255
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="CamVid in SegNet's layout")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/images and OUT/masks")
    parser.add_argument("--splits", default="train,val", help="comma-separated splits")
    parser.add_argument("--per-class", type=int, default=20, help="objects per class, evenly spaced")
    parser.add_argument("--min-area", type=int, default=1000, help="an object's least pixels")
    args = parser.parse_args()
    splits = args.splits.split(",")
    chosen = []
    for name, class_id in THINGS.items():
        found = regions(args.root, splits, class_id, args.min_area)
        picks = np.unique(np.linspace(0, len(found) - 1, min(args.per_class, len(found))).round().astype(int))
        chosen += [(name, class_id, number, *found[pick]) for number, pick in enumerate(picks)]
        print(f"{name}: {len(found)} regions of ≥ {args.min_area} px, {len(picks)} kept")
    for folder in ("images", "masks"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    for name, class_id, number, image_path, label_path, index in chosen:
        stem = f"{name}{number:02d}_{image_path.stem}"
        shutil.copyfile(image_path, args.out / "images" / f"{stem}.jpg")
        cv2.imwrite(str(args.out / "masks" / f"{stem}.png"), object_mask(label_path, class_id, index))
    print(f"{len(chosen)} objects in {args.out}")


if __name__ == "__main__":
    main()
