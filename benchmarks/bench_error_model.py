"""Per-frame propagation quality against the distance to the nearest annotated frame, one- or two-sided.

The data behind the ``gain-fit`` frame selector's error model: on the ``frames`` part's clips
(`bench_annotation_loop.py`: every 2nd of the first 40 frames, DIS flow at half size), every frame's
J&F, disagreement and unsure share after propagating from the loop's first masks (frame 0 and the
frames where an object first appears) plus one more ground-truth mask on each frame ``c`` in turn,
and plus two more on pairs of a grid; then the error model's constants fit on one half of the clips
(`frugalseg.active.objects.choosing.frame_selectors.fit_error_model`).

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

from frugalseg.active.objects.choosing.frame_selectors import (
    FITTED_ERROR,
    SELECTORS,
    TYPE_RESIDUALS,
    ErrorModel,
    FittedGainSelector,
    anchored_errors,
    decay_gains,
    error_features,
    expected_gains,
    fit_error_model,
    fitted_gains,
    get_selector,
    measured_shares,
)
from frugalseg.active.objects.choosing.type_policies import (
    POLICIES,
    TypePolicy,
    TypeView,
    get_policy,
    type_seconds,
)
from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.simulation.annotation_types import (
    ANNOTATION_TYPES,
    annotate_frame,
    annotate_mask,
    annotation_priors,
    frame_quality,
)
from frugalseg.active.objects.simulation.loop import AnnotationLoop
from frugalseg.active.objects.simulation.runs import video_sources
from frugalseg.active.objects.state import VideoState
from frugalseg.active.propagation import unreliability
from frugalseg.data.formats.davis import DavisFormat

SAMPLES = OUT / "error-model" / "samples.json"
RESIDUALS = OUT / "error-model"  # residuals-<clips>.json, one file per call
GRID = (4, 8, 12, 16, 19)
#: The annotated sets of ``residuals``, beyond the loop's first masks: none, and the frame ``gain-fit``
#: chooses first (15 of 0–19), so that frames are seen far from an anchor and between two.
RESIDUAL_SETS = ((), (15,))


def collect() -> None:
    """Every clip's per-frame quality and signs for the annotated sets (see the module docstring)."""
    fmt = DavisFormat(merged_root())
    engine = get_loop_engine("flow", downscale=DOWNSCALE)
    records = []
    start = time.perf_counter()
    for source in video_sources(fmt, "all", stride=STRIDE, max_frames=MAX_FRAMES):
        video = source.load()
        with tempfile.TemporaryDirectory() as folder:
            loop = AnnotationLoop(video, get_selector("uniform"), get_policy("mask"), engine, folder)
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
        # after every clip, to fit on the first ones early
        SAMPLES.write_text(json.dumps(records), encoding="utf-8")
    print(f"{len(records)} records in {SAMPLES}")


def residuals(clips: list[str]) -> None:
    """Every propagated frame's error before and after the ``clicks`` and ``box`` types, on ``clips``.

    What a clicked or boxed frame leaves of its error: the data of `TYPE_RESIDUALS`. For each clip and
    each annotated set of `RESIDUAL_SETS`, every other frame is annotated in turn with each type (the
    simulated annotator, on the propagated mask) and its ``1 − J&F`` before and after is recorded in
    ``residuals-<clips>.json`` (calls on other clips can run side by side).
    """
    out = RESIDUALS / f"residuals-{'-'.join(clips)}.json"
    fmt = DavisFormat(merged_root())
    engine = get_loop_engine("flow", downscale=DOWNSCALE)
    records = []
    start = time.perf_counter()
    for source in video_sources(fmt, "all", stride=STRIDE, max_frames=MAX_FRAMES):
        if source.name not in clips:
            continue
        video = source.load()
        with tempfile.TemporaryDirectory() as folder:
            loop = AnnotationLoop(video, get_selector("uniform"), get_policy("mask"), engine, folder)
        truth = video.require_truth()
        for more in RESIDUAL_SETS:
            keys = sorted({*loop.initial, *(c for c in more if c < len(video.frames))})
            annotated = {t: annotate_mask(truth[t], loop.costs).mask for t in keys}
            state = VideoState(video=video.name, num_frames=len(video.frames), objects={})
            state.annotated = annotated  # what the loop's annotator is told (`annotation_priors`)
            masks = engine.propagate(
                video.frames, annotated, first_frames=loop.first_frames, cache=loop.cache
            ).masks
            for t in range(len(video.frames)):
                if t in annotated:
                    continue
                record = {"clip": video.name, "annotated": keys, "frame": t}
                for kind in ("mask", "clicks", "box"):
                    mask = (
                        masks[t]
                        if kind == "mask"
                        else annotate_frame(
                            kind,
                            video.frames[t],
                            masks[t],
                            truth[t],
                            loop.costs,
                            known=annotation_priors(kind, state, t, video.frames, masks[t], truth[t]),
                        ).mask
                    )
                    j, f = frame_quality(mask, truth[t], loop.objects)
                    record["before" if kind == "mask" else kind] = round(1 - (j + f) / 2, 6)
                records.append(record)
        print(f"{video.name}: {time.perf_counter() - start:.0f} s", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(records), encoding="utf-8")
    print(f"{len(records)} frames in {out}")


