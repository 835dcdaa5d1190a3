"""Simulated clicks (paper 004): exact positions on hand-made maps, the 512 px rule, the radius, the points
JSON, click_split on synthetic streets and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from frugalseg.autolabel.clicks import (
    Click,
    click_split,
    clicks_json_path,
    clicks_per_class,
    clicks_per_class_path,
    read_clicks_json,
    render_clicks,
    scaled_min_area,
    simulate_clicks,
)
from frugalseg.autolabel.runs import image_rng
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import run_tool
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import get_format
from frugalseg.data.formats.cityscapes import instance_ids_path, instances, read_instance_ids
from frugalseg.data.io import read_label
from frugalseg.errors import DataError

ROAD, SIDEWALK, BUILDING, PERSON, CAR = 0, 1, 2, 11, 13
THINGS = [PERSON, CAR]


def test_click_is_the_centroid_when_inside() -> None:
    label = np.full((10, 12), IGNORE_INDEX, np.uint8)
    label[2:6, 3:9] = CAR  # centroid (x 5.5, y 3.5) rounds to (6, 4)
    (click,) = simulate_clicks(label, None, THINGS, image_rng(0, "a"), min_stuff_area=1)
    assert click == Click(6, 4, CAR, None, "centroid")


def test_ring_whose_centroid_is_outside_gets_a_seeded_point_inside() -> None:
    label = np.full((13, 13), IGNORE_INDEX, np.uint8)
    label[1:12, 1:12] = CAR
    label[4:9, 4:9] = IGNORE_INDEX  # the centroid (6, 6) lies in the hole
    ring = label == CAR
    clicks = [
        simulate_clicks(label, None, THINGS, image_rng(seed, "a"), min_stuff_area=1)[0] for seed in range(6)
    ]
    assert all(c.source == "random" and ring[c.y, c.x] for c in clicks)
    assert len({(c.x, c.y) for c in clicks}) > 1  # the point depends on the seed…
    assert (
        simulate_clicks(label, None, THINGS, image_rng(3, "a"), min_stuff_area=1)[0] == clicks[3]
    )  # …and only on it


def test_stuff_needs_512_pixels_per_8_connected_component() -> None:
    label = np.full((40, 100), IGNORE_INDEX, np.uint8)
    label[0:16, 0:32] = ROAD  # 512 px: clicked
    label[20:36, 0:32] = SIDEWALK
    label[35, 31] = IGNORE_INDEX  # 511 px: not clicked
    label[16:32, 40:56] = BUILDING  # two 256 px squares touching only at a corner: one 512 px component
    label[0:16, 56:72] = BUILDING
    clicks = simulate_clicks(label, None, THINGS, image_rng(0, "a"))
    assert [(c.train_id, c.source) for c in clicks] == [(ROAD, "centroid"), (BUILDING, "random")]
    assert clicks[0].x == 16 and clicks[0].y == 8  # centroid (15.5, 7.5) rounds half up
    assert label[clicks[1].y, clicks[1].x] == BUILDING  # the corner-joined centroid (55.5, 15.5) misses
    assert len(simulate_clicks(label, None, THINGS, image_rng(0, "a"), min_stuff_area=256)) == 3


def test_instances_get_one_click_each_at_any_size_and_groups_follow_the_stuff_rule() -> None:
    label = np.full((30, 40), ROAD, np.uint8)
    ids = np.full(label.shape, 7, np.int32)  # road's label id
    label[2:8, 2:12], ids[2:8, 2:7], ids[2:8, 7:12] = CAR, 26001, 26002  # two touching cars
    label[20:22, 30:32], ids[20:22, 30:32] = PERSON, 24003  # a 4 px person
    label[12:22, 2:12], ids[12:22, 2:12] = CAR, 26  # a 100 px car group: treated as stuff
    clicks = simulate_clicks(label, instances(ids), THINGS, image_rng(0, "a"))
    assert [(c.train_id, c.instance_id, c.x, c.y) for c in clicks] == [
        (PERSON, 24003, 31, 21),
        (CAR, 26001, 4, 5),
        (CAR, 26002, 9, 5),
        (ROAD, None, 21, 15),
    ]
    # Without instance ids nothing tells an instance from a fragment: every class follows the size
    # rule. The 4 px person, the two touching cars (one 60 px component) and the 100 px group are
    # too small for 512 px; only the road is clicked.
    assert [(c.train_id, c.source) for c in simulate_clicks(label, None, THINGS, image_rng(0, "a"))] == [
        (ROAD, "centroid"),
    ]
    # With a 60 px minimum the car components are clicked (one each), the person is not.
    assert [
        (c.train_id, c.source)
        for c in simulate_clicks(label, None, THINGS, image_rng(0, "a"), min_stuff_area=60)
    ] == [(CAR, "centroid"), (CAR, "centroid"), (ROAD, "centroid")]


def test_thin_fragments_of_a_thing_class_without_instance_ids_get_no_click() -> None:
    """The CamVid Pole case: a class broken into many small 8-connected pieces, no instance ids."""
    label = np.full((64, 96), ROAD, np.uint8)
    for column in range(2, 90, 4):  # 22 poles of 1×40 px, each its own component
        label[4:44, column] = PERSON
    label[48:64, 0:40] = CAR  # a 640 px car region
    clicks = simulate_clicks(label, None, THINGS, image_rng(0, "a"))
    assert clicks_per_class(clicks, 14) == [1] + [0] * 12 + [1]  # road and the car, no pole
    assert len(simulate_clicks(label, None, THINGS, image_rng(0, "a"), min_stuff_area=40)) == 22 + 2
    # With instance ids each instance keeps its click whatever its size.
    ids = np.zeros(label.shape, np.int32)
    for number, column in enumerate(range(2, 90, 4)):
        ids[4:44, column] = 24000 + number
    with_ids = simulate_clicks(label, instances(ids), THINGS, image_rng(0, "a"))
    assert clicks_per_class(with_ids, 14)[PERSON] == 22
    assert clicks_per_class(with_ids, 14)[CAR] == 1


def test_min_area_scales_with_the_label_resize() -> None:
    assert scaled_min_area(512, 1.0) == 512
    assert scaled_min_area(512, 0.5) == 128
    assert scaled_min_area(512, 256 / 480) == 146
    assert scaled_min_area(512, 0.01) == 1
    label = np.full((20, 40), IGNORE_INDEX, np.uint8)
    label[0:8, 0:16] = ROAD  # 128 px: a 512 px region at twice the size
    label[10:18, 0:16] = SIDEWALK
    label[17, 15] = IGNORE_INDEX  # 127 px
    clicks = simulate_clicks(label, None, THINGS, image_rng(0, "a"), label_scale=0.5)
    assert [c.train_id for c in clicks] == [ROAD]
    assert simulate_clicks(label, None, THINGS, image_rng(0, "a")) == []
    with pytest.raises(ValueError, match="label_scale"):
        simulate_clicks(label, None, THINGS, image_rng(0, "a"), label_scale=0)


def test_render_radius_stays_in_the_image_and_the_clicked_class() -> None:
    assert render_clicks([Click(2, 1, CAR)], (4, 5)).tolist() == [
        [255] * 5,
        [255, 255, 13, 255, 255],
        [255] * 5,
        [255] * 5,
    ]
    disc = render_clicks([Click(0, 2, CAR)], (5, 6), radius=2)
    assert (disc == CAR).astype(int).tolist() == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
    ]
    support = np.full((5, 6), CAR, np.uint8)
    support[:, 1] = ROAD
    limited = render_clicks([Click(0, 2, CAR)], (5, 6), radius=2, support=support)
    assert (limited == CAR).sum() == 6 and (limited[:, 0] == CAR).all() and limited[2, 2] == CAR
    assert (limited[:, 1] == 255).all()
    # two discs: each pixel takes the nearest click
    pair = render_clicks([Click(0, 0, CAR), Click(3, 0, PERSON)], (1, 4), radius=3)
    assert pair.tolist() == [[CAR, CAR, PERSON, PERSON]]
    with pytest.raises(ValueError, match=r"click 2 at \(x=5, y=0\) lies outside the 5×4 image"):
        render_clicks([Click(0, 0, CAR), Click(5, 0, CAR)], (4, 5))


def test_given_points_json_outside_the_image_or_malformed_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "points.json"
    path.write_text(
        json.dumps({"clicks": [{"x": 3, "y": 2, "train_id": 13}, {"x": 3, "y": 64, "train_id": 0}]}),
        encoding="utf-8",
    )
    assert read_clicks_json(path)[0] == Click(3, 2, CAR)
    with pytest.raises(
        DataError, match=r"points\.json: click 2 at \(x=3, y=64\) lies outside the 128×64 image"
    ):
        read_clicks_json(path, (64, 128))
    path.write_text(json.dumps({"clicks": [{"x": 3, "train_id": 13}]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"points\.json: expected"):
        read_clicks_json(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(DataError, match=r"points\.json: not valid JSON"):
        read_clicks_json(path)
    path.write_bytes(b'{"clicks": "\xff"}')  # not UTF-8
    with pytest.raises(DataError, match=r"points\.json: not valid JSON \('utf-8' codec can't decode"):
        read_clicks_json(path)
    with pytest.raises(DataError, match=r"missing\.json: file does not exist"):
        read_clicks_json(tmp_path / "missing.json")


def test_click_split_writes_sparse_labels_and_points_and_resumes(tiny_streets: Path, tmp_path: Path) -> None:
    fmt = get_format("synthetic", tiny_streets)
    store = LabelStore(tmp_path / "store")
    summary = click_split(fmt, "train", store, seed=1, progress=False)
    assert (summary.clips, summary.written, summary.skipped) == (4, 4, 0)
    for clip in fmt.clips("train"):
        path = store.label_path(clip, 0, LabelKind.CLICKS)
        points = clicks_json_path(path)
        assert path == store.root / "train" / "synthtown" / f"{clip.clip_id}_clicks_labelTrainIds.png"
        assert points == store.root / "train" / "synthtown" / f"{clip.clip_id}_clicks.json"
        clicks = read_clicks_json(points, (64, 128))
        fine = read_label(clip.label(0, LabelKind.FINE).path)
        ids = read_instance_ids(instance_ids_path(clip.label(0, LabelKind.FINE).path))
        sparse = read_label(path)
        # one click per instance; every click on its class; nothing else labelled
        assert sorted(c.instance_id for c in clicks if c.instance_id) == sorted(
            np.unique(ids[ids >= 1000]).tolist()
        )
        assert all(fine[c.y, c.x] == c.train_id == sparse[c.y, c.x] for c in clicks)
        assert (sparse != IGNORE_INDEX).sum() == len(clicks)
    per_class = json.loads(clicks_per_class_path(store, "train").read_text(encoding="utf-8"))
    assert per_class["split"] == "train" and per_class["images"] == 4
    assert per_class["classes"] == list(fmt.classes.names)
    everything = [
        c
        for clip in fmt.clips("train")
        for c in read_clicks_json(clicks_json_path(store.label_path(clip, 0, LabelKind.CLICKS)))
    ]
    assert per_class["clicks"] == clicks_per_class(everything, fmt.classes.num_classes)
    assert per_class["total"] == len(everything)
    again = click_split(fmt, "train", LabelStore(store.root), seed=1, progress=False)
    assert (again.written, again.skipped) == (0, 4)
    with pytest.raises(ValueError, match="different config"):
        click_split(fmt, "train", LabelStore(store.root), seed=2, progress=False)


def test_cli_clicks_with_radius(tiny_streets: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "store"
    argv = ["label", "clicks", "--format", "synthetic", "--root", str(tiny_streets), "--split", "val"]
    assert run_tool([*argv, "--out", str(out), "--radius", "2", "--no-progress"]) == 0
    assert "label clicks: 3 images, 3 labels written, 0 skipped" in capsys.readouterr().out
    record = LabelStore(out).records()[0]
    assert record["kind"] == "clicks" and record["settings"]["radius"] == 2
    sparse = read_label(out / record["path"])
    points = json.loads(clicks_json_path(out / record["path"]).read_text(encoding="utf-8"))
    assert points["radius"] == 2 and points["image_size"] == [64, 128]
    assert len(points["clicks"]) < (sparse != IGNORE_INDEX).sum() <= 13 * len(points["clicks"])


def test_a_missing_label_file_stops_the_run_before_anything_is_written(
    tiny_streets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from frugalseg.data.clips import LabelRef

    fmt = get_format("synthetic", tiny_streets)
    clips = fmt.clips("train")
    gone = tmp_path / "gone_gtFine_labelTrainIds.png"
    clips[2].labels[0] = [replace(clips[2].label(0, LabelKind.FINE), path=gone)]
    assert clips[2].label(0, LabelKind.FINE) == LabelRef(gone, LabelKind.FINE)

    monkeypatch.setattr(fmt, "clips", lambda split: clips)
    with pytest.raises(DataError, match=r"gone_gtFine_labelTrainIds\.png: file does not exist"):
        click_split(fmt, "train", LabelStore(tmp_path / "store"), progress=False)
    assert not (tmp_path / "store").exists()
