"""Validation step time and metric share: one student pass per frame pair, metrics on the CPU paths.

A validation batch with temporal consistency holds each sample's frame and the one before it, with
the two flows. Three variants run side by side in one process, round-robin, on the same random batch:

- **2 passes, torchmetrics, fb check** (the package as it first was): the student runs on the
  current frames, then again on the previous ones; mIoU and mAcc are torchmetrics'
  ``MulticlassJaccardIndex`` / ``MulticlassAccuracy`` (two counts of the same pixels, inputs
  checked), and TC runs the forward-backward check and its torch warp.
- **evaluate, torch-path metrics** (the module as of f3a034a): `VideoSegmentationModule.evaluate`
  itself (``pair_logits`` segments both frames in one batch), with the module's metric collections
  built on ``backend="torch"`` for mIoU, mAcc and TC: the ``bincount`` and ``grid_sample`` code those
  metrics ran on the CPU before; bIoU as the module has it.
- **evaluate, module's metrics**: `VideoSegmentationModule.evaluate` with the module's own
  ``val_metrics`` and ``val_temporal`` (on the CPU: uint8 ``cv2.calcHist`` for mIoU and mAcc,
  ``cv2.remap`` and one histogram for TC, OpenCV bands for bIoU).

TC takes the loader's forward-backward mask (``flow_reliable``) in the last two. The metric time is
measured around the collections' ``update`` calls (the ``evaluate`` variants wrap them in place), and
the "metric share" is that time over the step's. The last line splits the module's metric time by
metric, and the next times the arg-max of one B×19×H×W logits tensor (``evaluate`` takes two per
step, outside the metric time) against ``max(1).indices``. One untimed round-robin round runs first
(``--warmup``).

    .venv/bin/python benchmarks/bench_validation.py [--student hrnetv2_w18_small] [--size 512 1024]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from provenance import provenance_line  # benchmarks/, the script's folder
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from frugalseg.flow import forward_backward_mask
from frugalseg.lightning_modules import VideoSegmentationModule
from frugalseg.metrics import BoundaryIoU, DatasetMeanAccuracy, DatasetMeanIoU, TemporalConsistency


class Stopwatch:
    """Seconds spent in the ``update`` calls of the collections and metrics it wraps."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: Metric | MetricCollection, name: str) -> None:
        """Replace ``owner.update`` by a timed call of itself (an instance attribute)."""
        update = owner.update

        def timed(*args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            update(*args, **kwargs)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

        owner.update = timed  # type: ignore[method-assign]

    def take(self, names: list[str]) -> float:
        """Total seconds of ``names`` since the last take, which resets them."""
        return sum(self.seconds.pop(name, 0.0) for name in names)


def _old_metrics(num_classes: int) -> tuple[MetricCollection, MetricCollection]:
    """The metrics as the package first had them: torchmetrics' classes, every input checked."""
    frame = MetricCollection(
        {
            "mIoU": MulticlassJaccardIndex(num_classes, average="macro", ignore_index=255),
            "mAcc": MulticlassAccuracy(num_classes, average="macro", ignore_index=255),
            "bIoU": BoundaryIoU(num_classes, 255),
        },
        compute_groups=False,
    )
    return frame, MetricCollection({"TC": TemporalConsistency(num_classes, 255, backend="torch")})


def _torch_path_metrics(module: VideoSegmentationModule) -> tuple[MetricCollection, MetricCollection]:
    """`configure_metrics`' collections with mIoU, mAcc and TC on ``backend="torch"`` (their old CPU code)."""
    hp = module.hparams
    classes, ignore = hp["num_classes"], hp["ignore_index"]
    frame = MetricCollection(
        {
            "mIoU": DatasetMeanIoU(classes, ignore, validate_args=False, backend="torch"),
            "mAcc": DatasetMeanAccuracy(classes, ignore, validate_args=False, backend="torch"),
            "bIoU": BoundaryIoU(classes, ignore, width=hp["boundary_width"], validate_args=False),
        },
        compute_groups=[["mIoU", "mAcc"], ["bIoU"]],
    )
    temporal = TemporalConsistency(classes, ignore, validate_args=False, backend="torch")
    return frame.clone(prefix="val/"), MetricCollection({"TC": temporal}).clone(prefix="val/")


def _two_passes(module: VideoSegmentationModule, batch: dict, frame, temporal) -> None:
    """The first step: two student passes, the old metrics."""
    frames = batch["frames"]
    current = module.student(frames[:, 1:]).argmax(1)
    previous = module.student(frames[:, :-1]).argmax(1)
    temporal.update(previous, current, batch["flow_to_prev"], batch["flow_from_prev"])
    frame.update(current, batch["label"])


def _evaluate(module: VideoSegmentationModule, batch: dict, frame, temporal) -> None:
    """The module's own validation work (``validation_step`` less the overlays, logged to no trainer)."""
    module.evaluate(batch, frame, temporal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="hrnetv2_w18_small")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 1024))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed round-robin rounds first")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*self.log.*")  # evaluate logs; there is no trainer here
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
    clock = Stopwatch()
    variants: dict[str, tuple[Callable[..., None], tuple[MetricCollection, MetricCollection]]] = {
        "2 passes, torchmetrics, fb check": (_two_passes, _old_metrics(19)),
        "evaluate, torch-path metrics": (_evaluate, _torch_path_metrics(module)),
        "evaluate, module's metrics": (_evaluate, (module.val_metrics, module.val_temporal)),
    }
    for name, (_, (frame, temporal)) in variants.items():
        clock.wrap(frame, f"{name}/frame")
        clock.wrap(temporal, f"{name}/temporal")
    parts = {"mIoU+mAcc": "val/mIoU", "bIoU": "val/bIoU", "TC": "val/TC"}
    for part, key in parts.items():
        owner = module.val_temporal if part == "TC" else module.val_metrics
        clock.wrap(owner[key], part)
    steps: dict[str, list[float]] = {name: [] for name in variants}
    shares: dict[str, list[float]] = {name: [] for name in variants}
    per_metric: dict[str, list[float]] = {part: [] for part in parts}
    # evaluate's arg-max of each frame's logits is no metric update but part of every step; timed apart
    logits = torch.randn(args.batch, 19, height, width)
    reductions = {"argmax(1)": lambda: logits.argmax(1), "max(1).indices": lambda: logits.max(1).indices}
    reduction_seconds: dict[str, list[float]] = {name: [] for name in reductions}
    with torch.no_grad():
        for _ in range(args.warmup):  # first calls: allocator, thread pools, TC's one-time warp probe
            for run, (frame, temporal) in variants.values():
                run(module, batch, frame, temporal)
        clock.seconds.clear()
        for _ in range(args.repeats):
            for name, (run, (frame, temporal)) in variants.items():
                start = time.perf_counter()
                run(module, batch, frame, temporal)
                total = time.perf_counter() - start
                steps[name].append(total)
                shares[name].append(clock.take([f"{name}/frame", f"{name}/temporal"]) / total)
            for part in parts:
                per_metric[part].append(clock.take([part]))
            for name, reduce in reductions.items():
                start = time.perf_counter()
                reduce()
                reduction_seconds[name].append(time.perf_counter() - start)
    print(
        f"{args.student}, batch {args.batch} × {frames_per_sample} frames of {height}×{width}, "
        f"torch threads {torch.get_num_threads()}, median of {args.repeats} round-robin repeats "
        f"after {args.warmup} untimed"
    )
    print(f"{'variant':<36} {'s/step':>7} {'metric share':>13}")
    for name in variants:
        print(f"{name:<36} {statistics.median(steps[name]):7.3f} {statistics.median(shares[name]):12.1%}")
    names = list(variants)
    first, last = (statistics.median(steps[name]) for name in (names[0], names[-1]))
    print(f"module's metrics vs 2 passes: {last / first:.2f} of the time ({first / last:.2f}x faster)")
    split = ", ".join(f"{part} {statistics.median(per_metric[part]) * 1e3:.1f} ms" for part in parts)
    print(f"module's metric updates per step (median): {split}")
    timed = ", ".join(f"{name} {statistics.median(t) * 1e3:.0f} ms" for name, t in reduction_seconds.items())
    print(f"class map of one B×19×H×W logits tensor (evaluate takes two per step): {timed}")


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
