"""Where the flow engine's time goes, stage by stage, at 2048×1024 and 854×480 (issue 28).

    .venv/bin/python benchmarks/bench_propagation_profile.py [--data ../shared/data] [--repeats 2]

The default `FlowPropagator` runs with its flows on the calling thread (``workers=1``) and OpenCV
at one thread, so the stages add up to the wall time; each stage is timed by wrapping the
function the engine calls for it. Windows: Cityscapes aachen ±3 around frame 19 (2048×1024, 19
classes: no snapping or cut) and the first 11 frames of the 8 DAVIS clips, +1…+10 from frame 0
(854×480, one object: snapped and cut). Reading the frames (decoding) and writing the labels and
confidence maps into a label store (PNG encoding) are timed around the engine, as
``label propagate`` does them. Best of ``--repeats`` per stage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_propagation_object_cut import CLIPS  # noqa: E402

import frugalseg.autolabel.flow_propagate as engine_module  # noqa: E402
from frugalseg.autolabel import FlowOptions, FlowPropagator, LabelStore  # noqa: E402
from frugalseg.data.clips import Clip, LabelKind  # noqa: E402
from frugalseg.data.io import read_frame  # noqa: E402
from frugalseg.flow.ahead import opencv_threads  # noqa: E402

# stage name → the functions of the engine's module that make it up
STAGES = {
    "DIS, chain (sampled flows)": [],
    "DIS, chain (check flows)": [],
    "DIS, direct to the anchor (sampled)": [],
    "DIS, direct to the anchor (check)": [],
    "forward-backward + photometric checks": ["forward_backward_mask_np", "photometric_mask_np"],
    "warps (labels, lost map, grey)": ["backward_warp_np", "sample_points"],
    "majority votes": ["_majority"],
    "snapping (GrabCut)": ["snap_labels"],
    "object cut (GrabCut)": ["object_cut", "anchor_colour_models"],
    "motion prior (LK + RANSAC)": ["moved_masks", "_with_motion_prior"],
    "confidence maps": ["label_confidence"],
}
WRITING = "PNG encoding + writing (label, confidence)"
FLOW_STAGES = {
    "chain": "DIS, chain (sampled flows)",
    "chain check": "DIS, chain (check flows)",
    "direct": "DIS, direct to the anchor (sampled)",
    "direct check": "DIS, direct to the anchor (check)",
}


@contextmanager
def timed_stages(spent: dict[str, float]) -> Iterator[None]:
    """Add the time of every stage's functions to ``spent`` while the block runs."""
    saved: dict[tuple[Any, str], Any] = {}

    def wrap(owner: Any, attribute: str, stage: Callable[..., str]) -> None:
        function = getattr(owner, attribute)
        saved[owner, attribute] = function

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[stage(*args)] += time.perf_counter() - start

        setattr(owner, attribute, timed)

    for stage, functions in STAGES.items():
        for function in functions:
            wrap(engine_module, function, lambda *args, stage=stage: stage)
    wrap(engine_module._ClipFlows, "flow", lambda clip, key: FLOW_STAGES[key[0]])
    try:
        yield
    finally:
        for (owner, attribute), function in saved.items():
            setattr(owner, attribute, function)


def cityscapes_job(data: Path) -> tuple[list[Path], np.ndarray, int, list[int]]:
    root = data / "cityscapes_dev"
    stem = "aachen_000000_{:06d}"
    paths = [
        root / "leftImg8bit_sequence" / "train" / "aachen" / f"{stem.format(n)}_leftImg8bit.png"
        for n in range(16, 23)
    ]
    label = root / "gtFine" / "train" / "aachen" / f"{stem.format(19)}_gtFine_labelTrainIds.png"
    return paths, cv2.imread(str(label), cv2.IMREAD_UNCHANGED), 3, [0, 1, 2, 4, 5, 6]


def davis_jobs(data: Path) -> Iterator[tuple[list[Path], np.ndarray, int, list[int]]]:
    for folder, clip in CLIPS:
        root = data / folder
        paths = sorted((root / "JPEGImages" / "480p" / clip).glob("*.jpg"))[:11]
        mask = cv2.imread(str(root / "Annotations" / "480p" / clip / "00000.png"), cv2.IMREAD_GRAYSCALE)
        yield paths, (mask > 127).astype(np.uint8), 0, list(range(1, 11))


def profile(jobs: list[tuple[list[Path], np.ndarray, int, list[int]]]) -> dict[str, float]:
    """Seconds per stage, summed over the jobs (decoding, the engine's stages, writing)."""
    spent: dict[str, float] = defaultdict(float)
    engine = FlowPropagator(FlowOptions.from_flat(flow_threads=1))
    with opencv_threads(1), tempfile.TemporaryDirectory() as folder:
        store = LabelStore(folder)
        store.open_run({"engine": engine.name, "settings": engine.settings})
        for number, (paths, label, anchor, targets) in enumerate(jobs):
            start = time.perf_counter()
            frames = [read_frame(path) for path in paths]
            spent["decoding frames"] += time.perf_counter() - start
            start = time.perf_counter()
            with timed_stages(spent):
                found = engine.propagate_with_confidence(frames, anchor, label, targets)
            spent["engine, all stages"] += time.perf_counter() - start
            clip = Clip(clip_id=f"clip{number}", split="train", frames=paths, anchor_index=anchor)
            start = time.perf_counter()
            for target, (result, confidence) in found.items():
                store.write(
                    clip,
                    target - anchor,
                    LabelKind.PSEUDO,
                    result,
                    engine=engine.name,
                    settings=engine.settings,
                    source_offset=0,
                    seconds=0.0,
                    confidence=confidence,
                )
            spent[WRITING] += time.perf_counter() - start
    return spent


def print_profile(title: str, spent: dict[str, float], frames: int) -> None:
    engine = spent["engine, all stages"]
    named = sum(spent[stage] for stage in STAGES)
    total = engine + spent["decoding frames"] + spent[WRITING]
    rate = frames / total
    print(f"\n{title}: {frames} labelled frames, {total:.2f} s in all ({rate:.2f} frames/s, one core)\n")
    print("| stage | s | share of all |")
    print("|---|---|---|")
    rows = [*STAGES, "other (bookkeeping, copies)", "decoding frames", WRITING]
    for stage in rows:
        seconds = engine - named if stage.startswith("other") else spent[stage]
        print(f"| {stage} | {seconds:.2f} | {100 * seconds / total:.1f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(provenance_line())
    for title, jobs in (
        ("2048×1024, Cityscapes aachen ±3 around frame 19", [cityscapes_job(args.data)]),
        ("854×480, 8 DAVIS clips, +1…+10 from frame 0", list(davis_jobs(args.data))),
    ):
        runs = [profile(jobs) for _ in range(args.repeats)]
        best = {stage: min(run[stage] for run in runs) for stage in runs[0]}
        print_profile(title, defaultdict(float, best), sum(len(job[3]) for job in jobs))


if __name__ == "__main__":
    main()
