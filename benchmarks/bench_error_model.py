"""Per-frame propagation quality against the distance to the nearest annotated frame, one- or two-sided.

The data behind the ``gain-fit`` frame selector's error model: on the ``frames`` part's clips
(`bench_annotation_loop.py`: every 2nd of the first 40 frames, DIS flow at half size), every frame's
J&F, disagreement and unsure share after propagating from the loop's first masks (frame 0 and the
frames where an object first appears) plus one more ground-truth mask on each frame ``c`` in turn,
and plus two more on pairs of a grid; then the error model's constants fit on one half of the clips
(`frugalseg.active.objects.frame_selectors.fit_error_model`).

    FRUGALSEG_BENCH_OUT=... PYTHONPATH=. nice -n 19 python benchmarks/bench_error_model.py collect
    python benchmarks/bench_error_model.py fit --clips blackswan breakdance camel car-shadow
    FRUGALSEG_BENCH_OUT=... PYTHONPATH=. nice -n 19 python benchmarks/bench_error_model.py loop \
        --clips dog kite-surf parkour scooter-black

``collect`` writes ``$FRUGALSEG_BENCH_OUT/error-model/samples.json`` (one record per clip and
annotated set); ``fit`` prints the constants fit on ``--clips`` and how well the model ranks the other
clips' frames; ``loop`` runs the ``frames`` part's loops with constants fit on ``--clips``
(the other fold of a two-fold split).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import replace

import numpy as np
from bench_annotation_loop import DOWNSCALE, MAX_FRAMES, OUT, STRIDE, loop_part, merged_root

from frugalseg.active.objects.annotation_types import annotate_mask
from frugalseg.active.objects.engines import make_loop_engine
from frugalseg.active.objects.frame_selectors import (
    SELECTORS,
    ErrorModel,
    FittedGainSelector,
    decay_gains,
    error_features,
    expected_gains,
    fit_error_model,
    fitted_gains,
    make_selector,
)
from frugalseg.active.objects.loop import AnnotationLoop
from frugalseg.active.objects.runs import video_sources
from frugalseg.active.objects.type_policies import make_policy
from frugalseg.active.propagation import unreliability
from frugalseg.data.formats.davis import DavisFormat

SAMPLES = OUT / "error-model" / "samples.json"
GRID = (4, 8, 12, 16, 19)


def collect() -> None:
    """Every clip's per-frame quality and signs for the annotated sets (see the module docstring)."""
    fmt = DavisFormat(merged_root())
    engine = make_loop_engine("flow", downscale=DOWNSCALE)
    records = []
    start = time.perf_counter()
    for source in video_sources(fmt, "all", stride=STRIDE, max_frames=MAX_FRAMES):
        video = source.load()
        with tempfile.TemporaryDirectory() as folder:
            loop = AnnotationLoop(video, make_selector("uniform"), make_policy("mask"), engine, folder)
        truth = video.require_truth()
        n = len(video.frames)
        base = loop.initial
        extra = [(c,) for c in range(n) if c not in base]
        extra += [p for p in itertools.combinations([g for g in GRID if g < n and g not in base], 2)]
        for more in [(), *extra]:
            keys = sorted({*base, *more})
            annotated = {t: annotate_mask(truth[t], loop.costs).mask for t in keys}
            result = engine.propagate(
                video.frames, annotated, first_frames=loop.first_frames, cache=loop.cache
            )
            quality = loop._quality(result.masks)[2]
            records.append(
                {
                    "clip": video.name,
                    "annotated": keys,
                    "quality": quality,
                    "disagreement": [round(float(x), 6) for x in result.disagreement],
                    "unsure": [round(float(x), 6) for x in result.unsure],
                }
            )
        print(f"{video.name}: {len(extra) + 1} sets, {time.perf_counter() - start:.0f} s", flush=True)
        SAMPLES.parent.mkdir(parents=True, exist_ok=True)
        SAMPLES.write_text(json.dumps(records))  # after every clip, to fit on the first ones early
    print(f"{len(records)} records in {SAMPLES}")


