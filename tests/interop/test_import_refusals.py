"""`frugalseg label import` of malformed tool files: one line naming the file and element, exit 2, no store.

Each file is a tiny hand-made export of frame 0 (or 2) of the fake DAVIS ``squares-a`` (64×48).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import squares, write_moving_squares

from frugalseg.cli import main
from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import get_format
from frugalseg.interop.cvat import write_cvat_video


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_squares(tmp_path_factory.mktemp("davis"))


def _import(file: Path, tool: str, root: Path, store: Path, *extra: str, fmt: str = "davis") -> int:
    args = ["label", "import", str(file), "--tool", tool, "--format", fmt, "--root", str(root)]
    return main([*args, "--out", str(store), *extra])


def _refused(file: Path, tool: str, root: Path, tmp_path: Path, capsys, problem: str, *extra: str,
             fmt: str = "davis", named: Path | None = None) -> None:  # fmt: skip
    """The import of ``file`` fails with the one line ``error: <named or file>: <problem>`` and no store."""
    store = tmp_path / "store"
    code = _import(file, tool, root, store, "--map", "vehicle=object", *extra, fmt=fmt)
    assert capsys.readouterr().err.splitlines() == [f"error: {named or file}: {problem}"]
    assert code == 2
    assert not store.exists()


def _coco(tmp_path: Path, annotation: dict) -> Path:
    """A COCO file of frame 0 of squares-a holding ``annotation`` (id 1, category 'vehicle')."""
    data = {"images": [{"id": 1, "file_name": "squares-a/00000.jpg", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 7, **annotation}],
            "categories": [{"id": 7, "name": "vehicle"}]}  # fmt: skip
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _labelme(tmp_path: Path, *shapes: dict) -> Path:
    """A labelme JSON of frame 0 of squares-a holding ``shapes``."""
    data = {"imagePath": "squares-a/00000.jpg", "imageHeight": 48, "imageWidth": 64, "shapes": list(shapes)}
    path = tmp_path / "00000.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _cvat_images(
    tmp_path: Path, shapes: str, meta: str = "", name: str = "squares-a/00000.jpg", size: tuple = (48, 64)
) -> Path:
    """A CVAT for images XML of one frame (frame 0 of squares-a) holding the XML ``shapes``."""
    path = tmp_path / "cvat.xml"
    path.write_text(
        f'<annotations><version>1.1</version><meta>{meta}</meta><image id="0" name="{name}" '
        f'width="{size[1]}" height="{size[0]}">{shapes}</image></annotations>',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("counts", "problem"),
    [
        ("!!!garbage", "RLE counts '!!!garbage' are not COCO's compressed RLE "
                       "(character '!' at 0 is none of its characters)"),
        ("0", "RLE counts add up to 0 pixels, not 48×64"),
        ("0R", "RLE counts '0R' are not COCO's compressed RLE (it ends within a count)"),
    ],
)  # fmt: skip
def test_a_damaged_compressed_rle_is_refused(davis, tmp_path, capsys, counts, problem):
    """pycocotools raises on some damaged counts, decodes others from memory it never wrote: checked first."""
    coco = _coco(tmp_path, {"segmentation": {"size": [48, 64], "counts": counts}, "iscrowd": 1})
    _refused(coco, "coco", davis, tmp_path, capsys, f"annotation 1 (image 1): {problem}")


@pytest.mark.parametrize(
    ("points", "problem"),
    [([[10, 10]], "got 1"), ([], "got 0"), ([[10, 10], [12, 10], [14, 10]], "got 3")],
)
def test_a_labelme_circle_without_its_two_points_is_refused(davis, tmp_path, capsys, points, problem):
    labelme = _labelme(tmp_path, {"label": "vehicle", "points": points, "shape_type": "circle"})
    expected = f"shape 1: a circle needs 2 points (its centre and one on it), {problem}"
    _refused(labelme, "labelme", davis, tmp_path, capsys, expected)


def test_a_coco_bbox_of_negative_size_is_refused(davis, tmp_path, capsys):
    coco = _coco(tmp_path, {"segmentation": [], "bbox": [20, 10, -5, 8]})
    expected = "annotation 1 (image 1): bbox [20, 10, -5, 8] has a negative width or height"
    _refused(coco, "coco", davis, tmp_path, capsys, expected)


@pytest.mark.parametrize(("width", "height"), [(-10, 20), (10, -20)])
def test_a_label_studio_rectangle_of_negative_size_is_refused(davis, tmp_path, capsys, width, height):
    """Label Studio keeps width and height positive (a box turns by its rotation): negative is refused."""
    value = {"x": 50, "y": 10, "width": width, "height": height, "rectanglelabels": ["vehicle"]}
    result = {"id": "r1", "type": "rectanglelabels", "original_width": 64, "original_height": 48,
              "value": value}  # fmt: skip
    task = {"id": 1, "data": {"image": "/data/local-files/?d=squares-a/00000.jpg"},
            "annotations": [{"result": [result]}]}  # fmt: skip
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([task]), encoding="utf-8")
    expected = f"task 1 result r1: a rectangle of negative size ({width:g}% × {height:g}% of the image)"
    _refused(path, "label-studio", davis, tmp_path, capsys, expected)


def test_a_label_studio_video_rectangle_of_negative_size_is_refused(davis, tmp_path, capsys):
    item = {"frame": 1, "x": 10, "y": 10, "width": -5, "height": 10, "enabled": False}
    result = {"id": "t1", "type": "videorectangle", "value": {"sequence": [item], "labels": ["vehicle"]}}
    task = {"id": 1, "data": {"video": "/data/upload/1/squares-a.mp4"}, "annotations": [{"result": [result]}]}
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([task]), encoding="utf-8")
    expected = "task 1 result t1: a rectangle of negative size (-5% × 10% of the image)"
    _refused(path, "label-studio", davis, tmp_path, capsys, expected)


@pytest.mark.parametrize(
    ("corners", "problem"),
    [('xtl="30" ytl="5" xbr="10" ybr="20"', "xbr=10 is left of xtl=30"),
     ('xtl="10" ytl="20" xbr="30" ybr="5"', "ybr=5 is above ytl=20")],
)  # fmt: skip
def test_an_inverted_cvat_box_is_refused(davis, tmp_path, capsys, corners, problem):
    xml = _cvat_images(tmp_path, f'<box label="vehicle" {corners} />')
    _refused(xml, "cvat-images", davis, tmp_path, capsys, f"image 0 (squares-a/00000.jpg) box 1: {problem}")


def test_a_panoptic_segment_without_pixels_is_refused(davis, tmp_path, capsys):
    """A segment of segments_info whose id no pixel of the PNG holds: an object said there, not drawn."""
    folder = tmp_path / "panoptic"
    folder.mkdir()
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[squares(0, 0) == 1] = (3, 0, 0)  # segment 3
    cv2.imwrite(str(folder / "00000.png"), rgb[..., ::-1])
    segments = [{"id": 3, "category_id": 7}, {"id": 5, "category_id": 7}]
    data = {"images": [{"id": 1, "file_name": "squares-a/00000.jpg", "width": 64, "height": 48}],
            "annotations": [{"image_id": 1, "file_name": "00000.png", "segments_info": segments}],
            "categories": [{"id": 7, "name": "vehicle"}]}  # fmt: skip
    path = tmp_path / "panoptic.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    expected = (
        "image 1 (squares-a/00000.jpg) segment 5: no pixel of the PNG holds id 5 (listed in panoptic.json)"
    )
    _refused(path, "coco-panoptic", davis, tmp_path, capsys, expected, named=folder / "00000.png")


@pytest.mark.parametrize(
    "ring", [[10, 10, 10, 10, 10, 10], [10, 10, 20, 20, 30, 30, 15, 15]], ids=["a point", "a line"]
)
def test_a_coco_polygon_of_no_area_is_refused(davis, tmp_path, capsys, ring):
    coco = _coco(tmp_path, {"segmentation": [ring]})
    points = len(ring) // 2
    expected = f"annotation 1 (image 1): a polygon of no area (its {points} points lie on one line)"
    _refused(coco, "coco", davis, tmp_path, capsys, expected)


def test_a_bow_tie_polygon_is_not_of_no_area(davis, tmp_path, capsys):
    """Its signed area is 0, but it covers pixels: only polygons whose points lie on one line are refused."""
    coco = _coco(tmp_path, {"segmentation": [[10, 10, 30, 30, 30, 10, 10, 30]]})
    assert _import(coco, "coco", davis, tmp_path / "store", "--map", "vehicle=object") == 0


def test_a_coco_polygon_of_an_odd_number_of_values_is_refused(davis, tmp_path, capsys):
    coco = _coco(tmp_path, {"segmentation": [[10, 10, 20, 10, 20]]})
    expected = "annotation 1 (image 1): polygon 1 holds 5 coordinates, an odd number: not (x, y) pairs"
    _refused(coco, "coco", davis, tmp_path, capsys, expected)


def test_a_labelme_line_of_one_point_is_refused(davis, tmp_path, capsys):
    labelme = _labelme(tmp_path, {"label": "vehicle", "points": [[10, 10]], "shape_type": "linestrip"})
    _refused(labelme, "labelme", davis, tmp_path, capsys, "shape 1: a polyline needs 2 points, got 1")


def test_an_import_that_makes_no_label_is_refused(davis, tmp_path, capsys):
    """Clicks all mapped to ignore make no label: an error, not an empty store."""
    labelme = _labelme(tmp_path, {"label": "vehicle", "points": [[3, 3]], "shape_type": "point"})
    store = tmp_path / "store"
    assert _import(labelme, "labelme", davis, store, "--map", "vehicle=ignore") == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {labelme}: no labels to import: its 1 shapes make none (every label maps to ignore)"
    ]
    assert not store.exists()


def test_an_import_whose_labels_are_all_there_already_is_no_error(davis, tmp_path, capsys):
    labelme = _labelme(tmp_path, {"label": "vehicle", "points": [[1, 1], [5, 1], [1, 5]]})
    store = tmp_path / "store"
    assert _import(labelme, "labelme", davis, store, "--map", "vehicle=object") == 0
    assert _import(labelme, "labelme", davis, store, "--map", "vehicle=object") == 0
    assert "→ 0 labels (none) in" in capsys.readouterr().out


def test_a_wrong_original_size_is_named_before_the_masks_it_cuts(davis, tmp_path, capsys):
    """A task of 32×24 on 64×48 frames: the sizes differ, not 'the mask leaves the frame'."""
    xml = tmp_path / "squares-a.xml"
    write_cvat_video(xml, [(2, [(LabelKind.FINE, "object", 2, squares(2, 0) == 2)])], size=(24, 32),
                     labels=["object"], name="squares-a", frame_count=10)  # fmt: skip
    root = davis / "JPEGImages" / "480p" / "squares-a"
    expected = f"frame 2: the file says 32×24, the frame {root / '00002.jpg'} is 64×48"
    _refused(xml, "cvat-video", root, tmp_path, capsys, expected, "--split", "all", fmt="video")


def test_a_shape_without_a_label_is_named_so(davis, tmp_path, capsys):
    labelme = _labelme(tmp_path, {"label": "", "points": [[1, 1], [5, 1], [1, 5]]})
    expected = (
        "shape 1: the shape has no label: label it in the tool, or map shapes without one with --map '=CLASS'"
    )
    _refused(labelme, "labelme", davis, tmp_path, capsys, expected)


def test_an_unknown_label_lists_the_labels_the_shapes_use(tiny_streets, tmp_path, capsys):
    """Not the --map keys the file lacks, nor the labels CVAT's <meta> declares but no shape uses; on a data
    set of classes (on an object data set, any name is an object's)."""
    meta = "<task><labels><label><name>car</name></label><label><name>tree</name></label></labels></task>"
    shapes = ('<box label="swan" xtl="1" ytl="1" xbr="5" ybr="5" />'
              '<box label="goose" xtl="1" ytl="1" xbr="5" ybr="5" />')  # fmt: skip
    frame = "synthtown/synthtown_000000_000000_leftImg8bit.png"
    xml = _cvat_images(tmp_path, shapes, meta, name=frame, size=(64, 128))
    classes = ", ".join(get_format("synthetic", tiny_streets).class_names)
    store = tmp_path / "store"
    assert _import(xml, "cvat-images", tiny_streets, store, "--map", "vehicle=car", fmt="synthetic") == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {xml}: image 0 ({frame}) box 1: label 'swan' maps to no class; the classes are {classes}; "
        "the file's labels are 'swan', 'goose': map it with --map 'swan=CLASS' or a --mapping file"
    ]
    assert not store.exists()


