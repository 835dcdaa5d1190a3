"""The annotation loop of paper 002 on the 8 DAVIS clips of ../shared/data (davis_dev + davis_hard).

Parts (one per run; `make bench` runs `engines`, the quick one):

    python benchmarks/bench_annotation_loop.py anchors     mean J of frames 1…19 from anchors {0} and {0, 20}
    python benchmarks/bench_annotation_loop.py frames [--selectors S,… --name DIR]   J&F vs hours, masks only
    python benchmarks/bench_annotation_loop.py types --frames SELECTOR [--type-policies T,…]   mask / clicks /
        box / oracle type policies with one frame selector
    python benchmarks/bench_annotation_loop.py iteration   one iteration on a 50-frame 854×480 video, by stage
    python benchmarks/bench_annotation_loop.py person-clicks   a person's clicks (no ground truth) → masks
    python benchmarks/bench_annotation_loop.py policy-train    the learned type policy, one per fold of clips
    python benchmarks/bench_annotation_loop.py policy-loop --fold K --types T,…   oracle frames, types T
    python benchmarks/bench_annotation_loop.py policy-report   both folds' loops as one curve per strategy
    python benchmarks/bench_annotation_loop.py qnet-train [--size 112 --epochs 10 --lr 0.01]   QNet per fold
    python benchmarks/bench_annotation_loop.py qnet-loops    diversity on each fold's held-out QNet
    python benchmarks/bench_annotation_loop.py engines       seconds per propagated frame of each loop engine

The loop parts use every 2nd frame of the first 40 of each clip (20 frames per clip, 160 in all;
drawing every one of them takes 3.56 h) under a budget of 0.8 h, with DIS flow at half resolution,
to fit the CPU; J&F is scored at full resolution on those frames. ``random`` (5 seeds) runs as a
part of its own so that each part stays under 15 minutes.
Results go to /work/experiments/active/bench/<part> (the loop folders; a rerun resumes; the
environment variable FRUGALSEG_BENCH_OUT names another folder for bench/) and are printed as
Markdown. ``person-clicks`` reads the masks the ``frames`` part left (uniform-mask).

The policy parts split the 8 clips into two folds of 4 (`FOLDS`): the policy of fold K is trained
on the samples of the other fold's clips only (the loop states the ``frames`` part left:
uncertainty-, random- (seed 0) and uniform-mask, both types tried on every frame they left
unannotated; cached in /work/experiments/active/policy/samples_<fold>.npz), and ``policy-loop
--fold K --types T`` runs the loop on fold K's clips with the oracle frame selector and the type
policies T (default mask,clicks,oracle,learned) on every 2nd of the first 20 frames of each clip
(10 a clip, to fit the busy CPU) under the same 0.8 h for the 8 clips; ``policy-report`` merges
both folds into one curve per strategy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.active.objects.choosing.frame_selectors import SelectionView, get_selector
from frugalseg.active.objects.choosing.type_policies import FEATURES, get_policy
from frugalseg.active.objects.engines import get_loop_engine
from frugalseg.active.objects.simulation.annotation_types import (
    annotate_clicks,
    annotate_mask,
    annotation_priors,
)
from frugalseg.active.objects.simulation.loop import TARGET_JF, AnnotationLoop
from frugalseg.active.objects.simulation.runs import video_sources
from frugalseg.active.objects.simulation.simulate import (
    SimulationPlan,
    Strategy,
    simulate,
    strategies,
    summarise,
)
from frugalseg.active.objects.simulation.simulated_annotator import corrective_click
from frugalseg.active.objects.simulation.training_samples import (
    QualitySamples,
    run_quality_samples,
    run_samples,
)
from frugalseg.active.objects.state import VideoState, load_history
from frugalseg.active.objects.tools.grabcut import (
    GIVEN_CLICK_REACH,
    click_radius,
    grabcut_clicks,
    local_grabcut_clicks,
    paint_clicks,
)
from frugalseg.active.propagation import PropagationCache, propagate_annotations, unreliability
from frugalseg.autolabel.flow_propagate import FlowPropagator
from frugalseg.data.formats.davis import DavisFormat

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROOTS = [DATA / "davis_dev", DATA / "davis_hard"]
OUT = Path(os.environ.get("FRUGALSEG_BENCH_OUT", "/work/experiments/active/bench"))
STRIDE, MAX_FRAMES, DOWNSCALE = 2, 40, 2
BUDGET_HOURS = 0.8
POLICY = OUT.parent / "policy"
FOLDS = {
    "a": ["blackswan", "breakdance", "camel", "car-shadow"],
    "b": ["dog", "kite-surf", "parkour", "scooter-black"],
}
SAMPLE_LOOPS = ["uncertainty-mask/seed0", "random-mask/seed0", "uniform-mask/seed0"]
POLICY_TYPES = ["mask", "clicks", "oracle", "learned"]
POLICY_MAX_FRAMES = 20  # the policy loops: every 2nd of the first 20 frames (10 a clip), to fit the busy CPU


def merged_root(clips: list[str] | None = None, name: str = "davis8") -> Path:
    """One DAVIS tree of the 8 clips or of ``clips`` (symbolic links), for one simulate call on them all."""
    root = OUT / name
    for sub in ("JPEGImages/480p", "Annotations/480p"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for source in ROOTS:
            for seq in sorted((source / sub).iterdir()):
                if clips is not None and seq.name not in clips:
                    continue
                link = root / sub / seq.name
                if not link.exists():
                    link.symlink_to(seq)
    return root


def j(mask: np.ndarray, truth: np.ndarray) -> float:
    a, b = mask == 1, truth == 1
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def anchors() -> None:
    fmt = DavisFormat(merged_root())
    engine = FlowPropagator()
    print("| clip | anchors {0} | anchors {0, 20} |\n|---|---|---|")
    rows = []
    for source in video_sources(fmt, "all", max_frames=21):
        video = source.load()
        truth = [(t > 0).astype(np.uint8) for t in video.truth]
        cache = PropagationCache()
        one = propagate_annotations(video.frames, {0: truth[0]}, engine, cache=cache)
        two = propagate_annotations(video.frames, {0: truth[0], 20: truth[20]}, engine, cache=cache)
        row = [np.mean([j(r.masks[t], truth[t]) for t in range(1, 20)]) for r in (one, two)]
        rows.append(row)
        print(f"| {source.name} | {row[0]:.3f} | {row[1]:.3f} |", flush=True)
    mean = np.mean(rows, 0)
    print(f"| **mean of {len(rows)}** | **{mean[0]:.3f}** | **{mean[1]:.3f}** |")


def report(curves: dict, baseline: str | None) -> None:
    base = curves["strategies"].get(baseline, {}).get("hours_to_target") if baseline else None
    print(
        f"| strategy | hours to J&F {TARGET_JF} | speed-up over {baseline} "
        "| J&F at 0.25 / 0.5 / 1.0 h | final J&F (hours) |"
    )
    print("|---|---|---|---|---|")
    for name, curve in curves["strategies"].items():
        hours, jf = curve["mean"]["hours"], curve["mean"]["jf"]

        def at(h: float, hours: list[float] = hours, jf: list[float] = jf) -> str:
            index = int(np.searchsorted(hours, h, side="right")) - 1
            return "–" if index < 0 else f"{jf[index]:.3f}"

        reach = curve["hours_to_target"]
        speed = f"{base / reach:.2f}×" if reach and base else "–"
        reached = "not reached" if reach is None else f"{reach:.2f}"
        print(
            f"| {name} | {reached} | {speed} | {at(0.25)} / {at(0.5)} / {at(1.0)} | "
            f"{curve['final_jf']:.3f} ({curve['final_hours']:.2f} h) |"
        )


def loop_part(
    name: str, frames: list[str], types: list[str], baseline: str, clips: list[str] | None = None
) -> None:
    """The loops of ``frames`` × ``types`` on the 8 clips, or on ``clips`` with their share of the budget."""
    if clips is None:
        fmt, budget = DavisFormat(merged_root()), BUDGET_HOURS
    else:
        fmt, budget = DavisFormat(merged_root(clips, "-".join(sorted(clips)))), BUDGET_HOURS * len(clips) / 8
    start = time.perf_counter()
    plan = SimulationPlan("all", budget, frames, types, seeds=5, stride=STRIDE, max_frames=MAX_FRAMES)
    curves = simulate(
        fmt, OUT / name, plan, engine=get_loop_engine("flow", downscale=DOWNSCALE), progress=False
    )
    print(f"{name}: {time.perf_counter() - start:.0f} s; curves in {OUT / name}/curves.json\n")
    report(curves, baseline)


def iteration() -> None:
    """One iteration on blackswan (50 frames, 854×480) at full resolution, split by stage."""
    fmt = DavisFormat(merged_root())
    source = [s for s in video_sources(fmt, "all") if s.name == "blackswan"][0]
    video = source.load()
    engine = get_loop_engine("flow")
    with tempfile.TemporaryDirectory() as folder:
        loop = AnnotationLoop(video, get_selector("uniform"), get_policy("mask"), engine, folder)
        stages: dict[str, float] = {}
        t0 = time.perf_counter()
        loop.step()  # frame 0: propagation to all 49 other frames
        stages["first iteration (cold: propagate frame 0 to 49 frames, score, save)"] = (
            time.perf_counter() - t0
        )
        loop.step()  # frame 49
        state = loop.state
        view = SelectionView(
            key=video.name,
            iteration=2,
            num_frames=50,
            annotated=set(state.annotated),
            frames=video.frames,
            masks=state.masks,
            quality=state.quality,
            unreliability=unreliability(state.disagreement, state.unsure, state.annotated),
        )
        for selector in ("random", "uniform", "oracle", "uncertainty", "diversity"):
            t0 = time.perf_counter()
            frame = get_selector(selector).select(view)
            stages[f"selection: {selector}"] = time.perf_counter() - t0
        frame = 25
        t0 = time.perf_counter()
        annotate_mask(video.truth[frame])
        stages["annotation: mask (simulated)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        current, truth = state.masks[frame], video.truth[frame]
        known = annotation_priors("clicks", state, frame, video.frames, current, truth)
        result = annotate_clicks(video.frames[frame], current, truth, known=known)
        stages[f"annotation: clicks ({sum(result.clicks.values())} clicks → starcut, the loop's)"] = (
            time.perf_counter() - t0
        )
        annotated = {**state.annotated, frame: result.mask}
        t0 = time.perf_counter()
        engine.propagate(video.frames, annotated, first_frames=loop.first_frames, cache=loop.cache)
        stages["propagation: new anchor 25 between 0 and 49 (warm cache: 2 × 24 frames)"] = (
            time.perf_counter() - t0
        )
        state.annotated = annotated
        t0 = time.perf_counter()
        loop._propagate(state)
        loop._evaluate(state)
        stages["scoring: J&F of the 50 frames (changed ones only)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        state.save(folder)
        stages["saving the state (JSON + 50 PNG)"] = time.perf_counter() - t0
    print("| stage | seconds |\n|---|---|")
    for stage, seconds in stages.items():
        print(f"| {stage} | {seconds:.3f} |")


def person_clicks(clicks: int = 3) -> None:
    """A person's clicks turned into masks with no ground truth to choose, on the masks of §2's loop.

    On every frame the uniform-mask loop left unannotated (its final masks, 20 frames a clip),
    ``clicks`` corrective clicks are placed as a person would place them on the mask they see: each
    at the centre of the largest error region left after the previous clicks' disks. J of the
    object before and after each click-to-mask model.
    """
    fmt = DavisFormat(merged_root())
    runs = OUT / "frames" / "runs" / "uniform-mask" / "seed0"
    models = {
        "current mask (no click)": None,
        "click disks painted in": "disks",
        "GrabCut over the whole object (the simulated annotator's, unchecked)": "whole",
        f"GrabCut within {GIVEN_CLICK_REACH} click radii of the clicks (annotate add)": "local",
    }
    scores: dict[str, list[float]] = {name: [] for name in models}
    start = time.perf_counter()
    for source in video_sources(fmt, "all", stride=STRIDE, max_frames=MAX_FRAMES):
        state = VideoState.load(runs / source.name)[0]
        for t, index in enumerate(source.indices):
            if t in state.annotated:
                continue
            frame = cv2.cvtColor(cv2.imread(str(source.frame_paths[index])), cv2.COLOR_BGR2RGB)
            truth = DavisFormat.read_mask(source.mask_paths[index]) == 1
            current = state.masks[t] == 1
            radius = click_radius(truth.shape)
            made: list = []
            seen = current
            for _ in range(clicks):
                click = corrective_click(seen, truth)
                if click is None:
                    break
                made.append(click)
                seen = paint_clicks(current, made, radius)
            if not made:
                continue
            for name, model in models.items():
                if model is None:
                    found = current
                elif model == "disks":
                    found = paint_clicks(current, made, radius)
                elif model == "whole":
                    found = grabcut_clicks(frame, current, made, radius=radius)
                else:
                    found = local_grabcut_clicks(
                        frame, current, made, radius=radius, reach=GIVEN_CLICK_REACH * radius
                    )
                scores[name].append(j(found.astype(np.uint8), truth.astype(np.uint8)))
    before = np.asarray(scores["current mask (no click)"])
    count = len(before)
    print(f"{clicks} clicks on {count} frames with errors; {time.perf_counter() - start:.0f} s\n")
    print("| click-to-mask model | mean J | frames made better / worse |\n|---|---|---|")
    for name, values in scores.items():
        after = np.asarray(values)
        better, worse = int((after > before + 1e-9).sum()), int((after < before - 1e-9).sum())
        print(f"| {name} | {after.mean():.3f} | {better} / {worse} |")


def fold_samples(fold: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and gains of fold ``fold``'s clips from the ``frames`` part's loops (cached)."""
    path = POLICY / f"samples_{fold}.npz"
    if not path.is_file():
        POLICY.mkdir(parents=True, exist_ok=True)
        x, y, names = run_samples(OUT / "frames", FOLDS[fold], loops=SAMPLE_LOOPS)
        np.savez(path, features=x, gains=y, videos=np.asarray(names))
    data = np.load(path)
    return data["features"], data["gains"]


