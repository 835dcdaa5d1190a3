"""Validation step time before/after: one student pass per frame pair, unchecked metric inputs.

A validation batch with temporal consistency holds each sample's frame and the one before it, with
the two flows. Before (as the package was): the student ran on the current frames, then again on
the previous ones; mIoU and mAcc were torchmetrics' ``MulticlassJaccardIndex`` /
``MulticlassAccuracy`` (two counts of the same pixels, inputs checked), and TC ran the
forward-backward check on the device. After (`VideoSegmentationModule`'s own collections and
`pair_logits`): image students segment both frames in one batch, TMANet streams the T + 1 frames,
mIoU and mAcc share one confusion matrix counted once (a compute group), inputs are not re-checked,
and TC takes the loader's forward-backward mask (``flow_reliable``). Both run side by side in one
process, round-robin, on the same random batch; also reported: the share of the step spent in metric
updates.

    .venv/bin/python benchmarks/bench_validation.py [--student hrnetv2_w18_small] [--size 512 1024]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from frugalseg.flow import forward_backward_mask
from frugalseg.lightning_modules import VideoSegmentationModule
from frugalseg.metrics import BoundaryIoU, TemporalConsistency


def _old_metrics(num_classes: int) -> tuple[MetricCollection, MetricCollection]:
    """The metrics as the package had them: torchmetrics' classes, every input checked."""
    frame = MetricCollection(
        {
            "mIoU": MulticlassJaccardIndex(num_classes, average="macro", ignore_index=255),
            "mAcc": MulticlassAccuracy(num_classes, average="macro", ignore_index=255),
            "bIoU": BoundaryIoU(num_classes, 255),
        },
        compute_groups=False,
    )
    return frame, MetricCollection({"TC": TemporalConsistency(num_classes, 255)})


def _before(module: VideoSegmentationModule, batch: dict, frame, temporal) -> float:
    """The old step: two student passes; returns the seconds spent in metric updates."""
    frames = batch["frames"]
    current = module.student(frames[:, 1:]).argmax(1)
    previous = module.student(frames[:, :-1]).argmax(1)
    start = time.perf_counter()
    temporal.update(previous, current, batch["flow_to_prev"], batch["flow_from_prev"])
    frame.update(current, batch["label"])
    return time.perf_counter() - start


def _after(module: VideoSegmentationModule, batch: dict, frame, temporal) -> float:
    """The new step (`evaluate`'s work without logging); returns the seconds spent in metric updates."""
    logits, previous = module.pair_logits(batch["frames"])
    pred = logits.argmax(1)
    start = time.perf_counter()
    flows = batch["flow_to_prev"], batch["flow_from_prev"]
    temporal.update(previous.argmax(1), pred, *flows, batch["flow_reliable"])
    frame.update(pred, batch["label"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="hrnetv2_w18_small")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 1024))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    module = VideoSegmentationModule(student=args.student, num_classes=19, num_frames=1).eval()
    frames_per_sample = module.student.num_frames + 1
    height, width = args.size
    batch = {
        "frames": torch.randn(args.batch, frames_per_sample, 3, height, width),
        "label": torch.randint(0, 19, (args.batch, height, width)),
        "flow_to_prev": torch.randn(args.batch, 2, height, width),
        "flow_from_prev": torch.randn(args.batch, 2, height, width),
    }
    batch["flow_reliable"] = forward_backward_mask(batch["flow_to_prev"], batch["flow_from_prev"])
    variants = {
        "before (2 passes, torchmetrics, fb check)": (_before, _old_metrics(19)),
        "after (pair_logits, module's metrics)": (_after, (module.val_metrics, module.val_temporal)),
    }
    steps: dict[str, list[float]] = {name: [] for name in variants}
    shares: dict[str, list[float]] = {name: [] for name in variants}
    with torch.no_grad():
        for _ in range(args.repeats):
            for name, (run, metrics) in variants.items():
                start = time.perf_counter()
                metric_seconds = run(module, batch, *metrics)
                total = time.perf_counter() - start
                steps[name].append(total)
                shares[name].append(metric_seconds / total)
    print(
        f"{args.student}, batch {args.batch} × {frames_per_sample} frames of {height}×{width}, "
        f"torch threads {torch.get_num_threads()}, median of {args.repeats} round-robin repeats"
    )
    print(f"{'variant':<42} {'s/step':>7} {'metric share':>13}")
    for name in variants:
        print(f"{name:<42} {statistics.median(steps[name]):7.3f} {statistics.median(shares[name]):12.1%}")
    names = list(variants)
    ratio = statistics.median(steps[names[0]]) / statistics.median(steps[names[1]])
    print(f"after / before time: {1 / ratio:.2f} ({ratio:.2f}x faster)")


if __name__ == "__main__":
    main()