def fit(clips: list[str]) -> None:
    """The error model fit on ``clips``; its rank correlation with the real error on the others."""
    from scipy.stats import spearmanr

    records = json.loads(SAMPLES.read_text())
    train = [r for r in records if r["clip"] in clips]
    test = [r for r in records if r["clip"] not in clips]
    model = fit_error_model(train)
    print(f"fit on {sorted({r['clip'] for r in train})}: {model}")
    rhos = []
    for r in test:
        unreliable = [t for t in range(len(r["quality"])) if t not in r["annotated"]]
        distance, sides = error_features(len(r["quality"]), r["annotated"])
        measured = 1 - (1 - np.clip(r["disagreement"], 0, 1)) * (1 - np.clip(r["unsure"], 0, 1))
        predicted = model.error(distance, sides, measured)[unreliable]
        real = 1 - np.asarray(r["quality"])[unreliable]
        if np.ptp(predicted) > 0 and np.ptp(real) > 0:
            rhos.append(spearmanr(predicted, real).statistic)
    print(
        f"held-out clips {sorted({r['clip'] for r in test})}: Spearman(model error, 1 − J&F) "
        f"{np.mean(rhos):.2f} ± {np.std(rhos):.2f} over {len(rhos)} annotated sets"
    )
    first_pick(test, model)


def first_pick(records: list[dict], model: ErrorModel) -> None:
    """Each clip's first chosen frame after its first masks, and the video J&F it gives, per selector."""
    selectors = {
        "uncertainty": lambda u, keys: np.asarray(u),
        "gain": expected_gains,
        "gain-decay": decay_gains,
        "gain-fit": lambda u, keys: fitted_gains(u, keys, model),
        "gain-fit, signs off": lambda u, keys: fitted_gains(u, keys, replace(model, signs=0.0)),
    }
    clips = sorted({r["clip"] for r in records})
    print("\n| clip | " + " | ".join([*selectors, "lookahead"]) + " |")
    print("|---|" + "---|" * (len(selectors) + 1))
    totals: dict[str, list[float]] = {name: [] for name in [*selectors, "lookahead"]}
    for clip in clips:
        mine = [r for r in records if r["clip"] == clip]
        base = min(mine, key=lambda r: len(r["annotated"]))
        keys = base["annotated"]
        after = {
            (set(r["annotated"]) - set(keys)).pop(): float(np.mean(r["quality"]))
            for r in mine
            if len(r["annotated"]) == len(keys) + 1
        }
        u = unreliability(base["disagreement"], base["unsure"], keys)
        cells = []
        for name, score in selectors.items():
            scores = np.asarray(score(u, keys), np.float64)
            candidates = sorted(after)
            c = candidates[int(np.argmax([round(float(scores[t]), 9) for t in candidates]))]
            cells.append(f"{c}: {after[c]:.3f}")
            totals[name].append(after[c])
        c = max(after, key=lambda t: (after[t], -t))
        cells.append(f"{c}: {after[c]:.3f}")
        totals["lookahead"].append(after[c])
        print(f"| {clip} (from {np.mean(base['quality']):.3f}) | " + " | ".join(cells) + " |")
    print("| **mean** | " + " | ".join(f"**{np.mean(v):.3f}**" for v in totals.values()) + " |")


def loop(clips: list[str], name: str) -> None:
    """The ``frames`` part's loops with ``gain-fit`` on constants fit on ``clips`` (as ``gain-fit-other``).

    For the other half of a two-fold split: the package's ``gain-fit`` is fit on fold a, so its loops
    on fold a are not held out; this runs the selector with constants fit on fold b instead.
    """
    model = fit_error_model([r for r in json.loads(SAMPLES.read_text()) if r["clip"] in clips])
    print(f"fit on {sorted(clips)}: {model}", flush=True)

    class Other(FittedGainSelector):
        name = "gain-fit-other"

        def __init__(self, seed: int = 0) -> None:
            super().__init__(seed, model)

    SELECTORS[Other.name] = Other
    loop_part(name, [Other.name], ["mask"], f"{Other.name}-mask")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["collect", "fit", "loop"])
    parser.add_argument("--name", default="frames-gain-fit-other", help="loop: the run's folder name")
    parser.add_argument("--clips", nargs="+", default=["blackswan", "breakdance", "camel", "car-shadow"])
    args = parser.parse_args(argv)
    if args.part == "collect":
        collect()
    elif args.part == "fit":
        fit(args.clips)
    else:
        loop(args.clips, args.name)


if __name__ == "__main__":
    main(sys.argv[1:])
