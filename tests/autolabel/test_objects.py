"""Splitting label maps into tracker objects and merging object logits back: exact on hand-made maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from frugalseg.autolabel.objects import _pieces, merge_objects, split_objects
from frugalseg.data.formats.cityscapes import instances, read_instance_ids
from frugalseg.data.io import read_label

X = 255  # ignore

# Road (0) in two separate pieces, sidewalk (1) in two pieces that touch only at a corner (one
# 8-connected component), a car (13) and ignore pixels.
HAND_MAP = np.array(
    [
        [0, 0, X, 1, 1, 1],
        [0, 0, X, 1, 1, 1],
        [X, X, X, X, X, X],
        [13, 13, X, 0, 0, 1],
        [13, 13, X, 0, 1, X],
        [X, X, X, 1, X, X],
    ],
    dtype=np.uint8,
)


def _mask_logits(objects) -> np.ndarray:
    """+1 inside each object's mask, −1 outside: what a perfect tracker returns on the anchor."""
    return np.stack([np.where(objects.mask(i), 1.0, -1.0) for i in range(len(objects))]).astype(np.float32)


def test_components_split_by_class_and_8_connectivity() -> None:
    objects = split_objects(HAND_MAP)
    assert objects.classes == [0, 0, 1, 1, 13]
    assert objects.instance_ids == [None] * 5
    expected_index = np.array(
        [
            [0, 0, -1, 2, 2, 2],
            [0, 0, -1, 2, 2, 2],
            [-1, -1, -1, -1, -1, -1],
            [4, 4, -1, 1, 1, 3],
            [4, 4, -1, 1, 3, -1],
            [-1, -1, -1, 3, -1, -1],
        ]
    )
    np.testing.assert_array_equal(objects.index, expected_index)


def test_class_mode_gives_one_object_per_class() -> None:
    objects = split_objects(HAND_MAP, stuff="class")
    assert objects.classes == [0, 1, 13]
    assert objects.mask(0).sum() == 7 and objects.mask(1).sum() == 9 and objects.mask(2).sum() == 4


def test_a_class_splits_into_8_connected_pieces_or_stays_one() -> None:
    pixels = np.zeros((4, 6), bool)
    pixels[0, 0] = pixels[1, 1] = True  # diagonal neighbours: one piece
    pixels[3, 4:6] = True
    count, pieces, areas = _pieces(pixels, "components")
    assert count == 3 and areas == [20, 2, 2]
    expected = [[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 2, 2]]
    np.testing.assert_array_equal(pieces, expected)
    count, pieces, areas = _pieces(pixels, "class")
    assert count == 2 and areas == [0, 4]
    np.testing.assert_array_equal(pieces, pixels.astype(np.int32))


def test_class_filter_and_smallest_component() -> None:
    objects = split_objects(HAND_MAP, train_ids=[1, 13], min_component_area=4)
    assert [(o.train_id, o.instance_id, o.area) for o in objects] == [(1, None, 6), (13, None, 4)]
    np.testing.assert_array_equal(objects[-1].mask, HAND_MAP == 13)
    assert len(split_objects(HAND_MAP, stuff="class", train_ids=[0], min_component_area=8)) == 0
    assert split_objects(HAND_MAP, stuff="class", train_ids=[0], min_component_area=7).classes == [0]
    assert len(split_objects(HAND_MAP, train_ids=[])) == 0


@pytest.mark.parametrize("stuff", ["components", "class"])
def test_split_then_merge_reproduces_the_map_exactly(stuff: str) -> None:
    objects = split_objects(HAND_MAP, stuff=stuff)
    np.testing.assert_array_equal(objects.label_map(), HAND_MAP)
    np.testing.assert_array_equal(merge_objects(_mask_logits(objects), objects.classes), HAND_MAP)


