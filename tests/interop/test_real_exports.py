"""Every shape of the real tool exports in ../shared/data/tool_exports is read, checked against the files.

The expected values are read off the files by hand (their XML and JSON are short): frame numbers,
label names, vertices, box corners, mask pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.errors import DataError
from frugalseg.interop import read_export
from frugalseg.interop.raster import rasterize


@pytest.fixture(scope="module")
def exports(shared_data: Path) -> Path:
    return shared_data / "tool_exports"


def test_cvat_video_with_step_3_from_frame_10(exports):
    export = read_export("cvat-video", exports / "cvat_dataset/for_video/annotations.xml")
    assert export.video == "t.mp4"
    assert export.labels == ("klhg", "z U k", "II")
    # task frames 10, 13, 16, 19; track 0 (box) and 1 (points) are outside from 13, track 2 from 16
    assert [frame.key for frame in export.frames] == [10, 13]
    assert export.shape_count() == 3
    box, points = export.frames[0].shapes
    assert (box.type, box.label, box.instance_id) == ("box", "II", 1)
    np.testing.assert_array_equal(box.points, [[3.0, 4.0], [10.0, 5.0]])
    assert (points.type, points.label, points.instance_id) == ("points", "klhg", 2)
    np.testing.assert_array_equal(points.points, [[21.95, 8.00], [2.55, 15.09], [2.23, 3.16]])
    (line,) = export.frames[1].shapes
    assert (line.type, line.label, line.instance_id, line.element) == (
        "polyline",
        "II",
        3,
        "track 2 (frame 13)",
    )
    np.testing.assert_array_equal(line.points, [[7.85, 13.88], [3.50, 6.67], [15.90, 2.00], [13.31, 7.21]])
    assert export.frames[0].size == (20, 25)


def test_cvat_video_frame_10_as_labels(exports):
    export = read_export("cvat-video", exports / "cvat_dataset/for_video/annotations.xml")
    labels = rasterize(export.frames[0], (20, 25), [1, 0])  # II → 1, klhg → 0
    boxes = labels[LabelKind.BOXES]
    expected = np.full((20, 25), IGNORE_INDEX, np.uint8)
    expected[4:5, 3:10] = 1  # xtl 3, ytl 4, xbr 10, ybr 5: row 4, columns 3…9
    np.testing.assert_array_equal(boxes.label, expected)
    assert [(b.x0, b.y0, b.x1, b.y1, b.instance_id) for b in boxes.boxes] == [(3, 4, 10, 5, 1)]
    clicks = labels[LabelKind.CLICKS]
    assert [(c.x, c.y, c.train_id) for c in clicks.clicks] == [(21, 8, 0), (2, 15, 0), (2, 3, 0)]
    assert np.count_nonzero(clicks.label != IGNORE_INDEX) == 3
    assert clicks.label[8, 21] == clicks.label[15, 2] == clicks.label[3, 2] == 0
    assert clicks.instances is not None and clicks.instances[8, 21] == 2


@pytest.mark.parametrize("file", ["export_project/annotations.xml", "export_task/train.xml"])
def test_cvat_images(exports, file):
    export = read_export("cvat-images", exports / "cvat_dataset/for_images" / file)
    project = file.startswith("export_project")
    assert len(export.frames) == (6 if project else 2)
    assert export.shape_count() == (12 if project else 4)
    img0, img1 = export.frames[:2]
    assert img0.key == ("Test/img0.jpg" if project else "img0.jpg") and img0.size == (8, 8)
    assert img1.size == (10, 10)
    box, line = img0.shapes
    assert (box.type, box.label, box.z_order) == ("box", "label1", 1)
    np.testing.assert_array_equal(box.points, [[0, 2], [4, 4]])
    assert (line.type, line.label) == ("polyline", "label2" if project else "")
    np.testing.assert_array_equal(line.points, [[1, 2], [3, 4], [5, 6], [7, 8]])
    polygon, points = img1.shapes
    assert (polygon.type, polygon.z_order, points.type, points.z_order) == ("polygon", 1, "points", 2)
    np.testing.assert_array_equal(polygon.points, [[1, 2], [3, 4], [6, 5]])
    np.testing.assert_array_equal(points.points, [[1, 2], [3, 4], [5, 6]])
    labels = rasterize(img1, (10, 10), [0, 1])
    assert set(labels) == {LabelKind.FINE, LabelKind.CLICKS}
    # the thin triangle (area 2) covers one pixel centre as COCO rasterises it: (3, 3)
    assert np.argwhere(labels[LabelKind.FINE].label != IGNORE_INDEX).tolist() == [[3, 3]]
    assert np.argwhere(labels[LabelKind.CLICKS].label == 1).tolist() == [[2, 1], [4, 3], [6, 5]]


def test_coco_instances(exports):
    folder = exports / "coco_dataset/coco_instances/annotations"
    train = read_export("coco", folder / "instances_train.json")
    assert train.labels == ("a", "b", "c")
    (frame,) = train.frames
    assert (frame.key, frame.size) == ("a.jpg", (5, 10))
    (box,) = frame.shapes  # empty segmentation: its bbox [2, 2, 3, 1]
    assert (box.type, box.label, box.element) == ("box", "b", "annotation 1 (image 5)")
    np.testing.assert_array_equal(box.points, [[2, 2], [5, 3]])
    val = read_export("coco", folder / "instances_val.json")
    (frame,) = val.frames
    assert (frame.key, frame.size) == ("b.jpg", (10, 5))
    polygon, rle = frame.shapes
    assert (polygon.label, rle.label) == ("a", "b")
    assert (polygon.type, polygon.points.tolist()) == ("polygon", [[0, 0], [1, 0], [1, 2], [0, 2]])
    expected = np.zeros((10, 5), bool)
    expected[:, :2] = True  # counts [0, 20, 30], column-major: the first two columns
    np.testing.assert_array_equal(rle.get_mask(), expected)
    label = rasterize(frame, (10, 5), [0, 1])[LabelKind.FINE].label
    # the crowd RLE is drawn beneath the polygon it covers (test_real_export_objects.py)
    assert (label[2:, :2] == 1).all() and (label[:2, 0] == 0).all() and (label[:, 2:] == IGNORE_INDEX).all()


def test_coco_panoptic(exports):
    folder = exports / "coco_dataset/coco_panoptic/annotations"
    val = read_export("coco-panoptic", folder / "panoptic_val.json")
    (frame,) = val.frames
    assert frame.key == "b.jpg"
    a, b = frame.shapes
    assert (a.label, b.label, a.instance_id, b.instance_id) == ("a", "b", 1, 2)
    assert (
        a.get_mask()[:, :2].all(),
        a.get_mask().sum(),
        b.get_mask()[:, 2:4].all(),
        b.get_mask().sum(),
    ) == (True, 20, True, 20)


def test_coco_panoptic_train_png_does_not_fit_its_image(exports):
    """The datumaro asset's a.png is 5×5 while its image a.jpg says 10×5: an error naming both."""
    folder = exports / "coco_dataset/coco_panoptic/annotations"
    with pytest.raises(
        DataError, match=r"a\.png: panoptic PNG of 5×5 does not fit image 5 \(a\.jpg\) of 10×5 \(in panoptic"
    ):
        read_export("coco-panoptic", folder / "panoptic_train.json")