def fit_residuals(clips: list[str]) -> None:
    """The share of a frame's error each type leaves, fit on ``clips``; the means per clip.

    A frame's error after a type is taken as a share of its error before, with multiplicative noise
    (errors range over two orders of magnitude): the share is the geometric mean of after / before.
    """
    records = [
        r
        for path in sorted(RESIDUALS.glob("residuals-*.json"))
        for r in json.loads(path.read_text(encoding="utf-8"))
    ]
    print("| clip | frames | 1 − J&F before | after clicks | after a box |\n|---|---|---|---|---|")
    for clip in sorted({r["clip"] for r in records}):
        mine = [r for r in records if r["clip"] == clip]
        means = [np.mean([r[key] for r in mine]) for key in ("before", "clicks", "box")]
        print(f"| {clip} | {len(mine)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    for group, name in ((clips, "fit"), (sorted({r["clip"] for r in records} - set(clips)), "held out")):
        mine = [r for r in records if r["clip"] in group]
        if not mine:
            continue
        before = np.asarray([r["before"] for r in mine])
        for kind in ("clicks", "box"):
            after = np.asarray([r[kind] for r in mine])
            ratio = np.maximum(after, 1e-4) / np.maximum(before, 1e-4)
            print(
                f"{name} {sorted(group)}: {kind} leave {np.exp(np.log(ratio).mean()):.3f} of the error "
                f"(geometric mean of the {len(mine)} frames' after / before; median {np.median(ratio):.3f}, "
                f"least squares through 0 {float(before @ after / (before @ before)):.3f})"
            )


def fit(clips: list[str]) -> None:
    """The error model fit on ``clips``; its rank correlation with the real error on the others."""
    from scipy.stats import spearmanr

    records = json.loads(SAMPLES.read_text(encoding="utf-8"))
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
    model = fit_error_model(
        [r for r in json.loads(SAMPLES.read_text(encoding="utf-8")) if r["clip"] in clips]
    )
    print(f"fit on {sorted(clips)}: {model}", flush=True)

    class Other(FittedGainSelector):
        name = "gain-fit-other"

        def __init__(self, seed: int = 0) -> None:
            super().__init__(seed, model)

    SELECTORS[Other.name] = Other
    loop_part(name, [Other.name], ["mask"], f"{Other.name}-mask")


class AllowanceTypePolicy(TypePolicy):
    """The cheapest type expected to leave the frame within ``allowance`` of error (an experiment).

    The frame's expected error is the fitted error model's with every annotated frame counted with its
    type (`anchored_errors`); a type leaves `TYPE_RESIDUALS` of it. Clicks or a box where what they
    leave is at most ``allowance``, else a mask: masks where the frame must end near exact, cheap tools
    where little is left to mend. Weight-free. Not in the package: it was no faster than masks alone
    (`benchmarks/results/annotation_loop.md`).
    """

    name = "gain-fit"

    def __init__(self, seed: int = 0, allowance: float = 0.05) -> None:
        super().__init__(seed)
        self.allowance = allowance

    def choose(self, view: TypeView) -> str:
        """The cheapest type whose expected error left on the frame is within the allowance."""
        context = view.context
        assert context is not None and context.unreliability, "the loop gives the video's unreliability"
        measured = measured_shares(context.unreliability, context.kinds)
        seconds = type_seconds(len(context.objects))

        def left(kind: str) -> float:
            kinds = {**context.kinds, view.frame: kind}
            return float(anchored_errors(measured, kinds, FITTED_ERROR, TYPE_RESIDUALS)[view.frame])

        fitting = [kind for kind in ANNOTATION_TYPES if left(kind) <= self.allowance]
        return min(fitting, key=lambda kind: (seconds[kind], kind))


def types(clips: list[str], allowances: list[float], name: str) -> None:
    """``gain-fit`` frames on ``clips``: masks only, and `AllowanceTypePolicy` at each allowance.

    Each allowance runs as a policy of its own (``gain-fit-<allowance>``, registered in the script only),
    so that one call compares them on the same frames and engine.
    """
    kinds = ["mask"]
    for allowance in allowances:

        class Allowed(AllowanceTypePolicy):
            name = f"gain-fit-{allowance:g}"

            def __init__(self, seed: int = 0, allowance: float = allowance) -> None:
                super().__init__(seed, allowance)

        POLICIES[Allowed.name] = Allowed
        kinds.append(Allowed.name)
    loop_part(name, ["gain-fit"], kinds, "gain-fit-mask", clips)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["collect", "residuals", "fit-residuals", "fit", "loop", "types"])
    parser.add_argument("--allowances", nargs="+", type=float, default=[0.05], help="types: the allowances")
    parser.add_argument("--name", default="frames-gain-fit-other", help="loop: the run's folder name")
    parser.add_argument("--clips", nargs="+", default=["blackswan", "breakdance", "camel", "car-shadow"])
    args = parser.parse_args(argv)
    if args.part == "collect":
        collect()
    elif args.part == "residuals":
        residuals(args.clips)
    elif args.part == "fit-residuals":
        fit_residuals(args.clips)
    elif args.part == "fit":
        fit(args.clips)
    elif args.part == "types":
        types(args.clips, args.allowances, args.name)
    else:
        loop(args.clips, args.name)


if __name__ == "__main__":
    main(sys.argv[1:])
