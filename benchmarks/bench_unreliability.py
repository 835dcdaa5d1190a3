"""Which per-frame unreliability ranks the loop's frames by their real error (issue 38, item 3).

    nice -n 19 .venv/bin/python benchmarks/bench_unreliability.py [--fresh]

On the 8 DAVIS clips of ../shared/data (davis_dev + davis_hard), every 2nd of the first 40 frames
(20 a clip) with the loop's flow engine at half resolution (as `bench_annotation_loop.py frames`),
each annotated set of `anchor_sets` is propagated from its ground-truth masks
(`propagate_annotations`). For every unannotated frame the script records the quantities
`_fuse_sides` has (the sides' labels and weights, ``lost``, ``area``, the fused confidence, the
distance to the nearest annotated frame) and 1 − J of the propagated mask. Each candidate
unreliability (`CANDIDATES`: the former d + u, shares in 0…1 from the sides, coverage, combinations,
and the package's `frugalseg.active.propagation.unreliability`, coverage at its `COVERAGE_FRAMES`)
is scored by Spearman's correlation with 1 − J within each clip × annotated set (mean ± std and
min over the groups, the worst clip's mean; a constant candidate counts 0), pooled over all
frames, and by the error of the frame it would pick (the uncertainty selector's argmax) over the
largest error of its group.
The records are kept in /work/experiments/active/bench/unreliability.json (``--fresh`` recomputes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder
from scipy.stats import spearmanr

from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.simulation.runs import video_sources
from frugalseg.active.propagation import COVERAGE_FRAMES, PropagationCache, nearest_annotated
from frugalseg.autolabel.fusion import fuse_labels
from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.formats.davis import DavisFormat

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROOTS = [DATA / "davis_dev", DATA / "davis_hard"]
RECORDS = Path("/work/experiments/active/bench/unreliability.json")
STRIDE, MAX_FRAMES, DOWNSCALE = 2, 40, 2
FIXED_SETS = [[0], [0, 10], [0, 19], [0, 7, 14]]
RANDOM_SEEDS = [0, 1, 2]

Record = dict[str, float]


def anchor_sets(n: int) -> list[list[int]]:
    """The fixed sets, then per seed frame 0 and 1–3 other frames drawn at random."""
    drawn = []
    for seed in RANDOM_SEEDS:
        rng = np.random.default_rng(seed)
        others = rng.choice(np.arange(1, n), size=int(rng.integers(1, 4)), replace=False)
        drawn.append(sorted({0, *map(int, others)}))
    return FIXED_SETS + drawn


def frame_record(sides: list, mask: np.ndarray, truth: np.ndarray, n: int) -> Record:
    """Frame quantities from its sides (label, weight, confidence) as `_fuse_sides` sees them, and 1 − J.

    The pixels of the object area or lost by a side (``wide``) split by what the sides say, as shares
    of it (at least 1 % of the frame, as `object_share`): both label and agree / disagree, only the
    near (heavier) side labels, only the far one, none; the distances (frames) to the near and far
    anchor (far 0 with one side); the fused confidence's doubt; 1 − J.
    """
    sides = sorted(sides, key=lambda side: -side[1])
    objects = [(label != 0) & (label != IGNORE_INDEX) for label, _, _ in sides]
    area = np.logical_or.reduce(objects) | (mask != 0)
    valid = [label != IGNORE_INDEX for label, _, _ in sides]
    wide = area | ~np.logical_and.reduce(valid)
    near, far = valid[0], valid[1] if len(sides) == 2 else np.zeros_like(wide)
    same = sides[0][0] == sides[-1][0]
    _, confidence = fuse_labels(sides)
    size = max(int(np.count_nonzero(wide)), wide.size // 100)
    ours, theirs = mask == 1, truth == 1
    joint = np.count_nonzero(ours | theirs)
    pixels = {
        "agree": near & far & same,
        "differ": near & far & ~same,
        "near_only": near & ~far,
        "far_only": ~near & far,
        "none": ~near & ~far,
    }
    return {
        **{name: np.count_nonzero(flags & wide) / size for name, flags in pixels.items()},
        "near": 1 / sides[0][1],
        "far": 1 / sides[1][1] if len(sides) == 2 else 0.0,
        "n": float(n),
        "doubt": float((1 - confidence)[wide].sum()) / size,
        "error": 0.0 if joint == 0 else 1 - np.count_nonzero(ours & theirs) / joint,
    }


def collect() -> list[dict]:
    """One group (clip, annotated set, its frames' records) per clip × annotated set."""
    engine = get_loop_engine("flow", downscale=DOWNSCALE)
    groups = []
    for root in ROOTS:
        for source in video_sources(DavisFormat(root), "all", stride=STRIDE, max_frames=MAX_FRAMES):
            video = source.load()
            truth, n, first = video.require_truth(), len(video.frames), video.first_frames()
            cache = PropagationCache()
            for keys in anchor_sets(n):
                annotated = {a: truth[a].copy() for a in keys}
                result = engine.propagate(video.frames, annotated, first_frames=first, cache=cache)
                left_of, right_of = nearest_annotated(keys, n)
                records = []
                for t in range(n):
                    if t in annotated:
                        continue
                    near = [a for a in (left_of[t], right_of[t]) if a is not None]
                    sides = []
                    for a in near:  # the engine's results propagate_annotations left in the cache
                        label, conf = cache.get(engine.anchor_engine, video.frames, a, annotated[a], [t])[t]
                        sides.append((label, 1.0 / abs(t - a), conf))
                    record = frame_record(sides, result.masks[t], truth[t], n)
                    record |= {"d": result.disagreement[t], "u": result.unsure[t]}
                    records.append(record)
                groups.append({"clip": source.name, "annotated": keys, "records": records})
                print(f"{source.name} {keys}: {len(records)} frames", file=sys.stderr, flush=True)
    return groups


def coverage(r: Record) -> float:
    """How far the nearest annotated frame is, dist / (dist + COVERAGE_FRAMES), in 0…1 (no video length)."""
    return r["near"] / (r["near"] + COVERAGE_FRAMES)


def union(r: Record) -> float:
    """(i) The share where the two sides disagree or one is lost (one side: where it is lost)."""
    return r["differ"] + r["near_only"] + r["far_only"] + r["none"] if r["far"] else r["none"]


def weighted_union(r: Record) -> float:
    """(i') As (i), a disagreement weighed by 2·w_far/(w_near + w_far), a lost side by its weight share."""
    if not r["far"]:
        return r["none"]
    near, far = 1 / r["near"], 1 / r["far"]
    return (
        2 * far / (near + far) * r["differ"]
        + far / (near + far) * r["near_only"]
        + near / (near + far) * r["far_only"]
        + r["none"]
    )


def expected_error(r: Record) -> float:
    """The expected wrong share if a side carried x frames is wrong with p = x / (x + COVERAGE_FRAMES).

    Where the sides agree both must be wrong, where they disagree the near side (the fused one) is the
    wrong one in proportion, where one side is lost the other decides, where both are lost it is wrong.
    """
    near = r["near"] / (r["near"] + COVERAGE_FRAMES)
    far = r["far"] / (r["far"] + COVERAGE_FRAMES)
    loser = near * (1 - far) / max(near * (1 - far) + far * (1 - near), 1e-9)
    return (
        near * far * r["agree"]
        + loser * r["differ"]
        + near * r["near_only"]
        + far * r["far_only"]
        + r["none"]
    )


def or_coverage(base: Callable[[Record], float]) -> Callable[[Record], float]:
    """(iv) 1 − (1 − base)(1 − coverage): unreliable from the sides' evidence or from the distance."""
    return lambda r: 1 - (1 - base(r)) * (1 - coverage(r))


def doubt(r: Record) -> float:
    """(v) The mean of 1 − the fused confidence (`fuse_labels`) over the area ∪ lost."""
    return r["doubt"]


def noisy_or(r: Record) -> float:
    """(ii) 1 − (1 − d)(1 − u)."""
    return 1 - (1 - r["d"]) * (1 - r["u"])


CANDIDATES: dict[str, Callable[[Record], float]] = {
    "former: d + u (not a share)": lambda r: r["d"] + r["u"],
    "d alone": lambda r: r["d"],
    "u alone": lambda r: r["u"],
    "(i) differ ∪ lost": union,
    "(i') balance·differ + weight share of the lost sides": weighted_union,
    "(ii) 1 − (1 − d)(1 − u)": noisy_or,
    "(iii) min(1, d + u)": lambda r: min(1.0, r["d"] + r["u"]),
    "(v) doubt: mean 1 − fused confidence": doubt,
    f"coverage alone: dist / (dist + {COVERAGE_FRAMES})": coverage,
    "(iv) 1 − (1 − (ii))(1 − dist / n)": lambda r: 1 - (1 - noisy_or(r)) * (1 - r["near"] / r["n"]),
    "(iv) 1 − (1 − (v))(1 − dist / n)": lambda r: 1 - (1 - doubt(r)) * (1 - r["near"] / r["n"]),
    "**(iv) (ii) ⊕ coverage: the package's `unreliability`**": or_coverage(noisy_or),
    "(iv) (i') ⊕ coverage": or_coverage(weighted_union),
    "(iv) (v) ⊕ coverage": or_coverage(doubt),
    "(v) / 2 + coverage / 2": lambda r: (doubt(r) + coverage(r)) / 2,
    f"expected wrong share, sides wrong with p = x / (x + {COVERAGE_FRAMES})": expected_error,
}


def rank_correlation(x: list[float], y: list[float]) -> float:
    """Spearman's rho; 0 where either side is constant."""
    if len(set(x)) < 2 or len(set(y)) < 2:
        return 0.0
    return float(spearmanr(x, y).statistic)


def report(groups: list[dict]) -> None:
    """The Markdown table: each candidate's correlation with 1 − J and the error of the frame it picks."""
    errors = [r["error"] for g in groups for r in g["records"]]
    print(
        f"{len(groups)} clip × annotated-set groups, {len(errors)} unannotated frames, "
        f"mean 1 − J {np.mean(errors):.3f}\n"
    )
    print(
        "| candidate | Spearman with 1 − J: mean ± std over groups | min | worst clip's mean | pooled "
        "| picked frame's 1 − J / the largest |\n|---|---|---|---|---|---|"
    )
    for name, candidate in CANDIDATES.items():
        rhos, picks, clips = [], [], {}
        for group in groups:
            scores = [candidate(r) for r in group["records"]]
            found = [r["error"] for r in group["records"]]
            rhos.append(rank_correlation(scores, found))
            clips.setdefault(group["clip"], []).append(rhos[-1])
            picks.append(1.0 if max(found) == 0 else found[int(np.argmax(scores))] / max(found))
        pooled = rank_correlation([candidate(r) for g in groups for r in g["records"]], errors)
        worst_clip = min(np.mean(values) for values in clips.values())
        print(
            f"| {name} | {np.mean(rhos):.3f} ± {np.std(rhos):.3f} | {np.min(rhos):.3f} | {worst_clip:.3f} "
            f"| {pooled:.3f} | {np.mean(picks):.3f} |"
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
    command = " ".join(["python benchmarks/bench_unreliability.py", *argv])
    print(f"\n`{command}`: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
    print(provenance_line(), flush=True)
    sys.stdout.flush()
