"""SAM 2 propagation: all objects in one inference state against one run per object.

    .venv/bin/python benchmarks/bench_sam2_objects.py [--data ../shared/data] [--objects 8]
        [--frames 5] [--image-size 256] [--size 512x256] [--repeats 3] [--threads 1]

The real Cityscapes snippet (``cityscapes_dev``, shrunk to ``--size``): the fine label of frame 19
keeps its ``--objects`` largest objects (instances and connected components; the rest is ignore)
and is carried to the ``--frames`` frames around it by a randomly initialised ``sam2.1_hiera_t``
on the CPU. Random weights make the labels meaningless but the work the same as with trained
weights, so the ratio is what counts.

* one pass: `SAM2Propagator.propagate` — every object in one inference state, one pass per
  direction, the image encoder once per frame.
* per object: one inference state per object (the same engine on a one-object map), the logits
  merged by the same argmax.

This SAM 2 predictor tracks the objects of a state one by one, so both must give the same labels;
the script checks that they do. Times are the median over ``--repeats``, taken round-robin.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.autolabel.objects import LabelObjects, merge_objects, split_objects
from frugalseg.autolabel.sam2_loading import SAM2Options
from frugalseg.autolabel.sam2_propagate import SAM2Propagator
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import get_format
from frugalseg.data.io import read_frame, read_label


def inputs(data: Path, frames: int, size: tuple[int, int], objects: int) -> tuple[list, int, np.ndarray]:
    """Shrunk frames around the anchor and an anchor label of the ``objects`` largest objects."""
    [clip] = get_format("cityscapes", data / "cityscapes_dev").clips("train")
    before = frames // 2
    offsets = range(-before, frames - before)
    shrink = [cv2.resize(read_frame(clip.frame_path(o)), size, interpolation=cv2.INTER_AREA) for o in offsets]
    label = cv2.resize(read_label(clip.label(0, LabelKind.FINE).path), size, interpolation=cv2.INTER_NEAREST)
    split = split_objects(label)
    areas = np.bincount(split.index[split.index >= 0], minlength=len(split))
    kept = np.argsort(-areas, kind="stable")[:objects]
    table = np.full(len(split) + 1, IGNORE_INDEX, dtype=np.uint8)
    table[kept] = np.asarray(split.classes, dtype=np.uint8)[kept]
    return shrink, before, table[split.index]


def one_pass(
    engine: SAM2Propagator, frames: list, anchor: int, label: np.ndarray, targets: list[int]
) -> dict:
    return engine.propagate(frames, anchor, label, targets)


def per_object(
    engine: SAM2Propagator, frames: list, anchor: int, label: np.ndarray, targets: list[int]
) -> dict:
    objects = split_objects(label)
    logits: dict[int, list[torch.Tensor]] = {}
    for i in range(len(objects)):
        single = LabelObjects(
            np.where(objects.index == i, 0, -1).astype(np.int32), [objects.classes[i]], [None]
        )
        for index, frame_logits in engine._track(frames, anchor, single, min(targets), max(targets)):
            logits.setdefault(index, []).append(frame_logits)
    return {t: merge_objects(torch.cat(logits[t]), objects.classes, label.shape) for t in targets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--size", default="512x256", help="frame size W×H")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (on a busy 2-core box a second one only contends)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    frames, anchor, label = inputs(args.data, args.frames, (width, height), args.objects)
    targets = [i for i in range(len(frames)) if i != anchor]
    torch.manual_seed(0)
    engine = SAM2Propagator(SAM2Options(random_weights=True, image_size=args.image_size, device="cpu"))
    encoder_calls = 0
    forward_image = engine.predictor.forward_image

    def counted(image: torch.Tensor):
        nonlocal encoder_calls
        encoder_calls += 1
        return forward_image(image)

    engine.predictor.forward_image = counted
    candidates = {"one pass, all objects": one_pass, "one run per object": per_object}
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    calls: dict[str, int] = {}
    labels: dict[str, dict] = {}
    for _ in range(args.repeats):
        for name, run in candidates.items():
            encoder_calls = 0
            start = time.perf_counter()
            labels[name] = run(engine, frames, anchor, label, targets)
            seconds[name].append(time.perf_counter() - start)
            calls[name] = encoder_calls
    same = all(
        np.array_equal(labels["one pass, all objects"][t], labels["one run per object"][t]) for t in targets
    )
    print(
        f"{len(split_objects(label))} objects, {len(frames)} frames {width}×{height} "
        f"(anchor + {len(targets)} targets), sam2.1_hiera_t random weights, image_size {args.image_size}, "
        f"CPU, torch threads {torch.get_num_threads()}, median of {args.repeats}; labels identical: {same}"
    )
    base = statistics.median(seconds["one run per object"])
    for name in candidates:
        median = statistics.median(seconds[name])
        print(
            f"{name:24s} {median:7.2f} s  {len(targets) / median:6.2f} frames/s  "
            f"encoder runs {calls[name]:3d}  speed-up vs per object {base / median:4.1f}x"
        )


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
