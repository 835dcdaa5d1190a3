"""Boundary IoU update speed on a Cityscapes-size label map: fused bands vs per-class cv2.erode.

Target: the real aachen_000000_000019 trainId label (1024×2048, 19 classes); prediction: the same
map shifted by (3, -5) px with a block of one class relabelled. Asserts identical counts, then
prints ms per image (median, timed round-robin) for the per-class reference, the OpenCV path and
the torch pooling path.

    .venv/bin/python benchmarks/bench_boundary_iou.py [--width 2] [--repeats 10]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.metrics import BoundaryIoU

LABEL = (
    Path(__file__).resolve().parents[2]
    / "shared/data/cityscapes_dev/gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"
)
NUM_CLASSES = 19


def reference_counts(
    pred: np.ndarray, gt: np.ndarray, width: int, ignore: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    """boundary-iou-api mask_to_boundary for every class (pad, d × 3×3 erosions, crop), then counts.

    Both maps' regions are cut where the target is ignored, as the metric defines them.
    """
    valid = gt != ignore
    kernel = np.ones((3, 3), np.uint8)
    inter, union = np.zeros(NUM_CLASSES, np.int64), np.zeros(NUM_CLASSES, np.int64)
    for c in range(NUM_CLASSES):
        bands = []
        for labels in (gt, pred):
            mask = ((labels == c) & valid).astype(np.uint8)
            padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
            eroded = cv2.erode(padded, kernel, iterations=width)[1:-1, 1:-1]
            bands.append((mask - eroded).astype(bool) & valid)
        inter[c] = np.count_nonzero(bands[0] & bands[1])
        union[c] = np.count_nonzero(bands[0] | bands[1])
    return inter, union


def fused_counts(
    pred: torch.Tensor, gt: torch.Tensor, width: int, backend: str
) -> tuple[np.ndarray, np.ndarray]:
    metric = BoundaryIoU(NUM_CLASSES, width=width, backend=backend)  # type: ignore[arg-type]
    metric.update(pred, gt)
    return metric.intersection.numpy(), metric.union.numpy()


def time_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each function in ms after one warm-up call, interleaved round-robin so
    that load changes on a shared machine hit all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    gt = cv2.imread(str(LABEL), cv2.IMREAD_UNCHANGED)
    if gt is None:
        raise SystemExit(f"cannot read {LABEL}")
    pred = np.roll(gt, (3, -5), axis=(0, 1)).copy()
    pred[pred == 255] = 0
    block = pred[400:600, 900:1300]
    block[block == 2] = 8
    gt_t, pred_t = torch.from_numpy(gt.astype(np.int64))[None], torch.from_numpy(pred.astype(np.int64))[None]

    reference = reference_counts(pred, gt, args.width)
    for backend in ("opencv", "torch"):
        counts = fused_counts(pred_t, gt_t, args.width, backend)
        same = all(np.array_equal(a, b) for a, b in zip(counts, reference, strict=True))
        assert same, f"{backend} counts differ"
    print(
        f"label {gt.shape[0]}x{gt.shape[1]}, {NUM_CLASSES} classes, d = {args.width}, "
        f"torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()}: counts identical"
    )

    reference_name = "per-class cv2.erode reference"
    fns: dict[str, Callable[[], object]] = {reference_name: lambda: reference_counts(pred, gt, args.width)}
    for backend in ("opencv", "torch"):
        fns[f"BoundaryIoU backend={backend}"] = lambda b=backend: fused_counts(pred_t, gt_t, args.width, b)
    rows = time_ms(fns, args.repeats)
    ref_ms = rows[reference_name]
    for name, ms in rows.items():
        print(f"{name:32s} {ms:8.1f} ms/image   speed-up vs reference {ref_ms / ms:5.1f}x")


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
