"""Flow propagation quality on real video, scored by `frugalseg label report`, against plain chained DIS.

    .venv/bin/python benchmarks/bench_propagation_quality.py [--data ../shared/data] [--skip-speed]

Each engine labels, through `propagate_split` into a fresh label store, the 8 DAVIS-2016 clips of
``davis_dev`` (blackswan, car-shadow) and ``davis_hard`` (breakdance, camel, dog, kite-surf,
parkour, scooter-black), 854×480, at offsets +1, +5, +10 from the first frame's mask; J per clip
(255 counts as not-object), the mean over the 8 clips, and coverage. The stores are scored with
`frugalseg.autolabel.report.evaluate_store`, the code behind ``frugalseg label report``, which also
gives the confidence figures (mean confidence; share of wrong pixels among each frame's 10 % least
and most confident pixels).

Then Cityscapes ``cityscapes_dev`` (2048×1024): the manual label of ``_000019`` propagated to
±1/±5/±10 and compared with ``pseudo_labelIds_sequence`` (a network's labels, not ground truth):
agreement on pixels both label. Last, speed (frames/s, one core, ±3 around the anchor) at 854×480
(blackswan) and 2048×1024 (aachen).

Engines: ``chained DIS`` is plain chained backward warping with DIS medium (nearest sampling, no
checks, every pixel labelled); ``before`` is `FlowPropagator` as it was before issue 10
(``chain_direct=False, snap=False``); ``+ chain_direct`` feeds the direct labels into the chain;
``default`` adds snapping (``snap=True``); ``fast`` is the default with DIS ``fast`` and a cheaper
cut (on the box shrunk by 2, one GrabCut iteration).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.autolabel import FlowOptions, FlowPropagator, LabelStore, propagate_split
from frugalseg.autolabel.propagate import PropagationEngine
from frugalseg.autolabel.report import evaluate_store
from frugalseg.data.formats import get_format
from frugalseg.data.io import read_frame
from frugalseg.flow import DISFlow

DAVIS_OFFSETS = (1, 5, 10)
CITYSCAPES_OFFSETS = (-10, -5, -1, 1, 5, 10)
DAVIS_FOLDERS = ("davis_dev", "davis_hard")


def chain_dis(
    frames: Sequence[np.ndarray],
    anchor_index: int,
    anchor_label: np.ndarray,
    targets: Sequence[int],
    flow: DISFlow,
    outside: int | None = None,
) -> dict[int, np.ndarray]:
    """Plain chained warping: the previous label sampled along the flow to it, nearest, no checks.

    Args:
        frames, anchor_index, anchor_label, targets: as `FlowPropagator.propagate`'s.
        flow: the DIS engine; each frame's grey image is made once.
        outside: the label of samples from outside the frame; None replicates the border, so that
            every pixel keeps a label, as a plain warp would.
    """
    greys = [flow.gray(frame) for frame in frames]
    size = anchor_label.shape
    height, width = size
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    border = cv2.BORDER_REPLICATE if outside is None else cv2.BORDER_CONSTANT
    results = {}
    for step, farthest in ((1, max(targets)), (-1, min(targets))):
        label = anchor_label
        for near in range(anchor_index, farthest, step):
            between = flow.between(greys[near + step], greys[near], size)
            label = cv2.remap(
                label,
                grid_x + between[..., 0],
                grid_y + between[..., 1],
                cv2.INTER_NEAREST,
                borderMode=border,
                borderValue=0 if outside is None else outside,
            )
            if near + step in targets:
                results[near + step] = label
    return results


class ChainedBaseline(PropagationEngine):
    """`chain_dis` as a propagation engine (border replicated)."""

    name = "baseline"

    def __init__(self, preset: str = "medium") -> None:
        self.flow = DISFlow(preset=preset)

    @property
    def settings(self) -> dict[str, Any]:
        return {"preset": self.flow.preset}

    def propagate(
        self,
        frames: Sequence[np.ndarray],
        anchor_index: int,
        anchor_label: np.ndarray,
        targets: Sequence[int],
    ) -> dict[int, np.ndarray]:
        return chain_dis(frames, anchor_index, anchor_label, targets, self.flow)


def engines() -> dict[str, Any]:
    return {
        "chained DIS (medium)": ChainedBaseline(),
        "before (chain_direct=False, snap=False)": FlowPropagator(
            FlowOptions.from_flat(chain_direct=False, snap=False)
        ),
        "+ chain_direct (snap=False)": FlowPropagator(FlowOptions.from_flat(snap=False)),
        "**default** (+ snap)": FlowPropagator(),
        "fast (preset=fast, snap_downscale=2, snap_iterations=1)": FlowPropagator(
            FlowOptions.from_flat(preset="fast", snap_downscale=2, snap_iterations=1)
        ),
    }


def davis_scores(data: Path, engine: Any, work: Path) -> tuple[dict, dict, float]:
    """J per (clip, offset), the report rows per offset of both folders, and the seconds taken."""
    j: dict[tuple[str, int], float] = {}
    coverage: dict[tuple[str, int], float] = {}
    rows: dict[int, list[dict]] = {}
    seconds = 0.0
    for folder in DAVIS_FOLDERS:
        store = work / folder
        start = time.perf_counter()
        propagate_split(
            get_format("davis", data / folder),
            "all",
            LabelStore(store),
            DAVIS_OFFSETS,
            engine,
            progress=False,
        )
        seconds += time.perf_counter() - start
        report = evaluate_store(store, progress=False)
        for row in report["per_clip"]:
            j[row["clip_id"], row["offset"]] = row["j"]
            coverage[row["clip_id"], row["offset"]] = row["coverage"]
        for row in report["rows"]:
            rows.setdefault(row["offset"], []).append(row)
    return {"j": j, "coverage": coverage}, rows, seconds


def cityscapes_agreement(data: Path, engine: Any) -> dict[int, float]:
    """Agreement of the propagated labels with the network's pseudo labels at each offset."""
    from cityscapesscripts.helpers.labels import labels as cityscapes_labels

    to_train = np.full(256, 255, np.uint8)
    for entry in cityscapes_labels:
        if entry.id >= 0:
            to_train[entry.id] = entry.trainId if 0 <= entry.trainId < 255 else 255
    root = data / "cityscapes_dev"
    stem = "aachen_000000_{:06d}"
    frames = [
        read_frame(root / "leftImg8bit_sequence" / "train" / "aachen" / f"{stem.format(n)}_leftImg8bit.png")
        for n in range(9, 30)
    ]
    anchor = cv2.imread(
        str(root / "gtFine" / "train" / "aachen" / f"{stem.format(19)}_gtFine_labelTrainIds.png"),
        cv2.IMREAD_UNCHANGED,
    )
    out = engine.propagate(frames, 10, anchor, [10 + o for o in CITYSCAPES_OFFSETS])
    agreement = {}
    for offset in CITYSCAPES_OFFSETS:
        ids = cv2.imread(
            str(
                root
                / "pseudo_labelIds_sequence"
                / "train"
                / "aachen"
                / f"{stem.format(19 + offset)}_pseudo_labelIds.png"
            ),
            cv2.IMREAD_UNCHANGED,
        )
        pseudo, label = to_train[ids], out[10 + offset]
        both = (pseudo != 255) & (label != 255)
        agreement[offset] = float((pseudo[both] == label[both]).mean())
    return agreement


