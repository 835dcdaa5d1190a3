"""Metrics on hand-made masks with hand-computed values, and Boundary IoU against cv2.erode."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from frugalseg.metrics import BoundaryIoU, DatasetMeanAccuracy, DatasetMeanIoU, TemporalConsistency

AACHEN = "cityscapes_dev/gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"


def reference_boundary_counts(
    pred: np.ndarray, gt: np.ndarray, num_classes: int, width: int, ignore: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    """boundary-iou-api's mask_to_boundary per class (pad 1 px of zeros, d × 3×3 erosions, crop).

    Both masks are cut where the target is ignored before their bands are drawn.
    """
    valid = gt != ignore

    def band(mask: np.ndarray) -> np.ndarray:
        padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=width)[1:-1, 1:-1]
        return (mask.astype(np.uint8) - eroded).astype(bool)

    inter, union = np.zeros(num_classes, np.int64), np.zeros(num_classes, np.int64)
    for c in range(num_classes):
        b_gt, b_pred = band(gt == c) & valid, band((pred == c) & valid) & valid
        inter[c], union[c] = (b_gt & b_pred).sum(), (b_gt | b_pred).sum()
    return inter, union


def t(array: list | np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array), dtype=torch.long)


# --- mIoU / mAcc --------------------------------------------------------------------------------

TARGET = [[0, 0, 1, 1], [0, 255, 1, 1]]
PRED = [[0, 1, 1, 1], [0, 0, 2, 1]]


def test_miou_hand_made_with_absent_class_and_ignore() -> None:
    metric = DatasetMeanIoU(num_classes=4)
    metric.update(t([PRED]), t([TARGET]))
    # class 0: I 2, U 3; class 1: I 3, U 5; class 2 only predicted: 0/1; class 3 absent: NaN.
    per_class = metric.per_class()
    assert per_class[:3].tolist() == [2 / 3, 3 / 5, 0.0]
    assert per_class[3].isnan()
    assert metric.compute().item() == pytest.approx(float(Fraction(19, 45)), abs=1e-7)


def test_macc_averages_only_classes_in_target() -> None:
    metric = DatasetMeanAccuracy(num_classes=4)
    metric.update(t([PRED]), t([TARGET]))
    per_class = metric.per_class()
    assert per_class[:2].tolist() == [2 / 3, 3 / 4]
    assert per_class[2:].isnan().all()
    assert metric.compute().item() == pytest.approx(17 / 24, abs=1e-7)
    # torchmetrics' own macro average counts the predicted-only class 2 as accuracy 0.
    plain = MulticlassAccuracy(num_classes=4, average="macro", ignore_index=255)
    assert plain(t([PRED]), t([TARGET])).item() == pytest.approx(17 / 36, abs=1e-7)


def test_logits_equal_indices() -> None:
    logits = torch.nn.functional.one_hot(t([PRED]), 4).permute(0, 3, 1, 2).float()
    for cls in (DatasetMeanIoU, DatasetMeanAccuracy):
        a, b = cls(num_classes=4), cls(num_classes=4)
        a.update(t([PRED]), t([TARGET]))
        b.update(logits, t([TARGET]))
        assert a.compute().item() == b.compute().item()


def random_batch(
    seed: int, batch: int = 2, size: int = 24, classes: int = 5
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, (batch, size, size), generator=gen)
    target[:, :3] = 255
    # Blocky predictions so that boundaries are non-trivial.
    pred = (
        torch.randint(0, classes, (batch, size // 4, size // 4), generator=gen)
        .repeat_interleave(4, 1)
        .repeat_interleave(4, 2)
    )
    return pred, target


@pytest.mark.parametrize("cls", [DatasetMeanIoU, DatasetMeanAccuracy, BoundaryIoU])
def test_two_updates_equal_one_on_concatenation(cls: type) -> None:
    (p1, t1), (p2, t2) = random_batch(1), random_batch(2)
    split, joint = cls(num_classes=5), cls(num_classes=5)
    split.update(p1, t1)
    split.update(p2, t2)
    joint.update(torch.cat((p1, p2)), torch.cat((t1, t2)))
    assert split.compute().item() == joint.compute().item()
    assert torch.equal(split.per_class().nan_to_num(-1), joint.per_class().nan_to_num(-1))


# --- Boundary IoU ------------------------------------------------------------------------------


def halves(split_col: int, height: int = 8, width: int = 12) -> np.ndarray:
    labels = np.zeros((height, width), np.int64)
    labels[:, split_col:] = 1
    return labels


def test_miou_with_an_ignore_index_among_the_classes_leaves_that_class_out() -> None:
    metric = DatasetMeanIoU(num_classes=3, ignore_index=0)
    metric.update(t([[0, 1, 2, 2]]), t([[1, 1, 2, 2]]))  # the first pixel: class 1 predicted as class 0
    assert metric.per_class()[1:].tolist() == [0.5, 1.0] and metric.per_class()[0].isnan()
    assert metric.compute().item() == 0.75  # torchmetrics' MulticlassJaccardIndex(ignore_index=0) agrees
    reference = MulticlassJaccardIndex(num_classes=3, ignore_index=0, average="macro")
    assert reference(t([[0, 1, 2, 2]]), t([[1, 1, 2, 2]])).item() == 0.75


def test_boundary_iou_hand_made_bands() -> None:
    # gt: class 0 in cols 0-5, class 1 in cols 6-11; pred: boundary one column to the right.
    # d = 2: interior (non-band) of gt 0 = rows 2-5 × cols 2-3, gt 1 = rows 2-5 × cols 8-9,
    # pred 0 = rows 2-5 × cols 2-4, pred 1 = rows 2-5 × col 9.
    gt, pred = halves(6), halves(7)
    metric = BoundaryIoU(num_classes=2, width=2)
    metric.update(t([pred]), t([gt]))
    # class 0: |B_gt| 40, |B_pred| 44, I = 48 - 12 = 36, U = 48; class 1: 40, 36, I 32, U 44.
    assert metric.intersection.tolist() == [36, 32]
    assert metric.union.tolist() == [48, 44]
    assert metric.compute().item() == pytest.approx(65 / 88, abs=1e-7)
    assert reference_boundary_counts(pred, gt, 2, 2)[0].tolist() == [36, 32]


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_boundary_iou_ignore_row_cuts_both_maps_and_is_not_counted(backend: str) -> None:
    # Bottom row of gt is ignored: the regions of both maps shrink to rows 0-6 (interior rows 2-4)
    # and nothing in row 7 is counted.
    gt, pred = halves(6), halves(7)
    gt[7] = 255
    metric = BoundaryIoU(num_classes=2, width=2, backend=backend)
    metric.update(t([pred]), t([gt]))
    # class 0: |B_gt| 42-6 = 36, |B_pred| 49-9 = 40, I 36-3 = 33 (gt's col 4, rows 2-4, is pred's
    # interior) -> U 43; class 1: |B_gt| 36, |B_pred| 35-3 = 32, I 32-3 = 29 -> U 39.
    assert metric.intersection.tolist() == [33, 29]
    assert metric.union.tolist() == [43, 39]
    assert metric.per_class().tolist() == [33 / 43, 29 / 39]
    assert reference_boundary_counts(pred, gt, 2, 2)[0].tolist() == [33, 29]


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_boundary_iou_of_a_prediction_equal_to_the_target_where_labelled_is_one(backend: str) -> None:
    # the right half is void: a prediction that goes on with class 0 there draws no boundary at it
    gt = np.zeros((40, 40), np.int64)
    gt[:, 20:] = 255
    gt[10:20, 5:12] = 1
    pred = np.where(gt == 255, 0, gt)
    metric = BoundaryIoU(num_classes=2, width=2, backend=backend)
    metric.update(t([pred]), t([gt]))
    assert metric.per_class().tolist() == [1.0, 1.0]


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_boundary_iou_of_an_ignore_index_among_the_classes_is_nan_as_in_miou(backend: str) -> None:
    """ignore_index 0 ("unlabelled") is never a target: predicting it costs classes 1 and 2."""
    gt = np.zeros((12, 12), np.int64)
    gt[:, 4:] = 1
    gt[:, 8:] = 2
    pred = gt.copy()
    pred[5:7, 5:7] = 0
    metric = BoundaryIoU(num_classes=3, ignore_index=0, width=1, backend=backend)
    metric.update(t([pred]), t([gt]))
    iou = metric.per_class()
    assert np.isnan(iou[0].item()) and iou[1:].tolist() == [0.875, 1.0]
    assert metric.compute().item() == pytest.approx(0.9375)
    miou = DatasetMeanIoU(num_classes=3, ignore_index=0)
    miou.update(t([pred]), t([gt]))
    assert np.isnan(miou.per_class()[0].item())


def test_boundary_iou_counts_in_strips_as_in_one_histogram(monkeypatch) -> None:
    """OpenCV's histogram counts in float32, exact to 2**24 a bin: counted a few rows at a time, the same."""
    from frugalseg.metrics import boundary

    rng = np.random.default_rng(0)
    gt, pred = rng.integers(0, 3, (2, 37, 41)), rng.integers(0, 3, (2, 37, 41))
    whole = BoundaryIoU(num_classes=3, width=2)
    whole.update(t(pred), t(gt))
    monkeypatch.setattr(boundary, "HISTOGRAM_PIXELS", 100)  # two rows a strip
    strips = BoundaryIoU(num_classes=3, width=2)
    strips.update(t(pred), t(gt))
    assert strips.intersection.tolist() == whole.intersection.tolist()
    assert strips.union.tolist() == whole.union.tolist()
    assert boundary._strips((37, 41), 100)[:2] == [slice(0, 2), slice(2, 4)]


