"""What issue 44's goal 2 asks of a correction tool: oracles that fix a propagated frame's error exactly.

Goal 2 corrects the propagated frames of IoU 0.5-0.9 (`bench_interactive.corrections`: the same frames, each
clip's first ``--max-frames`` propagated from frame 0's truth by the loop's flow engine, every ``--every``-th
frame of a clip). Here no model answers: each frame's error is fixed by an oracle that sees the truth, to
show what kind of tool could reach IoU 0.9 within 2 clicks.

- ``parts k``: the k largest error parts (8-connected; missed object and spill apart) set to the truth, one
  after the other, the parts found again after each: a click that flips exactly the region it is in.
- ``band p``: every pixel within ``p`` px of the true boundary set to the truth: a perfect snap to the
  object's edges, no click; ``band p + parts 2``: the snap, then 2 parts.

Printed: each oracle's median IoU and share of frames at IoU ≥ 0.9, then each clip's share for ``parts 2``
and ``band 2 + parts 2``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_correction_oracle.py --davis ../shared/data/davis_dev \\
        --davis ../shared/data/davis_hard --every 2
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from bench_interactive import GOAL_IOU, PROPAGATED_RANGE, davis_clips, iou, objects_of, propagated_frames
from provenance import provenance_line

from frugalseg.data.clips import IGNORE_INDEX

Oracle = Callable[[np.ndarray, np.ndarray], np.ndarray]


def largest_part(mask: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
    """The largest 8-connected part of missed object or spill (bool H×W), or None when the mask is exact."""
    best: tuple[int, np.ndarray] | None = None
    for error in (truth & ~mask, mask & ~truth):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), connectivity=8)
        if count > 1:
            part = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            if best is None or stats[part, cv2.CC_STAT_AREA] > best[0]:
                best = (int(stats[part, cv2.CC_STAT_AREA]), labels == part)
    return None if best is None else best[1]


def fix_parts(mask: np.ndarray, truth: np.ndarray, parts: int) -> np.ndarray:
    """``mask`` with its ``parts`` largest error parts set to the truth, found again after each."""
    for _ in range(parts):
        part = largest_part(mask, truth)
        if part is None:
            break
        mask = np.where(part, truth, mask)
    return mask


def fix_band(mask: np.ndarray, truth: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` with every pixel within ``pixels`` px of the true boundary set to the truth."""
    edge = cv2.morphologyEx(truth.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    distance = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 3)
    return np.where(distance <= pixels, truth, mask)


ORACLES: dict[str, Oracle] = {
    "propagated": lambda mask, truth: mask,
    **{f"parts {k}": (lambda mask, truth, k=k: fix_parts(mask, truth, k)) for k in (1, 2, 3)},
    **{f"band {p}": (lambda mask, truth, p=p: fix_band(mask, truth, p)) for p in (2, 3, 5)},
    **{
        f"band {p} + parts 2": (lambda mask, truth, p=p: fix_parts(fix_band(mask, truth, p), truth, 2))
        for p in (2, 3, 5)
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--davis", type=Path, action="append", required=True, help="DAVIS-layout roots")
    parser.add_argument("--max-frames", type=int, default=40, help="frames propagated per clip")
    parser.add_argument("--every", type=int, default=1, help="every n-th chosen frame of a clip")
    args = parser.parse_args()
    low, high = PROPAGATED_RANGE
    scores: dict[str, dict[str, list[float]]] = {}  # clip → oracle → IoU per frame
    for root in args.davis:
        data, clips = davis_clips(root)
        for clip in clips:
            frames, truths, masks = propagated_frames(data, clip, args.max_frames)
            chosen = [
                (t, obj)
                for t in range(1, len(frames))
                for obj in objects_of(truths[0])
                if low <= iou(masks[t] == obj, truths[t] == obj, truths[t] == IGNORE_INDEX) <= high
            ][:: args.every]
            table = scores.setdefault(clip, {name: [] for name in ORACLES})
            for t, obj in chosen:
                truth, ignore = truths[t] == obj, truths[t] == IGNORE_INDEX
                for name, oracle in ORACLES.items():
                    table[name].append(iou(oracle(masks[t] == obj, truth), truth, ignore))
    print(provenance_line())
    total = sum(len(table["propagated"]) for table in scores.values())
    print(f"{total} frames of propagated IoU in {PROPAGATED_RANGE}")
    for name in ORACLES:
        values = np.array([v for table in scores.values() for v in table[name]])
        share = np.mean(values >= GOAL_IOU)
        print(f"{name:18s} median IoU {np.median(values):.3f}, share ≥ {GOAL_IOU}: {share:.3f}")
    for clip, table in scores.items():
        if table["propagated"]:
            parts, snapped = (
                np.mean(np.array(table[name]) >= GOAL_IOU) for name in ("parts 2", "band 2 + parts 2")
            )
            frames = len(table["propagated"])
            print(f"  {clip}: {frames} frames, parts 2 {parts:.2f}, band 2 + parts 2 {snapped:.2f}")


if __name__ == "__main__":
    main()