def test_instances_become_one_object_each_even_when_touching() -> None:
    # Cityscapes label ids: car 26 (train id 13), person 24 (11), road 7 (0), trailer 30 (ignored).
    label = np.array(
        [
            [13, 13, 13, 13],
            [13, 13, 0, 0],
            [11, 11, 0, 0],
            [X, X, 0, 0],
        ],
        dtype=np.uint8,
    )
    instance_ids = np.array(
        [
            [26001, 26001, 26002, 26002],
            [26001, 26001, 7, 7],
            [24000, 26002, 7, 7],  # a pixel of car 26002 labelled person: not part of the car
            [30000, 30000, 7, 7],  # a trailer: train id 255, no object
        ],
        dtype=np.int32,
    )
    objects = split_objects(label, instances(instance_ids))
    assert objects.classes == [11, 13, 13, 0, 11]
    assert objects.instance_ids == [24000, 26001, 26002, None, None]
    np.testing.assert_array_equal(objects.index, [[1, 1, 2, 2], [1, 1, 3, 3], [0, 4, 3, 3], [-1, -1, 3, 3]])
    np.testing.assert_array_equal(merge_objects(_mask_logits(objects), objects.classes), label)


def test_instances_are_kept_whatever_their_size() -> None:
    label = np.array([[13, 13, 13], [13, 0, 0]], dtype=np.uint8)
    instance_ids = np.array([[26001, 26001, 26002], [26001, 7, 7]], dtype=np.int32)
    objects = split_objects(label, instance_ids, train_ids=[13], min_component_area=5)
    assert [(o.train_id, o.instance_id, o.area) for o in objects] == [(13, 26001, 3), (13, 26002, 1)]


def test_split_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="stuff mode 'pixels'"):
        split_objects(HAND_MAP, stuff="pixels")
    with pytest.raises(ValueError, match="H×W uint8"):
        split_objects(HAND_MAP.astype(np.int64))
    with pytest.raises(ValueError, match=r"instance-id map of shape \(2, 2\)"):
        split_objects(HAND_MAP, np.zeros((2, 2), dtype=np.int32))


def test_merge_argmax_ties_and_unclaimed_pixels() -> None:
    logits = np.array(
        [
            [[2.0, 0.5, -1.0, 0.0]],
            [[1.0, 0.5, -3.0, 0.0]],
            [[3.0, 0.2, -0.5, 0.0]],
        ],
        dtype=np.float32,
    )
    # pixel 0: object 2 highest; pixel 1: tie between 0 and 1 goes to the earlier; pixel 2: every
    # logit negative; pixel 3: every logit exactly 0 (SAM's threshold is > 0), unclaimed too.
    np.testing.assert_array_equal(merge_objects(logits, [4, 5, 6]), [[6, 4, X, X]])
    np.testing.assert_array_equal(merge_objects(logits, [4, 5, 6], chunk=1), [[6, 4, X, X]])


def test_merge_upsamples_bilinearly_in_chunks() -> None:
    # Two objects on a 1×2 grid: left cell object 0, right cell object 1; at 1×4 the bilinear
    # values (align_corners=False) are 10, 5, −5, −10 for object 0, mirrored for object 1.
    logits = torch.tensor([[[10.0, -10.0]], [[-10.0, 10.0]]])[:, None]
    merged = merge_objects(logits, [7, 9], (1, 4), chunk=1)
    np.testing.assert_array_equal(merged, [[7, 7, 9, 9]])
    expected = torch.nn.functional.interpolate(logits[:1], size=(1, 4), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(expected.flatten().numpy(), [10, 5, -5, -10])
    with pytest.raises(ValueError, match="do not fit 3 objects"):
        merge_objects(logits, [1, 2, 3])


def test_real_cityscapes_frame_round_trip(shared_data: Path) -> None:
    stem = shared_data / "cityscapes_tiny" / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294_gtFine"
    label = read_label(Path(f"{stem}_labelTrainIds.png"))
    objects = split_objects(label, read_instance_ids(Path(f"{stem}_instanceIds.png"), label.shape))
    # 4 persons and 3 cars carry instance ids in this frame
    assert [i for i in objects.instance_ids if i is not None] == [
        24000,
        24001,
        24002,
        24003,
        26000,
        26001,
        26002,
    ]
    np.testing.assert_array_equal(merge_objects(_mask_logits(objects), objects.classes), label)