def _mask_zip(tmp_path: Path, png: bytes) -> Path:
    path = tmp_path / "masks.zip"
    with zipfile.ZipFile(path, "w") as archive:
        labelmap = "# label:color_rgb:parts:actions\nbackground:0,0,0::\nvehicle:250,50,83::\n"
        archive.writestr("labelmap.txt", labelmap)
        archive.writestr("SegmentationClass/squares-a/00000.png", png)
    return path


def _png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", rgb[..., ::-1])[1].tobytes()


def test_a_truncated_mask_zip_is_named_a_damaged_zip(davis, tmp_path, capsys):
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[squares(0, 0) == 1] = (250, 50, 83)
    path = _mask_zip(tmp_path, _png(rgb))
    path.write_bytes(path.read_bytes()[:-40])
    expected = (
        "not a zip file, or a damaged one (File is not a zip file): "
        "a cvat-mask export is CVAT's zip or its folder"
    )
    _refused(path, "cvat-mask", davis, tmp_path, capsys, expected)


def test_a_truncated_png_in_a_mask_zip_is_refused_without_opencv_warnings(davis, tmp_path, capfd):
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    png = _png(rgb)
    path = _mask_zip(tmp_path, png[: len(png) // 2])
    store = tmp_path / "store"
    assert _import(path, "cvat-mask", davis, store, "--map", "vehicle=object") == 2
    assert capfd.readouterr().err.splitlines() == [
        f"error: {path}/SegmentationClass/squares-a/00000.png: the PNG ends early (truncated): "
        "its decoded pixels would be wrong"
    ]
    assert not store.exists()


def _stray() -> np.ndarray:
    """A 6×6 square away from both objects of squares-a's frame 0 (a stray region drawn by mistake)."""
    mask = np.zeros((48, 64), bool)
    mask[40:46, 56:62] = True
    return mask


def test_two_coco_annotations_of_one_track_are_refused(davis, tmp_path, capsys):
    object_1 = {"segmentation": [[4, 8, 16, 8, 16, 20, 4, 20]], "attributes": {"track_id": 0}}
    coco = _coco(tmp_path, object_1)
    data = json.loads(coco.read_text(encoding="utf-8"))
    stray = {"id": 2, "image_id": 1, "category_id": 7, "segmentation": [[56, 40, 62, 40, 62, 46, 56, 46]],
             "attributes": {"track_id": 0}}  # fmt: skip
    data["annotations"].append(stray)
    coco.write_text(json.dumps(data), encoding="utf-8")
    expected = (
        "image 1 (squares-a/00000.jpg): annotation 1 (image 1) and annotation 2 (image 1) are both object 1 "
        "of 'vehicle'; an object is one annotation, track or region per frame: give one of them its own id"
    )
    _refused(coco, "coco", davis, tmp_path, capsys, expected)
    # one annotation's several polygons are one object, as COCO splits an instance
    rings = [object_1["segmentation"][0], stray["segmentation"][0]]
    data["annotations"] = [{**object_1, "id": 1, "image_id": 1, "category_id": 7, "segmentation": rings}]
    coco.write_text(json.dumps(data), encoding="utf-8")
    store = tmp_path / "one"
    assert _import(coco, "coco", davis, store, "--map", "vehicle=object") == 0
    ids = cv2.imread(str(store / "train/squares-a/00000_fine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    assert (ids == 1).sum() == 12 * 12 + 6 * 6 and set(np.unique(ids).tolist()) == {0, 1}


def test_two_cvat_tracks_of_one_instance_id_are_refused(davis, tmp_path, capsys):
    xml = tmp_path / "squares-a.xml"
    objects = [(LabelKind.FINE, "object", 1, squares(0, 0) == 1), (LabelKind.FINE, "object", 2, _stray())]
    write_cvat_video(xml, [(0, objects)], size=(48, 64), labels=["object"], name="squares-a", frame_count=10)
    text = xml.read_text(encoding="utf-8")
    assert text.count('<attribute name="instance_id">2</attribute>') == 2  # its frame and the outside one
    xml.write_text(text.replace('"instance_id">2<', '"instance_id">1<'), encoding="utf-8")
    expected = (
        "frame 0: track 0 (frame 0) and track 1 (frame 0) are both object 1 of 'object'; "
        "an object is one annotation, track or region per frame: give one of them its own id"
    )
    root = davis / "JPEGImages" / "480p" / "squares-a"
    _refused(xml, "cvat-video", root, tmp_path, capsys, expected, "--split", "all", fmt="video")


def test_two_label_studio_regions_of_one_object_are_refused(davis, tmp_path, capsys):
    from frugalseg.interop.rle import ls_encode

    def region(result_id: str, mask: np.ndarray) -> dict:
        return {"id": result_id, "type": "brushlabels", "from_name": "tag", "to_name": "image",
                "original_width": 64, "original_height": 48, "meta": {"instance_id": 1},
                "value": {"format": "rle", "rle": ls_encode(mask), "brushlabels": ["vehicle"]}}  # fmt: skip

    result = [region("a", squares(0, 0) == 1), region("b", _stray())]
    task = {"id": 5, "data": {"image": "/data/local-files/?d=squares-a/00000.jpg"},
            "annotations": [{"id": 1, "result": result}]}  # fmt: skip
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([task]), encoding="utf-8")
    expected = (
        "task 5: task 5 result a and task 5 result b are both object 1 of 'vehicle'; an object is one "
        "annotation, track or region per frame: give one of them its own id"
    )
    _refused(tasks, "label-studio", davis, tmp_path, capsys, expected)


def test_a_rotated_cvat_box_is_refused_not_read_unrotated(davis, tmp_path, capsys):
    xml = _cvat_images(tmp_path, '<box label="vehicle" xtl="5" ytl="5" xbr="15" ybr="10" rotation="45" />')
    expected = "image 0 (squares-a/00000.jpg) box 1: a box rotated by 45° is not a box"
    _refused(xml, "cvat-images", davis, tmp_path, capsys, expected)


def test_a_cvat_box_of_rotation_zero_is_a_box(davis, tmp_path):
    xml = _cvat_images(tmp_path, '<box label="vehicle" xtl="5" ytl="5" xbr="15" ybr="10" rotation="0.0" />')
    assert _import(xml, "cvat-images", davis, tmp_path / "store", "--map", "vehicle=object") == 0
    boxes = json.loads(next((tmp_path / "store").rglob("*boxes*.json")).read_text(encoding="utf-8"))
    assert [(b["x0"], b["y0"], b["x1"], b["y1"]) for b in boxes["boxes"]] == [(5, 5, 15, 10)]


def test_a_coco_segmentation_that_is_neither_polygons_nor_an_rle_is_refused(davis, tmp_path, capsys):
    """It had been replaced by the annotation's bbox without a word."""
    coco = _coco(tmp_path, {"segmentation": "oops", "bbox": [0, 0, 1, 1]})
    expected = "annotation 1 (image 1): segmentation oops is neither polygons (a list) nor an RLE"
    _refused(coco, "coco", davis, tmp_path, capsys, expected)


def test_coco_keypoints_that_are_not_triples_are_refused(davis, tmp_path, capsys):
    coco = _coco(tmp_path, {"segmentation": [], "bbox": [2, 2, 8, 8], "keypoints": [1, 2, 2, 3]})
    expected = "annotation 1 (image 1): keypoints hold 4 numbers, not (x, y, visibility) triples"
    _refused(coco, "coco", davis, tmp_path, capsys, expected)


def test_coco_ids_written_as_text_name_the_image_and_category_as_the_tables_do(davis, tmp_path):
    """The tables' ids are read with int(); an annotation's ``"image_id": "1"`` had been no image."""
    ring = [4, 8, 16, 8, 16, 20, 4, 20]
    coco = _coco(tmp_path, {"image_id": "1", "category_id": "7", "segmentation": [ring]})
    assert _import(coco, "coco", davis, tmp_path / "store", "--map", "vehicle=object") == 0


def test_a_coco_instances_file_given_as_panoptic_says_so(davis, tmp_path, capsys):
    coco = _coco(tmp_path, {"segmentation": [], "bbox": [2, 2, 8, 8]})
    expected = (
        "the annotation of image 1 has no PNG file_name or no segments_info: not a COCO panoptic file "
        "(an instances file is --tool coco)"
    )
    _refused(coco, "coco-panoptic", davis, tmp_path, capsys, expected)


@pytest.mark.parametrize("centre_x", [60, 3])
def test_a_labelme_circle_leaving_the_frame_is_refused(davis, tmp_path, capsys, centre_x):
    """Its disc had been clipped to the frame, where a polygon point outside it is refused."""
    shape = {"label": "vehicle", "points": [[centre_x, 24], [centre_x, 30]], "shape_type": "circle"}
    expected = f"shape 1: the circle of radius 6 around ({centre_x}, 24) leaves the 64×48 frame"
    _refused(_labelme(tmp_path, shape), "labelme", davis, tmp_path, capsys, expected)


def test_labelme_points_that_are_not_pairs_are_named(davis, tmp_path, capsys):
    labelme = _labelme(tmp_path, {"label": "vehicle", "points": "5,5;20,5", "shape_type": "polygon"})
    _refused(
        labelme, "labelme", davis, tmp_path, capsys, "shape 1: points 5,5;20,5 are not a list of [x, y] pairs"
    )


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [('width="64.0" height="48"', None),
     ('width="abc" height="48"', "image 0 (squares-a/00000.jpg) width: 'abc' is not a whole number")],
)  # fmt: skip
def test_a_cvat_image_size_is_a_whole_number_written_either_way(davis, tmp_path, capsys, attributes, problem):
    xml = _cvat_images(tmp_path, '<box label="vehicle" xtl="5" ytl="5" xbr="15" ybr="10" />')
    xml.write_text(
        xml.read_text(encoding="utf-8").replace('width="64" height="48"', attributes), encoding="utf-8"
    )
    if problem is None:
        assert _import(xml, "cvat-images", davis, tmp_path / "store", "--map", "vehicle=object") == 0
    else:
        _refused(xml, "cvat-images", davis, tmp_path, capsys, problem)


def _cvat_video(tmp_path: Path) -> Path:
    xml = tmp_path / "squares-a.xml"
    objects = [(LabelKind.FINE, "object", 1, squares(0, 0) == 1)]
    write_cvat_video(xml, [(0, objects)], size=(48, 64), labels=["object"], name="squares-a", frame_count=10)
    return xml


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [("<size>10</size>", "<size>10</size><frame_filter>step=0</frame_filter>",
      "<frame_filter>step=0</frame_filter>: a step of at least 1 frame"),
     ("<size>10</size>", "<size>ten</size>", "<size>: 'ten' is not a whole number"),
     ("<size>10</size>", "<size>10</size><start_frame>x</start_frame>",
      "<start_frame>: 'x' is not a whole number")],
)  # fmt: skip
def test_a_cvat_task_of_malformed_frame_numbers_is_named(davis, tmp_path, capsys, old, new, problem):
    xml = _cvat_video(tmp_path)
    text = xml.read_text(encoding="utf-8")
    assert old in text
    xml.write_text(text.replace(old, new, 1), encoding="utf-8")
    root = davis / "JPEGImages" / "480p" / "squares-a"
    _refused(xml, "cvat-video", root, tmp_path, capsys, problem, "--split", "all", fmt="video")


def test_two_cvat_tracks_of_one_id_are_refused(davis, tmp_path, capsys):
    xml = _cvat_video(tmp_path)
    text = xml.read_text(encoding="utf-8")
    start, end = text.index("<track "), text.index("</track>") + len("</track>")
    xml.write_text(text[:end] + text[start:end] + text[end:], encoding="utf-8")
    root = davis / "JPEGImages" / "480p" / "squares-a"
    expected = "two tracks have the id 0: a track is one object, give each its own"
    _refused(xml, "cvat-video", root, tmp_path, capsys, expected, "--split", "all", fmt="video")


def test_one_object_id_of_a_mask_and_a_box_of_two_classes_is_refused(tiny_streets, tmp_path, capsys):
    """Object 3 a car in the fine label and a tree in the boxes label had been written as both."""
    frame = "synthtown/synthtown_000000_000000_leftImg8bit.png"
    instance = '<attribute name="instance_id">3</attribute>'
    shapes = (f'<polygon label="car" points="4,8;16,8;16,20;4,20">{instance}</polygon>'
              f'<box label="tree" xtl="30" ytl="10" xbr="40" ybr="20">{instance}</box>')  # fmt: skip
    xml = _cvat_images(tmp_path, shapes, name=frame, size=(64, 128))
    store = tmp_path / "store"
    assert _import(xml, "cvat-images", tiny_streets, store, "--map", "tree=vegetation", fmt="synthetic") == 2
    element = f"image 0 ({frame})"
    assert capsys.readouterr().err.splitlines() == [
        f"error: {xml}: {element}: {element} polygon 1 ('car') and {element} box 2 ('tree') are both "
        "object 3, of two classes: give one of them its own id"
    ]
    assert not store.exists()


def test_another_tools_file_names_the_tool_it_reads_as(davis, tmp_path, capsys):
    """A CVAT for video file given as CVAT for images had held 'no shapes to import'."""
    xml = _cvat_video(tmp_path)
    root = davis / "JPEGImages" / "480p" / "squares-a"
    expected = "holds no shapes read as --tool cvat-images, but reads as --tool cvat-video: give that"
    _refused(xml, "cvat-images", root, tmp_path, capsys, expected, "--split", "all", fmt="video")
    assert np.any(squares(0, 0) == 1)


@pytest.mark.parametrize(
    ("given", "problem"),
    [("label-studio", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
     ("coco", "not valid JSON (Expecting value: line 1 column 1 (char 0))")],
)  # fmt: skip
def test_another_tools_file_its_reader_refuses_names_the_tool_too(davis, tmp_path, capsys, given, problem):
    """A CVAT for video file given as Label Studio's or COCO had said only 'not valid JSON'."""
    xml = _cvat_video(tmp_path)
    root = davis / "JPEGImages" / "480p" / "squares-a"
    expected = f"{problem}; it reads as --tool cvat-video: give that"
    _refused(xml, given, root, tmp_path, capsys, expected, "--split", "all", fmt="video")


def test_a_coco_file_given_as_label_studio_names_coco(davis, tmp_path, capsys):
    coco = _coco(tmp_path, {"segmentation": [], "bbox": [4, 8, 12, 12]})
    expected = "expected a JSON list of Label Studio tasks; it reads as --tool coco: give that"
    _refused(coco, "label-studio", davis, tmp_path, capsys, expected)


def test_a_negative_click_under_its_objects_id_is_no_object_of_two_classes(davis, tmp_path):
    """A background keypoint with the object's track id is the object's negative click (``--background
    ignore`` had refused it as object 1 of two classes)."""
    data = {"images": [{"id": 1, "file_name": "squares-a/00000.jpg", "width": 64, "height": 48}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 7, "segmentation": [], "bbox": [4, 8, 12, 12],
                 "attributes": {"track_id": 0}},
                {"id": 2, "image_id": 1, "category_id": 8, "segmentation": [], "keypoints": [30, 30, 2],
                 "attributes": {"track_id": 0, "frugalseg_kind": "clicks"}}],
            "categories": [{"id": 7, "name": "vehicle"}, {"id": 8, "name": "background"}]}  # fmt: skip
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps(data), encoding="utf-8")
    store = tmp_path / "store"
    assert _import(coco, "coco", davis, store, "--map", "vehicle=object", "--background", "ignore") == 0


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda data: data["images"][0].pop("file_name"), "image 1 lacks file_name"),
        (lambda data: data["images"].append({"width": 3}), "images[1] lacks id, file_name, height"),
        (lambda data: data["categories"][0].pop("name"), "category 7 lacks name"),
        (
            lambda data: data["categories"][0].update(id="seven"),
            "category 'seven': its id is not a whole number",
        ),
        (lambda data: data.update(images={"id": 1}), "'images' is not a list"),
        (
            lambda data: data["images"][0].update(width="wide"),
            "image 1: its id, width and height must be whole numbers",
        ),
    ],
)
def test_a_coco_image_or_category_without_a_field_is_named(davis, tmp_path, capsys, change, problem):
    coco = _coco(tmp_path, {"bbox": [1, 2, 3, 4]})
    data = json.loads(coco.read_text(encoding="utf-8"))
    change(data)
    coco.write_text(json.dumps(data), encoding="utf-8")
    _refused(coco, "coco", davis, tmp_path, capsys, problem)


