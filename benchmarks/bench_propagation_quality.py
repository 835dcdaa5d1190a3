"""Flow propagation quality, scored by `frugalseg label report`, against a plain chained-DIS baseline.

    .venv/bin/python benchmarks/bench_propagation_quality.py [--data ../shared/data] [--synthetic-clips 6]

Each engine labels, through `propagate_split` into a fresh label store:

* DAVIS (``davis_dev``: blackswan, car-shadow; 854×480): offsets +1, +5, +10 from the first
  frame's mask; J per sequence (255 counts as not-object) and coverage;
* synthetic streets (generated, the ``val`` clips of the default set, 256×128): offsets ±1, ±5,
  ±10; mIoU over the clips (255 counts as wrong), precision on labelled pixels, coverage.

Engines: ``baseline`` is plain chained backward warping with DIS medium (nearest sampling, no
checks, every pixel labelled); ``flow`` is `FlowPropagator` (preset medium) with ``occlusion="ignore"``
(unreliable pixels 255, the engine before occlusion handling) and ``occlusion="label"`` (majority
of reliable neighbours, direct flow to the anchor; the default of ``frugalseg label propagate``);
further rows switch single features of ``label`` off. The stores are scored with
`frugalseg.autolabel.report.evaluate_store`, the code behind ``frugalseg label report``.
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

from frugalseg.autolabel import FlowPropagator, LabelStore, propagate_split
from frugalseg.autolabel.report import evaluate_store
from frugalseg.data.formats import generate_synthetic_streets, get_format
from frugalseg.flow import DISFlow

DAVIS_OFFSETS = (1, 5, 10)
SYNTHETIC_OFFSETS = (-10, -5, -1, 1, 5, 10)


class ChainedBaseline:
    """Plain chained warping: sample the previous label along DIS flow, nearest, no checks."""

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
        results = {}
        for step, farthest in ((1, max(targets)), (-1, min(targets))):
            label = anchor_label
            for near in range(anchor_index, farthest, step):
                flow = self.flow(frames[near + step], frames[near])
                # border replication: every pixel keeps a label, as a plain warp would
                height, width = label.shape
                grid_x, grid_y = np.meshgrid(
                    np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
                )
                label = cv2.remap(
                    label,
                    grid_x + flow[..., 0],
                    grid_y + flow[..., 1],
                    cv2.INTER_NEAREST,
                    borderMode=cv2.BORDER_REPLICATE,
                )
                if near + step in targets:
                    results[near + step] = label
        return results


def engines() -> dict[str, Any]:
    return {
        "baseline (chained DIS medium)": ChainedBaseline(),
        "flow occlusion=ignore (before)": FlowPropagator(occlusion="ignore"),
        "flow occlusion=label (after)": FlowPropagator(occlusion="label"),
        "flow label, direct=False": FlowPropagator(occlusion="label", direct=False),
        "flow label, vote_size=1": FlowPropagator(occlusion="label", vote_size=1),
    }


def _store_report(
    fmt: Any, split: str, offsets: Sequence[int], engine: Any, root: Path
) -> tuple[dict, float]:
    store = LabelStore(root)
    start = time.perf_counter()
    propagate_split(fmt, split, store, offsets, engine, progress=False)
    seconds = time.perf_counter() - start
    return evaluate_store(root, progress=False), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--synthetic-clips", type=int, default=6, help="val clips of the synthetic set")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        davis = get_format("davis", args.data / "davis_dev")
        synthetic = get_format(
            "synthetic",
            generate_synthetic_streets(
                work / "synthetic", clips_per_split={"val": args.synthetic_clips}, size=(128, 256), seed=0
            ),
        )
        davis_rows, synthetic_rows = [], []
        for index, (name, engine) in enumerate(engines().items()):
            report, seconds = _store_report(davis, "all", DAVIS_OFFSETS, engine, work / f"davis{index}")
            j = {(r["clip_id"], r["offset"]): r["j"] for r in report["per_clip"]}
            rows = {r["offset"]: r for r in report["rows"]}
            cells = [f"{j['blackswan', o]:.3f} / {j['car-shadow', o]:.3f}" for o in DAVIS_OFFSETS]
            cells += [f"{rows[o]['j']:.3f}" for o in DAVIS_OFFSETS]
            cells.append(" / ".join(f"{rows[o]['coverage']:.2f}" for o in DAVIS_OFFSETS))
            davis_rows.append(f"| {name} | " + " | ".join(cells) + f" | {seconds:.1f} |")
            report, seconds = _store_report(
                synthetic, "val", SYNTHETIC_OFFSETS, engine, work / f"synth{index}"
            )
            rows = {r["offset"]: r for r in report["rows"]}
            cells = [f"{rows[o]['miou']:.3f}" for o in SYNTHETIC_OFFSETS]
            cells.append(" / ".join(f"{rows[o]['precision']:.3f}" for o in (-10, 10)))
            cells.append(" / ".join(f"{rows[o]['coverage']:.2f}" for o in (-10, 10)))
            synthetic_rows.append(f"| {name} | " + " | ".join(cells) + f" | {seconds:.1f} |")
            print(davis_rows[-1], synthetic_rows[-1], sep="\n", flush=True)

    print("\nDAVIS davis_dev, J (255 = not object): blackswan / car-shadow, then the mean\n")
    print("| engine | +1 | +5 | +10 | mean +1 | mean +5 | mean +10 | coverage +1/+5/+10 | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(davis_rows))
    print(f"\nsynthetic streets val ({args.synthetic_clips} clips), mIoU (255 = wrong)\n")
    print("| engine | -10 | -5 | -1 | +1 | +5 | +10 | precision ±10 | coverage ±10 | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(synthetic_rows))


if __name__ == "__main__":
    main()
