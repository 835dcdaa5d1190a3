"""Flow propagation speed (frames/s) on real frames, and pseudo-label agreement on the synthetic set.

    .venv/bin/python benchmarks/bench_propagation.py [--data ../shared/data] [--k 3]

* Cityscapes 2048×1024 (``cityscapes_dev``): the fine label of frame 19 carried to ±1…±k.
* DAVIS 854×480 (``davis_dev`` blackswan): the first frame's mask carried forward k frames;
  DAVIS annotates every frame, so agreement with its masks is printed too.
* Synthetic streets (generated, 3 train clips, 256×128): agreement with the per-frame ground truth
  at ±1/±5/±10 for the default engine (preset medium).

frames/s counts labelled target frames per second of `FlowPropagator.propagate` (flow, warps and
checks; frame decoding excluded), on the CPU, single process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.autolabel import FlowOptions, FlowPropagator
from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.data.formats import generate_synthetic_streets, get_format
from frugalseg.data.io import read_frame, read_label

#: (DIS preset, occlusion mode) of the engines timed side by side
ENGINES = (("fast", "ignore"), ("medium", "ignore"), ("medium", "label"))


def agreement(predicted: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """(pixels agreeing, pixels labelled by both, pixels labelled in the truth)."""
    valid = (predicted != IGNORE_INDEX) & (truth != IGNORE_INDEX)
    return int((predicted[valid] == truth[valid]).sum()), int(valid.sum()), int((truth != IGNORE_INDEX).sum())


def timed(engine: FlowPropagator, frames, anchor: int, label: np.ndarray, targets: list[int]):
    start = time.perf_counter()
    out = engine.propagate(frames, anchor, label, targets)
    return out, time.perf_counter() - start


def cityscapes(data: Path, k: int) -> list[str]:
    fmt = get_format("cityscapes", data / "cityscapes_dev")
    rows = []
    for clip in fmt.clips("train"):
        frames = [read_frame(clip.frame_path(o)) for o in range(-k, k + 1)]
        label = read_label(clip.label(0, LabelKind.FINE).path)
        targets = [i for i in range(2 * k + 1) if i != k]
        for preset, occlusion in ENGINES:
            out, seconds = timed(
                FlowPropagator(FlowOptions.from_flat(preset=preset, occlusion=occlusion)),
                frames,
                k,
                label,
                targets,
            )
            coverage = np.mean(
                [(out[t] != IGNORE_INDEX).sum() / (label != IGNORE_INDEX).sum() for t in targets]
            )
            rows.append(
                f"| cityscapes {clip.clip_id} | {frames[0].shape[1]}×{frames[0].shape[0]} | "
                f"{preset}, {occlusion} | ±1…±{k} | {len(targets) / seconds:.2f} | {coverage:.3f} | – |"
            )
    return rows


def davis(data: Path, k: int) -> list[str]:
    images = sorted((data / "davis_dev" / "JPEGImages" / "480p" / "blackswan").glob("*.jpg"))[: k + 1]
    masks = sorted((data / "davis_dev" / "Annotations" / "480p" / "blackswan").glob("*.png"))[: k + 1]
    frames = [read_frame(path) for path in images]
    truths = [(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8) for path in masks]
    rows = []
    for preset, occlusion in ENGINES:
        engine = FlowPropagator(FlowOptions.from_flat(preset=preset, occlusion=occlusion))
        out, seconds = timed(engine, frames, 0, truths[0], list(range(1, k + 1)))
        sums = np.sum([agreement(out[t], truths[t]) for t in range(1, k + 1)], axis=0)
        rows.append(
            f"| davis blackswan | {frames[0].shape[1]}×{frames[0].shape[0]} | {preset}, {occlusion} | "
            f"+1…+{k} | {k / seconds:.2f} | {sums[1] / sums[2]:.3f} | {sums[0] / sums[1]:.4f} |"
        )
    return rows


def synthetic(offsets=(-10, -5, -1, 1, 5, 10)) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        fmt = get_format("synthetic", generate_synthetic_streets(tmp, clips_per_split={"train": 3}, seed=0))
        totals = {o: np.zeros(3, np.int64) for o in offsets}
        engine = FlowPropagator()
        for clip in fmt.clips("train"):
            lo, hi = min(offsets), max(offsets)
            frames = [read_frame(clip.frame_path(o)) for o in range(lo, hi + 1)]
            out = engine.propagate(
                frames, -lo, read_label(clip.label(0, LabelKind.FINE).path), [o - lo for o in offsets]
            )
            truth = fmt.ground_truth(clip)
            for o in offsets:
                totals[o] += agreement(out[o - lo], read_label(truth[o].path))
    return [f"| {o:+d} | {a / n:.4f} | {n / t:.3f} |" for o, (a, n, t) in totals.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print("| clip | size | preset, occlusion | offsets | frames/s | coverage | agreement |")
    print("|---|---|---|---|---|---|---|")
    for row in cityscapes(args.data, args.k) + davis(args.data, args.k):
        print(row)
    print("\nsynthetic streets, 3 train clips, preset medium\n")
    print("| offset | agreement | coverage |")
    print("|---|---|---|")
    for row in synthetic():
        print(row)


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