def policy_train() -> None:
    """Train one policy per fold on the other fold's samples; how it does on the held-out samples."""
    from frugalseg.active.objects.choosing.type_policies import type_seconds
    from frugalseg.active.objects.simulation.annotation_types import ANNOTATION_TYPES
    from frugalseg.lightning_modules.type_policy import fit_type_gain
    from frugalseg.zoo import save_type_gain

    samples = {fold: fold_samples(fold) for fold in FOLDS}
    print(
        "| policy for fold | trained on (samples) | held out (samples) "
        "| held-out MAE of the gain (mask / clicks) | held-out choice = oracle choice | oracle picks clicks |"
    )
    print("|---|---|---|---|---|---|")
    for fold in FOLDS:
        (other,) = [f for f in FOLDS if f != fold]
        x, y = samples[other]
        start = time.perf_counter()
        net = fit_type_gain(x, y, epochs=300, seed=0)
        seconds = time.perf_counter() - start
        save_type_gain(net, POLICY / f"policy-{fold}.safetensors", list(ANNOTATION_TYPES), list(FEATURES))
        tx, ty = samples[fold]
        import torch

        with torch.no_grad():
            predicted = net(torch.from_numpy(tx)).numpy()
        objects = tx[:, FEATURES.index("objects")]
        cost = np.asarray([[type_seconds(int(n))[k] for k in ANNOTATION_TYPES] for n in objects])
        chosen, best = (predicted / cost).argmax(1), (ty / cost).argmax(1)
        mae = np.abs(predicted - ty).mean(0)
        print(
            f"| {fold} ({', '.join(FOLDS[fold])}) | {other} ({len(x)}) | {len(tx)} "
            f"| {mae[0]:.3f} / {mae[1]:.3f} | {(chosen == best).mean():.2f} | {(best == 1).mean():.2f} "
            f"| ({seconds:.0f} s to train)"
        )


