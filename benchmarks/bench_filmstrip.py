"""How well the annotation page's filmstrip points at the frames that are wrong (issue 45, the filmstrip).

    nice -n 19 .venv/bin/python benchmarks/bench_filmstrip.py [--fresh]

On the 8 DAVIS clips of ../shared/data (davis_dev + davis_hard), every 2nd of the first 40 frames
(20 a clip) with the loop's flow engine at half resolution (as `bench_unreliability.py`), each
annotated set of `ANNOTATED_SETS` ({0}: a person's first annotation; then 2 and 3 masks) is
propagated from its ground-truth masks (`propagate_annotations`). Per frame it records the
disagreement and unsure share the page's state keeps and the real error 1 − J (J the mean over the
truth's objects of their IoU). Each filmstrip score is then scored within each clip × annotated set
(the filmstrip shows one clip at a time) by Spearman's correlation with 1 − J over the frames not
annotated (mean ± std over the groups, min, each clip's mean), by how many of those frames it marks
red, by the real error of the red frames against the others, and by how many red frames are wrong by
1 − J ≥ 0.2 (precision) and how many such frames are red (recall):

- ``before``: the former filmstrip, `propagation.unreliability` stretched from the clip's lowest to
  its highest value (red: the red channel above the green one, a stretched share above 0.44);
- ``after``: the page's `proposals.filmstrip_scores`, the fitted error model's expected 1 − J&F of
  each frame (red: at or above `proposals.LOOK_HERE`).

The records are kept in /work/experiments/active/bench/filmstrip.json (``--fresh`` recomputes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder
from scipy.stats import spearmanr

from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.session.proposals import LOOK_HERE, filmstrip_scores
from frugalseg.active.objects.simulation.runs import video_sources
from frugalseg.active.propagation import PropagationCache, unreliability
from frugalseg.data.formats.davis import DavisFormat

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROOTS = [DATA / "davis_dev", DATA / "davis_hard"]
RECORDS = Path("/work/experiments/active/bench/filmstrip.json")
STRIDE, MAX_FRAMES, DOWNSCALE = 2, 40, 2
ANNOTATED_SETS = [[0], [0, 10], [0, 19], [0, 7, 14]]
#: The former filmstrip's red: 255·s > 200·(1 − s) of the stretched share s.
FORMER_RED = 200 / 455


def jaccard(mask: np.ndarray, truth: np.ndarray) -> float:
    """Mean over the truth's objects of their IoU with ``mask`` (1 for a frame without objects)."""
    objects = [int(o) for o in np.unique(truth) if o not in (0, 255)]
    scores = []
    for obj in objects:
        ours, theirs = mask == obj, truth == obj
        union = np.count_nonzero(ours | theirs)
        scores.append(1.0 if union == 0 else np.count_nonzero(ours & theirs) / union)
    return float(np.mean(scores)) if scores else 1.0


def collect() -> list[dict]:
    """One group (clip, annotated set, per frame d, u and 1 − J) per clip × annotated set."""
    engine = get_loop_engine("flow", downscale=DOWNSCALE)
    groups = []
    for root in ROOTS:
        for source in video_sources(DavisFormat(root), "all", stride=STRIDE, max_frames=MAX_FRAMES):
            video = source.load()
            truth, first = video.require_truth(), video.first_frames()
            cache = PropagationCache()
            for keys in ANNOTATED_SETS:
                annotated = {a: truth[a].copy() for a in keys}
                result = engine.propagate(video.frames, annotated, first_frames=first, cache=cache)
                errors = [1 - jaccard(m, t) for m, t in zip(result.masks, truth, strict=True)]
                groups.append({
                    "clip": source.name, "annotated": keys, "d": list(result.disagreement),
                    "u": list(result.unsure), "error": errors,
                })  # fmt: skip
                print(f"{source.name} {keys}", file=sys.stderr, flush=True)
    return groups


def rank_correlation(x: list[float], y: list[float]) -> float:
    """Spearman's rho; 0 where either side is constant."""
    if len(set(x)) < 2 or len(set(y)) < 2:
        return 0.0
    return float(spearmanr(x, y).statistic)


def former(group: dict) -> tuple[list[float], list[bool]]:
    """The former filmstrip: unreliability, and red where its clip-stretched share is above `FORMER_RED`."""
    u = unreliability(group["d"], group["u"], group["annotated"])
    low, high = min(u), max(u)
    return u, [high > low and (v - low) / (high - low) > FORMER_RED for v in u]


def latter(group: dict) -> tuple[list[float], list[bool]]:
    """The page's filmstrip now: the expected error, red at or above `LOOK_HERE`."""
    kinds = dict.fromkeys(group["annotated"], "mask")
    scores = filmstrip_scores(group["d"], group["u"], kinds)
    return scores, [s >= LOOK_HERE for s in scores]


def report(groups: list[dict]) -> None:
    """The Markdown table of both filmstrips."""
    frames = sum(len(g["error"]) - len(g["annotated"]) for g in groups)
    print(f"{len(groups)} clip × annotated-set groups, {frames} frames not annotated\n")
    print(
        "| filmstrip | Spearman with 1 − J: mean ± std over groups | min | per clip (mean) | red frames "
        "| mean 1 − J of red / of the others | red with 1 − J ≥ 0.2 (precision) "
        "| frames with 1 − J ≥ 0.2 marked red (recall) |\n|---|---|---|---|---|---|---|---|"
    )
    for name, score in (("before", former), ("after", latter)):
        rhos, clips, red_errors, other_errors = [], {}, [], []
        for group in groups:
            scores, red = score(group)
            keep = [t for t in range(len(scores)) if t not in group["annotated"]]
            rho = rank_correlation([scores[t] for t in keep], [group["error"][t] for t in keep])
            rhos.append(rho)
            clips.setdefault(group["clip"], []).append(rho)
            red_errors += [group["error"][t] for t in keep if red[t]]
            other_errors += [group["error"][t] for t in keep if not red[t]]
        wrong = int(np.sum(np.array(red_errors + other_errors) >= 0.2))
        per_clip = ", ".join(f"{clip} {np.mean(v):.2f}" for clip, v in clips.items())
        print(
            f"| {name} | {np.mean(rhos):.3f} ± {np.std(rhos):.3f} | {np.min(rhos):.3f} | {per_clip} "
            f"| {len(red_errors)} of {frames} | {np.mean(red_errors) if red_errors else float('nan'):.3f} / "
            f"{np.mean(other_errors) if other_errors else float('nan'):.3f} "
            f"| {np.mean(np.array(red_errors) >= 0.2):.2f} "
            f"| {np.sum(np.array(red_errors) >= 0.2) / max(1, wrong):.2f} |"
        )


def main(argv: list[str]) -> None:
    cv2.setNumThreads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--fresh", action="store_true", help=f"recompute the records in {RECORDS}")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.fresh or not RECORDS.is_file():
        RECORDS.parent.mkdir(parents=True, exist_ok=True)
        RECORDS.write_text(json.dumps(collect()), encoding="utf-8")
    report(json.loads(RECORDS.read_text(encoding="utf-8")))
    command = " ".join(["python benchmarks/bench_filmstrip.py", *argv])
    print(f"\n`{command}`: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
    print(provenance_line(), flush=True)
    sys.stdout.flush()
