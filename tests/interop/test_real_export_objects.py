"""Which pixels of the real tool exports in ../shared/data/tool_exports are which object, once imported.

The expected pixels are read off the files by hand (their JSON and PNGs are 10×5 pixels).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.cli import main
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.interop import read_export
from frugalseg.interop.raster import rasterize


@pytest.fixture(scope="module")
def coco(shared_data: Path) -> Path:
    return shared_data / "tool_exports" / "coco_dataset"


def _png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return np.asarray(image)


def test_a_panoptic_segment_of_the_background_class_is_no_object(coco):
    """Segment 7 ('a', columns 0–1) is object 1; segment 20 ('b' → background, columns 2–3) is none."""
    (frame,) = read_export("coco-panoptic", coco / "coco_panoptic/annotations/panoptic_val.json").frames
    made = rasterize(frame, (10, 5), [1, 0], background=0)[LabelKind.FINE]  # a → object 1, b → background 0
    assert made.label[0].tolist() == [1, 1, 0, 0, 0] and (made.label == made.label[0]).all()
    assert made.instances is not None
    assert made.instances[0].tolist() == [1, 1, 0, 0, 0] and (made.instances == made.instances[0]).all()


def test_label_import_of_the_panoptic_export_writes_background_as_instance_0(coco, tmp_path, capsys):
    panoptic = coco / "coco_panoptic"
    store = tmp_path / "store"
    args = ["label", "import", str(panoptic / "annotations/panoptic_val.json"), "--tool", "coco-panoptic",
            "--format", "video", "--root", str(panoptic / "images/val"), "--out", str(store),
            "--map", "a=object", "--map", "b=background"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr()
    ids = _png(store / "all/val/b_fine_instanceIds.png")
    label = _png(store / "all/val/b_fine_labelTrainIds.png")
    expected_ids = np.zeros((10, 5), np.uint8)
    expected_ids[:, :2] = 1
    np.testing.assert_array_equal(ids, expected_ids)
    expected = np.full((10, 5), IGNORE_INDEX, np.uint8)  # the file draws the background: column 4 is none
    expected[:, :2], expected[:, 2:4] = 1, 0
    np.testing.assert_array_equal(label, expected)