def policy_loop(fold: str, types: list[str]) -> None:
    """The loop on fold ``fold``'s clips, oracle frames, ``types`` (folder ``policy-<fold>-<types>``)."""
    start = time.perf_counter()
    out = OUT / f"policy-{fold}-{'-'.join(types)}"
    plan = SimulationPlan(
        "all",
        BUDGET_HOURS * len(FOLDS[fold]) / 8,
        ["oracle"],
        types,
        seeds=1,
        stride=STRIDE,
        max_frames=POLICY_MAX_FRAMES,
        policy=POLICY / f"policy-{fold}.safetensors" if "learned" in types else None,
    )
    engine = get_loop_engine("flow", downscale=DOWNSCALE)
    curves = simulate(
        DavisFormat(merged_root(FOLDS[fold], f"davis-fold-{fold}")), out, plan, engine=engine, progress=False
    )
    print(f"fold {fold}: {time.perf_counter() - start:.0f} s; curves in {out}/curves.json\n")
    report(curves, "oracle-mask")


def policy_report() -> None:
    """Both folds' loops as one curve per strategy (the 8 clips in lockstep), and the learned choices."""
    histories: dict[Strategy, list] = {s: [] for s in strategies(["oracle"], POLICY_TYPES, 1)}
    for fold, clips in FOLDS.items():
        for strategy in histories:
            for clip in clips:
                (folder,) = OUT.glob(f"policy-{fold}-*/runs/{strategy.name}/seed0/{clip}")
                histories[strategy].append(load_history(folder))
    report(summarise(histories, BUDGET_HOURS), "oracle-mask")
    for strategy, videos in histories.items():
        kinds = [r.kind for history, _ in videos for r in history[1:]]
        masks, clicks = kinds.count("mask"), kinds.count("clicks")
        print(f"{strategy.name}: after the first masks, {masks} masks and {clicks} clicks")


