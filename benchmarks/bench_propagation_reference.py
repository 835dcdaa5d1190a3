"""The flow engine against plain chained DIS-medium, side by side in one run (issue 28).

    .venv/bin/python benchmarks/bench_propagation_reference.py [--data ../shared/data] [--repeats 3]
    .venv/bin/python benchmarks/bench_propagation_reference.py --quality

Speed (default): each engine labels ±3 around an anchor on two 2048×1024 Cityscapes windows
(aachen frame 19 with its gtFine label; frame 8 with the network's label map as the anchor label)
and on two 854×480 DAVIS windows (blackswan, dog; frames 0…6, anchor 3). Engines run round robin
in one process, best of ``--repeats``:

* ``reference``: `chain_dis_medium` below (`bench_propagation_quality.chain_dis`, as the quality
  benchmarks' chained baseline), DIS-medium between consecutive frames and the label warped by
  nearest sampling, nothing else (no checks, no votes); on one core (OpenCV at one
  thread) and with OpenCV's threads on every core;
* ``default``: today's `FlowPropagator()`, on one thread (``workers=1``: flows, checks and labels
  one after the other) or on every core;
* the floor: `default_flows_alone`, only the DIS flows the default computes, on every core;
* the speed settings (``--speed fast``: ``direct_preset="fast"``; ``direct_downscale``, ``check_downscale``;
  ``--speed fastest``: ``downscale=2``) on every core.

Times are of ``propagate`` (labels only) on frames in memory, and once of
``propagate_with_confidence`` (what ``label propagate`` calls; decoding and writing are in the
profile, ``bench_propagation_profile.py``). Agreement = share of all pixels whose label equals the default
engine's (255 included), over the windows of that size.

``--quality``: mean J of the 8 DAVIS clips at +1/+5/+10 (`bench_propagation_object_cut.scores`)
and the agreement with Cityscapes' network labels at ±1/±5/±10
(`bench_propagation_quality.cityscapes_agreement`) for the default and the speed settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_propagation_object_cut import scores  # noqa: E402
from bench_propagation_quality import chain_dis, cityscapes_agreement  # noqa: E402

from frugalseg.autolabel import FlowOptions, FlowPropagator  # noqa: E402
from frugalseg.data.clips import IGNORE_INDEX  # noqa: E402
from frugalseg.data.io import read_frame  # noqa: E402
from frugalseg.flow import DISFlow  # noqa: E402
from frugalseg.flow.ahead import opencv_threads, usable_cores  # noqa: E402

SPEED_SETTINGS: dict[str, dict[str, Any]] = {
    "--speed fast (direct flows: DIS fast)": {"direct_preset": "fast"},
    "direct flows at 1/2": {"direct_downscale": 2},
    "check flows at 1/2": {"check_downscale": 2},
    "--speed fastest (all flows at 1/2)": {"downscale": 2},
}


def chain_dis_medium(
    frames: Sequence[np.ndarray], anchor_index: int, anchor_label: np.ndarray, targets: Sequence[int]
) -> dict[int, np.ndarray]:
    """The reference: `chain_dis` with DIS-medium, samples from outside the frame 255."""
    return chain_dis(frames, anchor_index, anchor_label, targets, DISFlow("medium"), outside=IGNORE_INDEX)


def labels_of(engine: FlowPropagator) -> Callable[..., dict[int, np.ndarray]]:
    """``engine.propagate_with_confidence`` (labels and confidence maps made), its labels returned."""

    def propagate(*args: Any) -> dict[int, np.ndarray]:
        return {index: label for index, (label, _) in engine.propagate_with_confidence(*args).items()}

    return propagate


def default_flows_alone(
    frames: Sequence[np.ndarray], anchor_index: int, anchor_label: np.ndarray, targets: Sequence[int]
) -> dict[int, np.ndarray]:
    """The floor: only the DIS-medium flows the default engine computes, on every core; no labels.

    For each step away from the anchor the flow from the farther frame to the nearer and back, and
    from two frames away on the flows between the frame and the anchor both ways (20 flows for ±3).
    """
    dis = DISFlow("medium")
    greys = [dis.gray(frame) for frame in frames]
    pairs = []
    for step, farthest in ((1, max(targets)), (-1, min(targets))):
        for near in range(anchor_index, farthest, step):
            far = near + step
            pairs += [(far, near), (near, far)]
            if abs(far - anchor_index) >= 2:
                pairs += [(far, anchor_index), (anchor_index, far)]
    with ThreadPoolExecutor(usable_cores()) as pool:
        list(pool.map(lambda pair: dis.between(greys[pair[0]], greys[pair[1]], anchor_label.shape), pairs))
    return {}


def cityscapes_windows(data: Path) -> list[tuple[list[np.ndarray], np.ndarray]]:
    """Two 7-frame windows of the aachen snippet, each with the label of its middle frame."""
    from cityscapesscripts.helpers.labels import labels as cityscapes_labels

    to_train = np.full(256, IGNORE_INDEX, np.uint8)
    for entry in cityscapes_labels:
        if entry.id >= 0:
            to_train[entry.id] = entry.trainId if 0 <= entry.trainId < 255 else IGNORE_INDEX
    root = data / "cityscapes_dev"
    stem = "aachen_000000_{:06d}"
    sequence = root / "leftImg8bit_sequence" / "train" / "aachen"
    gt = root / "gtFine" / "train" / "aachen" / f"{stem.format(19)}_gtFine_labelTrainIds.png"
    network = root / "pseudo_labelIds_sequence" / "train" / "aachen" / f"{stem.format(8)}_pseudo_labelIds.png"
    windows = []
    for anchor, label in (
        (19, cv2.imread(str(gt), cv2.IMREAD_UNCHANGED)),
        (8, to_train[cv2.imread(str(network), cv2.IMREAD_UNCHANGED)]),
    ):
        frames = [
            read_frame(sequence / f"{stem.format(n)}_leftImg8bit.png") for n in range(anchor - 3, anchor + 4)
        ]
        windows.append((frames, label))
    return windows


def davis_windows(data: Path) -> list[tuple[list[np.ndarray], np.ndarray]]:
    """Frames 0…6 of blackswan and dog, each with the mask of frame 3."""
    windows = []
    for folder, clip in (("davis_dev", "blackswan"), ("davis_hard", "dog")):
        root = data / folder
        frames = [read_frame(f) for f in sorted((root / "JPEGImages" / "480p" / clip).glob("*.jpg"))[:7]]
        mask = cv2.imread(str(root / "Annotations" / "480p" / clip / "00003.png"), cv2.IMREAD_GRAYSCALE)
        windows.append((frames, (mask > 127).astype(np.uint8)))
    return windows


def runners() -> dict[str, tuple[Callable[..., dict[int, np.ndarray]], int]]:
    """Each timed engine's propagate and the OpenCV threads it runs under (0: OpenCV's default)."""
    cores = usable_cores()
    found: dict[str, tuple[Callable[..., dict[int, np.ndarray]], int]] = {
        "reference, one core": (chain_dis_medium, 1),
        f"reference, OpenCV threads on {cores} cores": (chain_dis_medium, cores),
        "default, on one thread": (FlowPropagator(FlowOptions.from_flat(flow_threads=1)).propagate, 1),
        f"default, flows on {cores} threads": (FlowPropagator().propagate, 1),
        f"default with its confidence maps, {cores} threads": (labels_of(FlowPropagator()), 1),
        f"the default's DIS flows alone, {cores} threads (no labels)": (default_flows_alone, 1),
    }
    for name, settings in SPEED_SETTINGS.items():
        found[f"{name}, {cores} threads"] = FlowPropagator(FlowOptions.from_flat(**settings)).propagate, 1
    return found


def speed(windows: list[tuple[list[np.ndarray], np.ndarray]], repeats: int) -> list[tuple[str, float, float]]:
    """(engine, seconds per window (best of ``repeats``), agreement with the default) for each engine."""
    engines = runners()
    best = dict.fromkeys(engines, float("inf"))
    labels: dict[str, list[dict[int, np.ndarray]]] = {}
    targets = [0, 1, 2, 4, 5, 6]
    for _ in range(repeats):
        for name, (propagate, threads) in engines.items():
            start = time.perf_counter()
            with opencv_threads(threads if threads else usable_cores()):
                labels[name] = [propagate(frames, 3, label, targets) for frames, label in windows]
            best[name] = min(best[name], (time.perf_counter() - start) / len(windows))
    default = labels["default, on one thread"]
    rows = []
    for name in engines:
        same = [
            np.mean([(out[t] == ref[t]).mean() for t in targets])
            for out, ref in zip(labels[name], default, strict=True)
            if out
        ]
        rows.append((name, best[name], float(np.mean(same)) if same else float("nan")))
    return rows


def print_speed(title: str, rows: list[tuple[str, float, float]]) -> None:
    reference = rows[0][1]
    print(f"\n{title}, ±3 around the anchor, best of the repeats, s per window\n")
    print("| engine | s | frames/s | × reference (one core) | agreement with default |")
    print("|---|---|---|---|---|")
    for name, seconds, agreement in rows:
        same = "—" if np.isnan(agreement) else f"{agreement:.5f}"
        print(f"| {name} | {seconds:.2f} | {6 / seconds:.2f} | {seconds / reference:.2f} | {same} |")


def quality(data: Path) -> None:
    """J of the 8 DAVIS clips and agreement with Cityscapes' network labels, default and speed settings."""
    print("\n| engine | J +1 | J +5 | J +10 | Cityscapes −10 | −5 | −1 | +1 | +5 | +10 | mean |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, settings in {"default": {}, **SPEED_SETTINGS}.items():
        engine = FlowPropagator(FlowOptions.from_flat(**settings))
        j = np.mean(list(scores(data, engine).values()), axis=0)
        agreement = cityscapes_agreement(data, engine)
        cells = " | ".join(f"{100 * a:.2f}" for a in agreement.values())
        print(
            f"| {name} | {j[0]:.4f} | {j[1]:.4f} | {j[2]:.4f} | {cells} | "
            f"{100 * np.mean(list(agreement.values())):.2f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality", action="store_true", help="J and Cityscapes agreement instead of speed")
    args = parser.parse_args()
    print(provenance_line())
    if args.quality:
        quality(args.data)
        return
    print_speed(
        "2048×1024 (Cityscapes aachen, anchors 19 and 8)", speed(cityscapes_windows(args.data), args.repeats)
    )
    print_speed("854×480 (DAVIS blackswan and dog, anchor 3)", speed(davis_windows(args.data), args.repeats))


if __name__ == "__main__":
    main()