def test_mit_labelme_xml(exports):
    export = read_export("labelme", exports / "labelme_dataset/Annotations")
    (frame,) = export.frames
    assert (frame.key, frame.size) == ("subset1/img1.png", (77, 102))
    kinds = [(s.type, s.label, s.instance_id) for s in frame.shapes]
    assert kinds == [
        ("polygon", "window", 1),
        ("mask", "license plate", 2),
        ("polygon", "o1", 3),
        ("polygon", "q1", 4),
        ("box", "b1", 5),  # <type>bounding_box</type>
        ("mask", "m1", 6),  # a bounding_box object with a segm mask: the mask
        ("polygon", "hg", 7),
    ]
    np.testing.assert_array_equal(frame.shapes[0].points, [[43, 34], [45, 34], [45, 37], [43, 37]])
    np.testing.assert_array_equal(frame.shapes[4].points, [[13, 19], [23, 30]])
    plate, m1 = frame.shapes[1].get_mask(), frame.shapes[5].get_mask()
    assert plate.sum() == 10 and np.argwhere(plate).min(0).tolist() == [
        67,
        58,
    ]  # inside its box 58…62 × 66…68
    assert np.argwhere(plate).max(0).tolist() == [68, 62]
    assert m1.sum() == 130 and np.argwhere(m1).min(0).tolist() == [14, 55]