def engines(frames_used: int) -> None:
    """Seconds per propagated frame of each loop engine on blackswan (854×480), first and last annotated.

    SAM 2 and STM run with random weights: the work per frame is that of real weights.
    """
    import torch

    from frugalseg.active.objects.engines import SAM2LoopEngine, STMLoopEngine
    from frugalseg.autolabel.sam2_loading import SAM2Options

    torch.manual_seed(0)
    fmt = DavisFormat(merged_root())
    source = [s for s in video_sources(fmt, "all", max_frames=frames_used) if s.name == "blackswan"][0]
    video = source.load()
    annotated = {0: video.truth[0], frames_used - 1: video.truth[frames_used - 1]}
    built = {
        "flow (DIS medium, full size)": lambda: get_loop_engine("flow"),
        "flow (DIS medium, half size: the benchmark's)": lambda: get_loop_engine("flow", downscale=2),
        "sam2 (hiera_t, 1024)": lambda: SAM2LoopEngine(SAM2Options(random_weights=True, device="cpu")),
        "sam2 (hiera_t, 512)": lambda: SAM2LoopEngine(
            SAM2Options(random_weights=True, image_size=512, device="cpu")
        ),
        "stm_r50": lambda: STMLoopEngine("stm_r50", random_weights=True, device="cpu"),
        "stm_r18": lambda: STMLoopEngine("stm_r18", random_weights=True, device="cpu"),
    }
    print(f"torch threads {torch.get_num_threads()}; {frames_used} frames, {frames_used - 2} propagated\n")
    print(
        "| engine | seconds per propagated frame | one iteration on a 50-frame video (est.) |\n|---|---|---|"
    )
    for name, build in built.items():
        engine = build()
        start = time.perf_counter()
        engine.propagate(video.frames, annotated, first_frames={1: 0}, cache=engine.new_cache())
        per_frame = (time.perf_counter() - start) / (frames_used - 2)
        print(f"| {name} | {per_frame:.2f} | {48 * per_frame:.0f} s |", flush=True)


