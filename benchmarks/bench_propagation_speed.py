"""Flow propagation speed at 2048×1024 and 854×480: the code before issue 11, today's, faster settings.

    .venv/bin/python benchmarks/bench_propagation_speed.py [--data ../shared/data] [--repeats 3]

Each engine labels ±3 frames around an anchor (Cityscapes aachen frame 19, 2048×1024, 19 classes;
DAVIS blackswan frame 3, 854×480, 2 classes) on one core (``cv2.setNumThreads(1)``). The engines
run round robin in one process and the best of ``--repeats`` is kept, so the ratios hold on a busy
machine. Agreement = share of the pixels both label that carry the same class as the default
engine's labels; coverage = share of pixels labelled (not 255).

* ``before (code), medium ignore``: the default engine of the time (DIS medium, ``occlusion="ignore"``)
  with the forward-backward check and the class counting as they were before issue 11 (the
  channel sums by a numpy reduction, classes by ``np.unique``), patched back in here;
* ``medium ignore``: the same settings with today's code (identical labels);
* ``label, before issue 10``: ``occlusion="label"`` as `frugalseg label propagate` ran it before
  issue 10 (majority vote, direct flow for the output only; no re-anchoring, snapping or cut);
* ``default``: today's `FlowPropagator()` (issue 10's engine: majority vote, direct flow feeding
  the chain; objects are snapped and cut, street scenes are not);
* ``default, direct flows at 1/2``: the default with ``direct_downscale=2`` (the chain's flows at
  full size, the direct flows to the anchor on half-size frames);
* ``default, flow at 1/2``: the default with ``downscale=2`` (flows on half-size frames);
* ``fast, flow at 1/4, ignore``: DIS fast on quarter-size frames, ``occlusion="ignore"``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

import frugalseg.autolabel.flow_propagate as propagate_module
import frugalseg.flow.refine as refine_module
from frugalseg.autolabel import FlowOptions, FlowPropagator
from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.io import read_frame


def forward_backward_before(
    flow_ab: np.ndarray, flow_ba: np.ndarray, alpha: float = 0.01, beta: float = 0.5
) -> np.ndarray:
    """The forward-backward check as it was before issue 11 (squared norms by ``sum(-1)``)."""
    height, width = flow_ab.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = grid_x + flow_ab[..., 0], grid_y + flow_ab[..., 1]
    back = cv2.remap(
        np.ascontiguousarray(flow_ba, dtype=np.float32),
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    round_trip = flow_ab + back
    bound = alpha * ((flow_ab**2).sum(-1) + (back**2).sum(-1)) + beta
    return inside & ((round_trip**2).sum(-1) < bound)


def class_counts_before(label: np.ndarray, ignore: int) -> tuple[np.ndarray, np.ndarray]:
    """Classes and counts by ``np.unique`` (a sort), as before."""
    return np.unique(label[label != ignore], return_counts=True)


@contextmanager
def code_before() -> Iterator[None]:
    """Patch the checks of before issue 11 into the engine for the duration of the block."""
    saved = propagate_module.forward_backward_mask_np, refine_module._class_counts
    propagate_module.forward_backward_mask_np = forward_backward_before
    refine_module._class_counts = class_counts_before
    try:
        yield
    finally:
        propagate_module.forward_backward_mask_np, refine_module._class_counts = saved


@contextmanager
def code_today() -> Iterator[None]:
    yield


ENGINES: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "before (code), medium ignore": (
        lambda: FlowPropagator(FlowOptions.from_flat(occlusion="ignore")),
        code_before,
    ),
    "medium ignore": (lambda: FlowPropagator(FlowOptions.from_flat(occlusion="ignore")), code_today),
    "label, before issue 10": (
        lambda: FlowPropagator(FlowOptions.from_flat(chain_direct=False, snap=False, object_cut=False)),
        code_today,
    ),
    "default": (FlowPropagator, code_today),
    "default, direct flows at 1/2": (
        lambda: FlowPropagator(FlowOptions.from_flat(direct_downscale=2)),
        code_today,
    ),
    "default, flow at 1/2": (lambda: FlowPropagator(FlowOptions.from_flat(downscale=2)), code_today),
    "fast, flow at 1/4, ignore": (
        lambda: FlowPropagator(FlowOptions.from_flat(preset="fast", downscale=4, occlusion="ignore")),
        code_today,
    ),
}


def clips(data: Path) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """Seven frames around the anchor and its label, per clip."""
    city = data / "cityscapes_dev"
    stem = "aachen_000000_{:06d}"
    city_frames = [
        read_frame(city / "leftImg8bit_sequence" / "train" / "aachen" / f"{stem.format(n)}_leftImg8bit.png")
        for n in range(16, 23)
    ]
    city_label = cv2.imread(
        str(city / "gtFine" / "train" / "aachen" / f"{stem.format(19)}_gtFine_labelTrainIds.png"),
        cv2.IMREAD_UNCHANGED,
    )
    davis = data / "davis_dev"
    images = sorted((davis / "JPEGImages" / "480p" / "blackswan").glob("*.jpg"))[:7]
    masks = sorted((davis / "Annotations" / "480p" / "blackswan").glob("*.png"))[:7]
    davis_label = (cv2.imread(str(masks[3]), cv2.IMREAD_GRAYSCALE) > 127).astype(np.uint8)
    return {
        "2048×1024 (Cityscapes aachen, 19 classes)": (city_frames, city_label),
        "854×480 (DAVIS blackswan, 2 classes)": ([read_frame(p) for p in images], davis_label),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    targets = [0, 1, 2, 4, 5, 6]
    for size, (frames, label) in clips(args.data).items():
        best = dict.fromkeys(ENGINES, float("inf"))
        labels: dict[str, dict[int, np.ndarray]] = {}
        for _ in range(args.repeats):
            for name, (make, code) in ENGINES.items():
                engine = make()
                with code():
                    start = time.perf_counter()
                    labels[name] = engine.propagate(frames, 3, label, targets)
                    best[name] = min(best[name], time.perf_counter() - start)
        print(f"\n{size}, ±3 around the anchor, best of {args.repeats}\n")
        print("| engine | frames/s | × before | coverage | agreement with default |")
        print("|---|---|---|---|---|")
        reference = labels["default"]
        for name in ENGINES:
            found = labels[name]
            both = {t: (found[t] != IGNORE_INDEX) & (reference[t] != IGNORE_INDEX) for t in targets}
            same = sum(int((found[t] == reference[t])[both[t]].sum()) for t in targets)
            agreement = same / max(sum(int(b.sum()) for b in both.values()), 1)
            coverage = np.mean([(labels[name][t] != IGNORE_INDEX).mean() for t in targets])
            fps = len(targets) / best[name]
            ratio = best["before (code), medium ignore"] / best[name]
            print(f"| {name} | {fps:.2f} | {ratio:.2f} | {coverage:.3f} | {agreement:.4f} |")
        before, today = labels["before (code), medium ignore"], labels["medium ignore"]
        same_labels = all(np.array_equal(before[t], today[t]) for t in targets)
        print(f"\nbefore (code) and today's code, same settings, give identical labels: {same_labels}")


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