def test_boundary_iou_uniform_map_is_border_band_and_absent_class_nan() -> None:
    gt = np.zeros((7, 7), np.int64)
    metric = BoundaryIoU(num_classes=3, width=1)
    metric.update(t([gt]), t([gt]))
    # Border counts as contour: 49 - 25 interior pixels = 24, identical in both maps.
    assert metric.intersection.tolist() == [24, 0, 0]
    assert metric.union.tolist() == [24, 0, 0]
    assert metric.per_class()[1:].isnan().all()
    assert metric.compute().item() == 1.0


@pytest.fixture(scope="module")
def aachen_pair(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    gt = cv2.imread(str(shared_data / AACHEN), cv2.IMREAD_UNCHANGED)
    assert gt is not None and gt.shape == (1024, 2048)
    pred = np.roll(gt, (3, -5), axis=(0, 1)).copy()
    pred[pred == 255] = 0
    pred[400:600, 900:1300][pred[400:600, 900:1300] == 2] = 8
    return gt, pred


@pytest.mark.parametrize("width", [2, 5])
def test_boundary_iou_equals_per_class_erode_reference_on_cityscapes(
    aachen_pair: tuple[np.ndarray, np.ndarray], width: int
) -> None:
    gt, pred = aachen_pair
    inter, union = reference_boundary_counts(pred, gt, 19, width)
    assert (gt == 255).any() and (union > 0).sum() > 10
    results = {}
    for backend in ("opencv", "torch"):
        metric = BoundaryIoU(num_classes=19, width=width, backend=backend)
        metric.update(t(pred[None]), t(gt[None]))
        results[backend] = (metric.intersection.numpy(), metric.union.numpy())
        np.testing.assert_array_equal(results[backend][0], inter)
        np.testing.assert_array_equal(results[backend][1], union)


def test_boundary_iou_rejects_out_of_range_prediction() -> None:
    with pytest.raises(ValueError, match="class 7"):
        BoundaryIoU(num_classes=3).update(t([[[7, 0]]]), t([[[0, 0]]]))


# --- Temporal consistency ----------------------------------------------------------------------


def square_frames() -> tuple[np.ndarray, np.ndarray]:
    """Class 1 square rows 2-4 × cols 2-4 at t-1, moved by (dx, dy) = (2, 1) at t."""
    prev = np.zeros((8, 8), np.int64)
    prev[2:5, 2:5] = 1
    cur = np.roll(prev, (1, 2), axis=(0, 1))
    return prev, cur


def flows(dx: float, dy: float, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    cur_to_prev = torch.zeros(1, 2, size, size)
    cur_to_prev[:, 0], cur_to_prev[:, 1] = -dx, -dy
    return cur_to_prev, -cur_to_prev.clone()


def test_tc_is_one_for_exactly_moved_prediction() -> None:
    prev, cur = square_frames()
    cur[0, 0] = 1  # lands outside frame t-1 (x < 2): ignored
    metric = TemporalConsistency(num_classes=2)
    metric.update(t([prev]), t([cur]), *flows(2, 1))
    # Valid pixels: rows 1-7 × cols 2-7 = 42 (9 of class 1, 33 of class 0).
    assert metric.confmat.tolist() == [[33, 0], [0, 9]]
    assert metric.compute().item() == 1.0


def test_tc_below_one_for_wrong_prediction() -> None:
    prev, cur = square_frames()
    cur[3, 4:7] = 0
    cur[7, 7] = 1
    metric = TemporalConsistency(num_classes=2)
    metric.update(t([prev]), t([cur]), *flows(2, 1))
    # class 1: I 6, U 9 + 7 - 6 = 10; class 0: I 32, U 33 + 35 - 32 = 36.
    assert metric.per_class().tolist() == [32 / 36, 6 / 10]
    assert metric.compute().item() == pytest.approx(67 / 90, abs=1e-7)


def test_tc_ignores_pixels_failing_forward_backward_check() -> None:
    prev, cur = square_frames()
    cur[3, 4:7] = 0
    cur[7, 7] = 1
    cur_to_prev, prev_to_cur = flows(2, 1)
    prev_to_cur[:, :, 2, 2:5] = 0  # frame-t pixels (3, 4..6) map here and no longer come back
    metric = TemporalConsistency(num_classes=2)
    metric.update(t([prev]), t([cur]), cur_to_prev, prev_to_cur)
    assert metric.per_class().tolist() == [32 / 33, 6 / 7]
    assert metric.compute().item() == pytest.approx(211 / 231, abs=1e-7)


def test_tc_rejects_flow_of_wrong_size() -> None:
    prev, cur = square_frames()
    cur_to_prev, prev_to_cur = flows(2, 1, size=6)
    with pytest.raises(ValueError, match="flow_cur_to_prev has shape"):
        TemporalConsistency(num_classes=2).update(t([prev]), t([cur]), cur_to_prev, prev_to_cur)


def test_temporal_consistency_takes_the_loaders_reliability_mask():
    """With zero flows TC is the mIoU of the two maps over the pixels the mask keeps; none: no count."""
    generator = torch.Generator().manual_seed(0)
    previous = torch.randint(0, 3, (1, 6, 8), generator=generator)
    current = torch.randint(0, 3, (1, 6, 8), generator=generator)
    zero = torch.zeros(1, 2, 6, 8)
    keep = torch.zeros(1, 6, 8, dtype=torch.bool)
    keep[:, :3] = True
    metric = TemporalConsistency(3)
    metric.update(previous, current, zero, zero, reliable=keep)
    expected = DatasetMeanIoU(3)
    expected.update(current[keep][None], previous[keep][None])
    assert torch.equal(metric.confmat, expected.confmat)
    nothing = TemporalConsistency(3)
    nothing.update(previous, current, zero, zero, reliable=torch.zeros_like(keep))
    assert nothing.confmat.sum() == 0


def test_a_prediction_out_of_range_is_not_told_it_may_be_the_ignore_index() -> None:
    """A prediction of 255 had been told 'must lie in 0…2 (or be the ignore index 255), got 0…255'."""
    with pytest.raises(ValueError) as caught:
        DatasetMeanIoU(3).update(torch.tensor([[[255, 0]]]), torch.tensor([[[0, 1]]]))
    assert str(caught.value) == "prediction values must lie in 0…2, got 0…255"
    with pytest.raises(ValueError) as caught:
        DatasetMeanIoU(3).update(torch.tensor([[[1, 0]]]), torch.tensor([[[7, 1]]]))
    assert str(caught.value) == "target values must lie in 0…2 (or be the ignore index 255), got 1…7"


def test_temporal_consistency_without_an_ignore_index_is_refused_at_once() -> None:
    """It had worked on the CPU path and failed in ``masked_fill`` on the torch one (a GPU's)."""
    with pytest.raises(ValueError, match="TemporalConsistency needs an ignore_index"):
        TemporalConsistency(3, ignore_index=None)


@pytest.mark.parametrize("metric", [DatasetMeanIoU(3), BoundaryIoU(3)])
def test_float_class_maps_are_told_to_be_logits_or_integers(metric) -> None:
    """A B×H×W map of class ids as floats had been argmax-ed over H, refused for a shape never given."""
    ids = torch.tensor([[[0, 1], [2, 1]]])
    with pytest.raises(ValueError) as caught:
        metric.update(ids.float(), ids)
    assert str(caught.value) == (
        "float predictions must be B×C×H×W logits (class indices are an integer tensor), got shape (1, 2, 2)"
    )