QNET = OUT.parent / "qnet"


def qnet_samples(size: int) -> QualitySamples:
    """QNet's samples of every iteration of every ``frames``-part loop, at ``size`` px (cached)."""
    path = QNET / f"samples_{size}.npz"
    if not path.is_file():
        start = time.perf_counter()
        engine = get_loop_engine("flow", downscale=DOWNSCALE)
        run_quality_samples(OUT / "frames", engine=engine, input_size=size).save(path)
        print(f"samples: {time.perf_counter() - start:.0f} s")
    return QualitySamples.load(path)


def qnet_train(size: int, epochs: int, lr: float) -> None:
    """One QNet per fold on the other fold's samples; bin accuracy and J error on the held-out fold."""
    from frugalseg.lightning_modules.quality_net import evaluate_quality_net, fit_quality_net
    from frugalseg.zoo import save_quality_net

    QNET.mkdir(parents=True, exist_ok=True)
    samples = qnet_samples(size)
    print(
        f"{len(samples)} samples at {size}x{size} (mean J {samples.j.mean():.3f}); {epochs} epochs, lr {lr}\n"
    )
    print(
        "| QNet for fold | trained on (samples) | held out (samples) | held-out bin accuracy "
        "| held-out mean abs. J error | the same, predicting the training mean | seconds |"
    )
    print("|---|---|---|---|---|---|---|")
    for fold, clips in FOLDS.items():
        (other,) = [f for f in FOLDS if f != fold]
        train, held = samples.of_videos(FOLDS[other]), samples.of_videos(clips)
        start = time.perf_counter()
        net = fit_quality_net(train, epochs=epochs, lr=lr, seed=0)
        seconds = time.perf_counter() - start
        meta = {"trained_on": FOLDS[other], "samples": len(train), "epochs": epochs, "lr": lr}
        save_quality_net(net, QNET / f"qnet-{fold}.safetensors", meta)
        scores = evaluate_quality_net(net, held)
        constant = float(np.abs(held.j - train.j.mean()).mean())
        accuracy, error = scores["bin_accuracy"], scores["quality_mae"]
        print(
            f"| {fold} ({', '.join(clips)}) | {other} ({len(train)}) | {len(held)} | {accuracy:.3f} "
            f"| {error:.3f} | {constant:.3f} | {seconds:.0f} |"
        )


