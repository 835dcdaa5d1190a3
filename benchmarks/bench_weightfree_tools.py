"""The annotation page's weight-free tools on the development clips' first frames, by a scripted person.

The person sees the ground truth (DAVIS ``Annotations/480p``, one object per first frame) and uses
each tool the way the page offers it:

- ``box``: a drag of the truth's bounding box grown by ``--pads`` px (`GrabCutClicks.box`), then up
  to 3 corrective clicks, each at the centre of the largest error region (`corrective_click`:
  positive on a miss, negative on an extra), the box and every click so far sent each time;
- ``clicks``: the same corrective clicks on an empty frame, with no box (`GrabCutClicks.correct`);
- ``scissors N``: N anchors spaced evenly along the truth's outer contour, closed
  (`IntelligentScissors.mask`);
- ``superpixels``: every superpixel whose majority is the object painted (`superpixels`), the
  best a person with the brush can do.

Each figure is the IoU with the truth; the table gives the median and the range over the clips.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_weightfree_tools.py \\
        --roots ../shared/data/davis_dev ../shared/data/davis_hard \\
        --out benchmarks/results/weightfree_tools.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/ is the script's own folder

from frugalseg.active.objects.simulation.annotation_types import padded_box
from frugalseg.active.objects.simulation.simulated_annotator import CorrectiveClick, corrective_click
from frugalseg.active.objects.tools.click_models import GrabCutClicks
from frugalseg.active.objects.tools.tools import IntelligentScissors, superpixels
from frugalseg.data.io import read_frame
from frugalseg.metrics.mask_scores import region_similarity

CLICKS = 3
ANCHORS = (8, 16, 32)


def first_frames(roots: list[Path]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(clip, image, truth) of every clip's first frame under the DAVIS roots."""
    found = []
    for root in roots:
        for folder in sorted((root / "Annotations" / "480p").iterdir()):
            truth = cv2.imread(str(folder / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
            image = read_frame(root / "JPEGImages" / "480p" / folder.name / "00000.jpg")
            found.append((folder.name, image, truth))
    return found


def contour_anchors(truth: np.ndarray, count: int) -> list[tuple[int, int]]:
    """``count`` points spaced evenly along the truth's longest outer contour."""
    contours, _ = cv2.findContours(truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=len).reshape(-1, 2)
    picks = np.linspace(0, len(outline), count, endpoint=False).astype(int)
    return [(int(x), int(y)) for x, y in outline[picks]]


def majority_superpixels(image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The union of the superpixels of which more than half is object."""
    labels = superpixels(image)
    share = np.bincount(labels.ravel(), truth.ravel()) / np.bincount(labels.ravel())
    painted: np.ndarray = share[labels] > 0.5
    return painted


def measure(clip: str, image: np.ndarray, truth: np.ndarray, pads: list[int]) -> dict[str, float]:
    """Every tool's IoU on one frame (see the module docstring)."""
    model = GrabCutClicks()
    row: dict[str, float] = {}
    for pad in pads:
        box = padded_box(truth, pad)
        found = model.box(image, box)
        row[f"box {pad} px"] = region_similarity(found, truth)
        made: list[CorrectiveClick] = []
        for number in range(1, CLICKS + 1):
            click = corrective_click(found, truth)
            made += [click] if click is not None else []
            found = model.box(image, box, made)
            row[f"box {pad} px + {number} click{'s' * (number > 1)}"] = region_similarity(found, truth)
    empty = np.zeros_like(truth)
    found, made = empty, []
    for number in range(1, CLICKS + 1):
        click = corrective_click(found, truth)
        made += [click] if click is not None else []
        found = model.correct(image, empty, made)
        row[f"clicks alone, {number}"] = region_similarity(found, truth)
    scissors = IntelligentScissors()
    for count in ANCHORS:
        row[f"scissors, {count} anchors"] = region_similarity(
            scissors.mask(image, contour_anchors(truth, count)), truth
        )
    row["superpixels (majority)"] = region_similarity(majority_superpixels(image, truth), truth)
    return row


def table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown: one line per tool, the median, range and each clip's IoU."""
    clips = list(rows)
    tools = list(rows[clips[0]])
    lines = [
        "| tool | median IoU | min–max | " + " | ".join(clips) + " |",
        "|---|---:|---:|" + "---:|" * len(clips),
    ]
    for tool in tools:
        values = np.array([rows[c][tool] for c in clips])
        cells = " | ".join(f"{v:.3f}" for v in values)
        lines.append(
            f"| {tool} | **{np.median(values):.3f}** | {values.min():.3f}–{values.max():.3f} | {cells} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Measure every tool on every clip's first frame; print the table and write it with ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=Path, nargs="+", required=True, help="DAVIS-layout roots")
    parser.add_argument("--pads", type=int, nargs="+", default=[0, 5, 10], help="box paddings in px")
    parser.add_argument("--out", type=Path, help="markdown file to write")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = {}
    for clip, image, truth in first_frames(args.roots):
        rows[clip] = measure(clip, image, truth, args.pads)
        print(clip, {k: round(v, 3) for k, v in rows[clip].items()}, flush=True)
    text = table(rows)
    print(text)
    print(f"{time.perf_counter() - started:.0f} s")
    if args.out is not None:
        command = " ".join(["PYTHONPATH=. .venv/bin/python", *sys.argv])
        header = f"# Weight-free tools on the development clips' first frames\n\n`{command}`\n\n"
        args.out.write_text(header + text + "\n\n" + provenance_line() + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