@pytest.mark.parametrize("subset", ["train", "val"])
def test_mots(exports, subset):
    export = read_export("mots", exports / "mots_dataset" / subset)
    found = {
        f.key: [(s.label, s.instance_id, np.flatnonzero(s.get_mask()).tolist()) for s in f.shapes]
        for f in export.frames
    }
    if subset == "train":  # 1.png holds 4003 4003 3002 4001 0, 2.png 4002 0 0 0 0
        assert found == {
            "1.png": [("c", 3002, [2]), ("d", 4001, [3]), ("d", 4003, [0, 1])],
            "2.png": [("d", 4002, [0])],
        }
    else:
        assert found == {"3.png": [("a", 1001, [1])]}


def test_masks_of_a_real_video_go_to_cvat_and_back(shared_data, tmp_path):
    """DAVIS car-shadow's masks of frames 5 and 10 on car-shadow.mp4: COCO in, CVAT for video out, CVAT in."""
    import json

    import cv2

    from frugalseg.autolabel.store import LabelStore
    from frugalseg.data.formats import get_format
    from frugalseg.interop import ClassMapping, import_export, stored_frames, write_export
    from frugalseg.interop.rle import coco_encode

    video = get_format("video", shared_data / "video_dev/car-shadow.mp4")
    truth = {
        t: cv2.imread(str(shared_data / f"davis_dev/Annotations/480p/car-shadow/{t:05d}.png"), 0) > 0
        for t in (5, 10)
    }
    images = [{"id": t, "file_name": f"car-shadow.mp4/{t:05d}", "width": 854, "height": 480} for t in truth]
    annotations = [
        {"id": t, "image_id": t, "category_id": 1, "segmentation": coco_encode(m)} for t, m in truth.items()
    ]
    coco = tmp_path / "masks.json"
    coco.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "car"}]}),
        encoding="utf-8",
    )
    mapping = ClassMapping(video.class_names, {"car": "object"})
    first = LabelStore(tmp_path / "first")
    import_export(read_export("coco", coco), video, "all", first, mapping, background="background")
    frames = stored_frames(first, video)
    assert [(f.name, f.offset, f.size) for f in frames] == [
        ("car-shadow.mp4/00005", 5, (480, 854)),
        ("car-shadow.mp4/00010", 10, (480, 854)),
    ]
    write_export("cvat-video", tmp_path / "car-shadow.xml", frames, list(video.class_names))
    export = read_export("cvat-video", tmp_path / "car-shadow.xml")
    assert [f.key for f in export.frames] == [5, 10]  # the outside shapes on 6 and 11 end the tracks
    again = LabelStore(tmp_path / "again")
    import_export(export, video, "all", again, ClassMapping(video.class_names))
    for t, mask in truth.items():
        label = cv2.imread(
            str(tmp_path / f"again/all/car-shadow.mp4/{t:05d}_fine_labelTrainIds.png"), cv2.IMREAD_UNCHANGED
        )
        np.testing.assert_array_equal(label, mask.astype(np.uint8))