def qnet_loops() -> None:
    """Diversity on QNet features (each fold with the QNet that never saw it) beside the ``frames`` part."""
    start = time.perf_counter()
    qnet = Strategy("diversity-qnet", "mask")
    histories: dict[Strategy, list] = {qnet: []}
    for fold, clips in FOLDS.items():
        out = OUT / f"qnet-{fold}"
        plan = SimulationPlan(
            "all",
            BUDGET_HOURS * len(clips) / 8,
            ["diversity"],
            ["mask"],
            seeds=1,
            stride=STRIDE,
            max_frames=MAX_FRAMES,
            diversity_features="qnet",
            diversity_weights=QNET / f"qnet-{fold}.safetensors",
        )
        engine = get_loop_engine("flow", downscale=DOWNSCALE)
        simulate(
            DavisFormat(merged_root(clips, f"davis-fold-{fold}")), out, plan, engine=engine, progress=False
        )
        histories[qnet] += [load_history(out / "runs/diversity-mask/seed0" / clip) for clip in clips]
    print(f"QNet loops: {time.perf_counter() - start:.0f} s\n")
    clips = [clip for fold in FOLDS.values() for clip in fold]
    for strategy in strategies(["random", "uniform", "diversity", "oracle"], ["mask"], 5):
        folder = OUT / "frames/runs" / strategy.name / f"seed{strategy.seed}"
        histories[strategy] = [load_history(folder / clip) for clip in clips]
    report(summarise(histories, BUDGET_HOURS), "uniform-mask")


def main(argv: list[str]) -> None:
    cv2.setNumThreads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "part",
        nargs="?",
        default="engines",
        help="default (what `make bench` runs): engines",
        choices=(
            "anchors",
            "frames",
            "types",
            "iteration",
            "person-clicks",
            "policy-train",
            "policy-loop",
            "policy-report",
            "qnet-train",
            "qnet-loops",
            "engines",
        ),
    )
    parser.add_argument("--size", type=int, default=112, help="qnet-train part: QNet's input size")
    parser.add_argument("--epochs", type=int, default=10, help="qnet-train part: epochs")
    parser.add_argument("--lr", type=float, default=0.01, help="qnet-train part: SGD's rate")
    parser.add_argument("--frames", default="oracle", help="types part: the frame selector")
    parser.add_argument(
        "--selectors",
        default="random,uniform,uncertainty,diversity,oracle",
        help="frames part: the frame selectors (masks only)",
    )
    parser.add_argument(
        "--type-policies", default="mask,clicks,box,oracle", help="types part: the type policies"
    )
    parser.add_argument(
        "--name", help="frames and types parts: the results folder under OUT (default: the part's)"
    )
    parser.add_argument("--fold", choices=tuple(FOLDS), default="a", help="policy-loop part: the clips")
    parser.add_argument(
        "--types", default="mask,clicks,oracle,learned", help="policy-loop part: the type policies"
    )
    args = parser.parse_args(argv)
    if args.part == "anchors":
        anchors()
    elif args.part == "frames":
        loop_part(args.name or "frames", args.selectors.split(","), ["mask"], "uniform-mask")
    elif args.part == "types":
        name = args.name or f"types-{args.frames}"
        loop_part(name, [args.frames], args.type_policies.split(","), f"{args.frames}-mask")
    elif args.part == "person-clicks":
        person_clicks()
    elif args.part == "policy-train":
        policy_train()
    elif args.part == "policy-loop":
        policy_loop(args.fold, args.types.split(","))
    elif args.part == "policy-report":
        policy_report()
    elif args.part == "qnet-train":
        qnet_train(args.size, args.epochs, args.lr)
    elif args.part == "qnet-loops":
        qnet_loops()
    elif args.part == "engines":
        engines(12)
    else:
        iteration()


if __name__ == "__main__":
    main(sys.argv[1:])
    print(provenance_line(), flush=True)
    sys.stdout.flush()