@pytest.mark.parametrize("rle", ["", None])
def test_a_cvat_mask_without_its_rle_is_refused_as_such(davis, tmp_path, capsys, rle):
    """It was ``mask rle: invalid literal for int() with base 10: ''``."""
    runs = "" if rle is None else f' rle="{rle}"'
    shape = f'<mask label="vehicle"{runs} left="1" top="2" width="3" height="4" />'
    path = _cvat_images(tmp_path, shape)
    _refused(
        path,
        "cvat-images",
        davis,
        tmp_path,
        capsys,
        "image 0 (squares-a/00000.jpg) mask 1: a mask without its rle (the runs of its box's pixels)",
    )


@pytest.mark.parametrize(
    ("track", "problem"),
    [
        (65535, "annotation 1 (image 1): object id 65536 is over 65535, the most an instance map (16 bits) "
                "holds: number the file's objects (tracks, instances) lower"),
        (1.5, "annotation 1 (image 1): track_id 1.5 is not a whole number"),
        (True, "annotation 1 (image 1): track_id True is not a whole number"),
    ],
)  # fmt: skip
def test_a_coco_track_id_past_16_bits_or_not_whole_is_refused(davis, tmp_path, capsys, track, problem):
    """An id past 65535 had overflowed the instance map (a traceback, exit 1); 1.5 and true had been 1."""
    box = {"bbox": [2, 3, 10, 10], "segmentation": [], "attributes": {"track_id": track}}
    _refused(_coco(tmp_path, box), "coco", davis, tmp_path, capsys, problem)


def test_a_coco_annotation_without_geometry_is_named_as_left_out(davis, tmp_path, caplog):
    """No segmentation, bbox or visible keypoint: it had gone without a word, and its frame with it."""
    coco = _coco(tmp_path, {"segmentation": [], "keypoints": [5, 5, 0]})
    assert (
        _import(coco, "coco", davis, tmp_path / "store", "--map", "vehicle=object") == 2
    )  # nothing to import
    assert (
        f"{coco}: annotation 1 (image 1) has no segmentation, bbox or visible keypoint: left out"
        in caplog.text
    )
