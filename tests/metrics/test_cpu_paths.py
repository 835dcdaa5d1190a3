"""The metrics' CPU paths (uint8 maps, OpenCV) count exactly what their torch paths and the references do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from frugalseg.flow import backward_warp
from frugalseg.metrics import BoundaryIoU, DatasetMeanAccuracy, DatasetMeanIoU, TemporalConsistency
from frugalseg.metrics.segmentation import joint_histogram
from frugalseg.metrics.temporal import warp_arithmetic, warp_nearest_np
from metrics.test_metrics import PRED, TARGET, reference_boundary_counts, square_frames, t


def reference_confmat(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore: int = 255
) -> np.ndarray:
    """Rows target, columns prediction, ignored targets left out: one ``np.add.at`` per pixel."""
    keep = target != ignore
    confmat = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confmat, (target[keep], pred[keep]), 1)
    return confmat


def random_maps(seed: int, shape: tuple[int, ...], classes: int, ignore_share: float = 0.1) -> tuple:
    """Noise prediction and a blocky target with some ignored pixels, as int64 numpy arrays."""
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, classes, shape)
    blocks = rng.integers(0, classes, (*shape[:-2], shape[-2] // 4 + 1, shape[-1] // 4 + 1))
    target = blocks.repeat(4, -2).repeat(4, -1)[..., : shape[-2], : shape[-1]].copy()
    target[rng.random(shape) < ignore_share] = 255
    return pred, target


def tie_flows(rng: np.random.Generator, batch: int, height: int, width: int, kind: str) -> torch.Tensor:
    """B×2×H×W flows: half or quarter pixels (samples on pixel edges), Gaussian, or far out of the frame."""
    shape = (batch, 2, height, width)
    if kind == "half":
        flow = rng.integers(-2 * height, 2 * height, shape) / 2
    elif kind == "quarter":
        flow = rng.integers(-40, 40, shape) / 4
    elif kind == "gaussian":
        flow = rng.normal(0, 5, shape)
    else:
        flow = rng.normal(0, 3 * max(height, width), shape)
    return torch.from_numpy(flow.astype(np.float32))


# --- joint histogram / confusion matrix --------------------------------------------------------


def test_joint_histogram_counts_pairs_in_range_under_the_mask_in_chunks(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 256, (2, 3, 50, 70)).astype(np.uint8)
    mask = (rng.random((3, 50, 70)) < 0.7).astype(np.uint8)
    keep = (rows < 9) & (cols < 7) & mask.astype(bool)
    expected = np.zeros((9, 7), np.int64)
    np.add.at(expected, (rows[keep], cols[keep]), 1)
    np.testing.assert_array_equal(joint_histogram(rows, cols, 9, 7, mask), expected)
    # many chunks, the last one short
    monkeypatch.setattr("frugalseg.metrics.segmentation.HISTOGRAM_PIXELS", 997)
    np.testing.assert_array_equal(joint_histogram(rows, cols, 9, 7, mask), expected)


@pytest.mark.parametrize("classes", [1, 5, 19, 255])
@pytest.mark.parametrize("validate_args", [True, False])
def test_confusion_matrix_cpu_path_equals_torch_path_and_reference(classes: int, validate_args: bool) -> None:
    pred, target = random_maps(classes, (3, 37, 53), classes)
    expected = reference_confmat(pred, target, classes)
    for cls in (DatasetMeanIoU, DatasetMeanAccuracy):
        fast = cls(classes, validate_args=validate_args)
        slow = cls(classes, validate_args=validate_args, backend="torch")
        assert fast.use_opencv(t(target)) and not slow.use_opencv(t(target))
        fast.update(t(pred), t(target))
        slow.update(t(pred), t(target))
        np.testing.assert_array_equal(fast.confmat.numpy(), expected)
        np.testing.assert_array_equal(slow.confmat.numpy(), expected)
        assert torch.equal(fast.per_class().nan_to_num(-1), slow.per_class().nan_to_num(-1))


def test_confusion_matrix_cpu_path_on_hand_made_maps_and_other_dtypes() -> None:
    fast, slow = DatasetMeanIoU(4), DatasetMeanIoU(4, backend="torch")
    fast.update(t([PRED]).to(torch.uint8), t([TARGET]).to(torch.int32))
    slow.update(t([PRED]), t([TARGET]))
    # rows target, columns prediction (see test_miou_hand_made_with_absent_class_and_ignore)
    assert fast.confmat.tolist() == [[2, 1, 0, 0], [0, 3, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert torch.equal(fast.confmat, slow.confmat)


def test_confusion_matrix_falls_back_to_torch_where_uint8_cannot_hold_the_maps() -> None:
    pred, target = random_maps(3, (2, 9, 11), 4)
    target[target == 255] = -1
    metric = DatasetMeanIoU(4, ignore_index=-1)
    assert not metric.use_opencv(t(target))
    metric.update(t(pred), t(target))
    np.testing.assert_array_equal(metric.confmat.numpy(), reference_confmat(pred, target, 4, ignore=-1))
    with pytest.raises(ValueError, match="OpenCV backend"):
        DatasetMeanIoU(4, ignore_index=-1, backend="opencv")
    with pytest.raises(ValueError, match="OpenCV backend"):
        DatasetMeanIoU(300, backend="opencv")


@pytest.mark.parametrize(
    "pred_value, target_value", [(7, 0), (0, 7), (-1, 0), (0, 300), (300, 0), (0, 254)], ids=str
)
def test_confusion_matrix_paths_reject_invalid_values_with_the_same_message(
    pred_value: int, target_value: int
) -> None:
    pred, target = t([[[0, 1, pred_value]]]), t([[[1, 255, target_value]]])
    messages = []
    for backend in ("opencv", "torch"):
        with pytest.raises(ValueError) as error:
            DatasetMeanIoU(4, backend=backend).update(pred, target)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


# --- temporal consistency: warp and counts -----------------------------------------------------


def test_warp_probe_finds_this_builds_arithmetic_and_tells_the_two_apart() -> None:
    assert warp_arithmetic() is not None  # otherwise TC on the CPU takes the slow torch path
    rng = np.random.default_rng(0)
    source = rng.integers(0, 250, (1, 97, 257)).astype(np.uint8)
    flow = (rng.integers(-194, 194, (1, 2, 97, 257)) / 2).astype(np.float32)
    fused, _ = warp_nearest_np(source, flow, "fused")
    separate, _ = warp_nearest_np(source, flow, "separate")
    assert (fused != separate).any()  # sizes where the probe can tell them apart


@pytest.mark.parametrize("size", [(8, 8), (97, 257), (33, 1001), (64, 194), (61, 514)], ids=str)
@pytest.mark.parametrize("kind", ["half", "quarter", "gaussian", "far"])
def test_warp_nearest_np_equals_backward_warp(size: tuple[int, int], kind: str) -> None:
    height, width = size
    rng = np.random.default_rng(height * width)
    source = rng.integers(0, 256, (2, height, width)).astype(np.uint8)
    flow = tie_flows(rng, 2, height, width, kind)
    warped, inside = backward_warp(torch.from_numpy(source)[:, None].float(), flow, mode="nearest")
    got, got_inside = warp_nearest_np(source, flow.numpy(), warp_arithmetic() or "fused")
    np.testing.assert_array_equal(got, warped[:, 0].round().to(torch.uint8).numpy())
    np.testing.assert_array_equal(got_inside, inside.numpy())


@pytest.mark.parametrize("size", [(8, 8), (97, 257), (40, 61)], ids=str)
@pytest.mark.parametrize("kind", ["half", "quarter", "gaussian", "far"])
@pytest.mark.parametrize("given_mask", [True, False])
@pytest.mark.parametrize("validate_args", [True, False])
def test_tc_cpu_path_equals_torch_path(
    size: tuple[int, int], kind: str, given_mask: bool, validate_args: bool
) -> None:
    height, width = size
    rng = np.random.default_rng(height + width)
    cur, prev = (torch.from_numpy(m) for m in random_maps(height * width, (3, height, width), 6, 0.05))
    if not validate_args:  # a checked prediction may not hold the ignore index
        cur[torch.from_numpy(rng.random(cur.shape) < 0.05)] = 255
    flow_to_prev, flow_from_prev = (
        tie_flows(rng, 3, height, width, kind),
        tie_flows(rng, 3, height, width, kind),
    )
    reliable = torch.from_numpy(rng.random((3, height, width)) < 0.8) if given_mask else None
    fast = TemporalConsistency(6, validate_args=validate_args)
    slow = TemporalConsistency(6, validate_args=validate_args, backend="torch")
    assert fast.use_opencv(cur) and not slow.use_opencv(cur)
    for metric in (fast, slow):
        metric.update(prev, cur, flow_to_prev, flow_from_prev, reliable)
    if given_mask and kind != "far":  # random flow fields fail the forward-backward check, far ones leave
        assert fast.confmat.sum() > 0
    assert torch.equal(fast.confmat, slow.confmat)


def test_tc_cpu_path_on_hand_made_frames_and_logits() -> None:
    prev, cur = square_frames()
    cur[3, 4:7] = 0
    cur[7, 7] = 1
    flow_to_prev = torch.zeros(1, 2, 8, 8)
    flow_to_prev[:, 0], flow_to_prev[:, 1] = -2, -1
    logits = torch.nn.functional.one_hot(t([cur]), 2).permute(0, 3, 1, 2).float()
    fast, slow = TemporalConsistency(2, backend="opencv"), TemporalConsistency(2, backend="torch")
    fast.update(t([prev]), logits, flow_to_prev, -flow_to_prev)
    slow.update(t([prev]), t([cur]), flow_to_prev, -flow_to_prev)
    # rows: warped t-1, columns: t (see test_tc_below_one_for_wrong_prediction)
    assert fast.confmat.tolist() == [[32, 1], [3, 6]]
    assert torch.equal(fast.confmat, slow.confmat)


@pytest.mark.parametrize("bad", ["cur 9", "prev 9", "prev 300", "cur -1"])
def test_tc_paths_reject_invalid_predictions_with_the_same_message(bad: str) -> None:
    which, value = bad.split()
    prev, cur = (t([m]) for m in square_frames())
    (cur if which == "cur" else prev)[0, 4, 4] = int(value)
    zero = torch.zeros(1, 2, 8, 8)
    messages = []
    for backend in ("opencv", "torch"):
        with pytest.raises(ValueError) as error:
            TemporalConsistency(2, backend=backend).update(prev, cur, zero, zero)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("checked", [False, True])
def test_tc_paths_leave_out_the_ignore_index_in_either_prediction(checked: bool) -> None:
    """An unlabelled (ignore-index) pixel of a prediction is left out; with checks on it was refused."""
    prev, cur = (t([m]) for m in square_frames())
    prev[0, :2], cur[0, 5:] = 255, 255
    zero = torch.zeros(1, 2, 8, 8)
    fast = TemporalConsistency(2, validate_args=checked)
    slow = TemporalConsistency(2, validate_args=checked, backend="torch")
    for metric in (fast, slow):
        metric.update(prev, cur, zero, zero)
    assert fast.confmat.sum() == 8 * 3  # rows 2-4: the rest holds the ignore index in one of the maps
    assert torch.equal(fast.confmat, slow.confmat)


# --- Boundary IoU on random maps ---------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_boundary_iou_both_paths_equal_per_class_erode_reference_on_random_maps(
    width: int, seed: int
) -> None:
    pred, target = random_maps(seed, (2, 45, 67), 7)
    pred[0, 10:30, 20:50] = 3  # a large region: a band that is not the whole map
    inter, union = np.zeros(7, np.int64), np.zeros(7, np.int64)
    for p, g in zip(pred, target, strict=True):
        counts = reference_boundary_counts(p, g, 7, width)
        inter, union = inter + counts[0], union + counts[1]
    for backend in ("opencv", "torch"):
        metric = BoundaryIoU(7, width=width, backend=backend)
        metric.update(t(pred), t(target))
        np.testing.assert_array_equal(metric.intersection.numpy(), inter)
        np.testing.assert_array_equal(metric.union.numpy(), union)