def speed(frames: list[np.ndarray], label: np.ndarray, engine: Any) -> float:
    """Frames per second labelling ±3 around the middle of 7 frames."""
    start = time.perf_counter()
    engine.propagate(frames, 3, label, [0, 1, 2, 4, 5, 6])
    return 6 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, engine) in enumerate(engines().items()):
            scores, rows, seconds = davis_scores(args.data, engine, Path(tmp) / f"e{index}")
            agreement = cityscapes_agreement(args.data, engine)
            results[name] = scores, rows, seconds, agreement
            means = [np.mean([v for (_, o), v in scores["j"].items() if o == off]) for off in DAVIS_OFFSETS]
            print(name, " ".join(f"{m:.3f}" for m in means), f"{seconds:.0f} s", flush=True)
    clips = sorted({clip for clip, _ in next(iter(results.values()))[0]["j"]})

    print("\n## DAVIS, J per clip at +1 / +5 / +10 (255 = not object)\n")
    print("| clip | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for clip in clips:
        cells = [" / ".join(f"{r[0]['j'][clip, o]:.3f}" for o in DAVIS_OFFSETS) for r in results.values()]
        print(f"| {clip} | " + " | ".join(cells) + " |")
    cells = []
    for r in results.values():
        cells.append(" / ".join(f"{np.mean([r[0]['j'][c, o] for c in clips]):.3f}" for o in DAVIS_OFFSETS))
    print("| **mean of 8** | " + " | ".join(f"**{c}**" for c in cells) + " |")
    cells = [
        " / ".join(f"{np.mean([r[0]['coverage'][c, o] for c in clips]):.2f}" for o in DAVIS_OFFSETS)
        for r in results.values()
    ]
    print("| coverage (mean) | " + " | ".join(cells) + " |")
    print(
        "| seconds (propagate_split, 8 clips) | " + " | ".join(f"{r[2]:.0f}" for r in results.values()) + " |"
    )

    print("\n## Confidence maps (DAVIS, 8 clips; from `label report`)\n")
    print(
        "| engine | offset | mean confidence | wrong among 10 % least confident "
        "| wrong among 10 % most confident |"
    )
    print("|---|---|---|---|---|")
    for name, (_, rows, _, _) in results.items():
        for offset in DAVIS_OFFSETS:
            parts = rows[offset]
            if not any(p["confident_labels"] for p in parts):
                continue
            labels = sum(p["confident_labels"] for p in parts)
            conf = sum(p["confidence"] * p["confident_labels"] for p in parts) / labels
            low = np.mean([p["wrong@low10"] for p in parts])
            high = np.mean([p["wrong@high10"] for p in parts])
            print(f"| {name} | +{offset} | {conf:.3f} | {low:.4f} | {high:.5f} |")

    print("\n## Cityscapes dev: agreement with the network's pseudo labels (from _000019)\n")
    print("| engine | " + " | ".join(f"{o:+d}" for o in CITYSCAPES_OFFSETS) + " |")
    print("|---|" + "---|" * len(CITYSCAPES_OFFSETS))
    for name, (*_, agreement) in results.items():
        print(f"| {name} | " + " | ".join(f"{100 * agreement[o]:.1f} %" for o in CITYSCAPES_OFFSETS) + " |")

    if args.skip_speed:
        return
    davis = get_format("davis", args.data / "davis_dev")
    small = [read_frame(p) for p in davis.frame_paths("blackswan")[:7]]
    small_label = davis.to_label(davis.read_mask(davis.mask_paths("blackswan")[3]))
    root = args.data / "cityscapes_dev"
    big = [
        read_frame(
            root / "leftImg8bit_sequence" / "train" / "aachen" / f"aachen_000000_{n:06d}_leftImg8bit.png"
        )
        for n in range(16, 23)
    ]
    big_label = cv2.imread(
        str(root / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelTrainIds.png"),
        cv2.IMREAD_UNCHANGED,
    )
    print("\n## Speed, frames/s (one core, ±3 around the anchor)\n")
    print("| engine | 854×480 (blackswan, 2 classes) | 2048×1024 (aachen, 19 classes) |")
    print("|---|---|---|")
    for name, engine in engines().items():
        print(
            f"| {name} | {speed(small, small_label, engine):.2f} | {speed(big, big_label, engine):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
