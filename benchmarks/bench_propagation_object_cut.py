"""Object cut with the anchor's colour models (issue 10, round 2) and the object motion prior (round 3).

J on the 8 DAVIS clips, and speed.

    .venv/bin/python benchmarks/bench_propagation_object_cut.py [--data ../shared/data] [--skip-speed]

A focused, faster companion of ``bench_propagation_quality.py`` (which goes through the label store
and the report; this one calls the engines directly). Each engine propagates the first frame's mask
of the 8 DAVIS-2016 clips of ``davis_dev`` (blackswan, car-shadow) and ``davis_hard`` (breakdance,
camel, dog, kite-surf, parkour, scooter-black), 854×480, over the first 11 frames, to +1, +5, +10;
J per clip with 255 counted as not-object, and the mean of the 8. Then speed: frames/s on one core,
±3 around the middle of blackswan's first 7 frames (best of 2 runs).

Engines: ``chained DIS`` (plain chained warping, `bench_propagation_quality.ChainedBaseline`);
``round 1`` (`FlowPropagator` with ``object_cut=False``: chain re-anchoring and snapping);
``round 2`` (with the object cut, ``motion_prior=False``); ``default`` (with the object cut opened
where each object's tracked whole-object motion disagrees with the flow, `frugalseg.flow.motion`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_propagation_quality import ChainedBaseline  # noqa: E402

from frugalseg.autolabel import FlowOptions, FlowPropagator  # noqa: E402

CLIPS = [("davis_dev", "blackswan"), ("davis_dev", "car-shadow")] + [
    ("davis_hard", name) for name in ("breakdance", "camel", "dog", "kite-surf", "parkour", "scooter-black")
]
OFFSETS = (1, 5, 10)


def load(data: Path, folder: str, clip: str, count: int = 11) -> tuple[list[np.ndarray], list[np.ndarray]]:
    root = data / folder
    frames = sorted((root / "JPEGImages" / "480p" / clip).glob("*.jpg"))[:count]
    masks = sorted((root / "Annotations" / "480p" / clip).glob("*.png"))[:count]
    images = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in frames]
    return images, [cv2.imread(str(m), cv2.IMREAD_GRAYSCALE) > 127 for m in masks]


def scores(data: Path, engine: Any) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for folder, clip in CLIPS:
        frames, masks = load(data, folder, clip)
        out = engine.propagate(frames, 0, masks[0].astype(np.uint8), list(OFFSETS))
        found[clip] = []
        for offset in OFFSETS:
            predicted, truth = out[offset] == 1, masks[offset]
            union = (predicted | truth).sum()
            found[clip].append(float((predicted & truth).sum() / union) if union else 1.0)
    return found


def speed(data: Path, engine: Any) -> float:
    frames, masks = load(data, "davis_dev", "blackswan", 7)
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        engine.propagate(frames, 3, masks[3].astype(np.uint8), [0, 1, 2, 4, 5, 6])
        best = min(best, time.perf_counter() - start)
    return 6 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    engines = {
        "chained DIS": ChainedBaseline(),
        "round 1": FlowPropagator(FlowOptions.from_flat(object_cut=False)),
        "round 2": FlowPropagator(FlowOptions.from_flat(motion_prior=False)),
        "default": FlowPropagator(),
    }
    table = {name: scores(args.data, engine) for name, engine in engines.items()}
    print("| clip | " + " | ".join(table) + " |")
    print("|---" * (len(table) + 1) + "|")
    for _, clip in CLIPS:
        cells = [" / ".join(f"{j:.3f}" for j in table[name][clip]) for name in table]
        print(f"| {clip} | " + " | ".join(cells) + " |")
    means = {name: np.mean([table[name][clip] for _, clip in CLIPS], axis=0) for name in table}
    print(
        "| **mean of the 8** | " + " | ".join(" / ".join(f"{m:.3f}" for m in means[n]) for n in table) + " |"
    )
    if not args.skip_speed:
        for name in ("round 1", "round 2", "default"):
            print(f"{name}: {speed(args.data, engines[name]):.2f} frames/s at 854×480 (±3, one core)")


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
