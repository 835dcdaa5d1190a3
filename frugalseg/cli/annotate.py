"""`frugalseg annotate …`: the annotation loop of paper 002.

``annotate simulate`` runs it with a simulated annotator on data with ground truth; ``annotate
train-policy`` and ``train-qnet`` train the learned type policy and QNet on simulated loops. A person's
commands on data without truth (``propose``, ``add``, ``export``, ``serve``, ``ml-backend``) are in
`frugalseg.cli.annotate_person`, ``annotate semantic`` in `frugalseg.cli.annotate_semantic`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from frugalseg.cli.annotate_options import (
    FORMATS,
    chosen_options,
    comma_names,
    diversity_options,
    engine_options,
)
from frugalseg.cli.annotate_person import (
    add_options,
    export_options,
    flagged,
    ml_backend_options,
    propose_options,
    serve_options,
)
from frugalseg.cli.options import LazyParser, count_option, positive, seed_option

if TYPE_CHECKING:
    from frugalseg.active.objects.engines import LoopEngine


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``annotate`` group (``simulate``, ``propose``, ``add`` …) to the tool parser.

    Each command's options are added when it is the one named (`LazyParser`): they list the registries'
    names (selectors, policies, engines, click models), whose modules import torch, and
    ``frugalseg annotate --help`` should not wait for it.
    """
    group = subparsers.add_parser(
        "annotate", help="the annotation loop: which frame to annotate next, and how"
    )
    commands = group.add_subparsers(dest="annotate_command", required=True, parser_class=LazyParser)
    for name, (fill, text) in _COMMANDS.items():
        commands.add_parser(name, help=text, fill=fill)


def _semantic_options(parser: argparse.ArgumentParser) -> None:
    """``annotate semantic``'s options (`frugalseg.cli.annotate_semantic`)."""
    from frugalseg.cli.annotate_semantic import semantic_options

    semantic_options(parser)


def _simulate_options(simulate: argparse.ArgumentParser) -> None:
    """``annotate simulate``: the loop with a simulated annotator on data with ground truth."""
    from frugalseg.active.objects.choosing.frame_selectors import SELECTORS
    from frugalseg.active.objects.choosing.type_policies import POLICY_NAMES
    from frugalseg.cli.label import add_trainer_options

    simulate.add_argument("--format", default="davis", choices=FORMATS, help="data set layout")
    simulate.add_argument(
        "--root", required=True, help="the data set folder (format video: a video or folder)"
    )
    simulate.add_argument(
        "--masks",
        default=None,
        help="format video: folder of the ground-truth mask PNGs named by frame index "
        "(default: Annotations/<clip>/ beside)",
    )
    simulate.add_argument("--split", default=None, help="split to annotate (default: the only or first one)")
    simulate.add_argument(
        "--budget-hours",
        type=float,
        required=True,
        help="human hours for the whole data set (> 0), shared by its videos; a video's annotations start "
        "while its share is not spent, so its last may end past it (the curves show the hours spent)",
    )
    simulate.add_argument(
        "--frames",
        type=comma_names,
        default=["uniform"],
        help=f"frame selectors, comma-separated: {', '.join(SELECTORS)}",
    )
    simulate.add_argument(
        "--types",
        type=comma_names,
        default=["auto"],
        help=f"annotation type policies, comma-separated (default: auto): {', '.join(POLICY_NAMES)}",
    )
    simulate.add_argument(
        "--policy", default=None, help="weights of the 'learned' type policy (from `annotate train-policy`)"
    )
    diversity_options(simulate)
    simulate.add_argument(
        "--seeds", type=count_option, default=5, help="runs of a random strategy (their mean is plotted)"
    )
    simulate.add_argument("--stride", type=count_option, default=1, help="use every n-th frame of each video")
    simulate.add_argument(
        "--max-frames", type=count_option, default=None, help="use only the first n frames of each video"
    )
    engine_options(simulate, defaults=True)
    add_trainer_options(simulate)
    simulate.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
    simulate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    simulate.set_defaults(func=flagged(_simulate))


def _train_policy_options(train: argparse.ArgumentParser) -> None:
    """``annotate train-policy``: the learned type policy on the states of simulated loops."""
    train.add_argument(
        "--runs", type=comma_names, required=True, help="`annotate simulate` output folders, comma-separated"
    )
    train.add_argument(
        "--videos", type=comma_names, default=None, help="train on these videos only (default: all)"
    )
    train.add_argument(
        "--loops",
        type=comma_names,
        default=None,
        help="use only these loops, <frames>-<types>/seed<k>, comma-separated (default: all)",
    )
    train.add_argument("--epochs", type=count_option, default=200, help="passes over the samples")
    engine_options(train, defaults=True, engine=False)
    train.add_argument("--seed", type=seed_option, default=0, help="seed of the initial weights")
    train.add_argument("--out", required=True, help="the policy's safetensors file")
    train.set_defaults(func=_train_policy)


def _train_qnet_options(qnet: argparse.ArgumentParser) -> None:
    """``annotate train-qnet``: QNet on the masks of every iteration of simulated loops."""
    qnet.add_argument(
        "--runs", type=comma_names, required=True, help="`annotate simulate` output folders, comma-separated"
    )
    qnet.add_argument(
        "--videos", type=comma_names, default=None, help="train on these videos only (default: all)"
    )
    qnet.add_argument(
        "--val-videos",
        type=comma_names,
        default=None,
        help="hold these videos out and report QNet's quality on them",
    )
    qnet.add_argument(
        "--loops",
        type=comma_names,
        default=None,
        help="use only these loops, <frames>-<types>/seed<k> (default: all)",
    )
    qnet.add_argument(
        "--samples",
        default=None,
        help="a .npz of the samples: read when it exists, else made (the slow part: propagation) and written",
    )
    qnet.add_argument(
        "--input-size", type=count_option, default=224, help="side of QNet's square input (224)"
    )
    qnet.add_argument("--epochs", type=count_option, default=30, help="passes over the samples (30)")
    qnet.add_argument("--batch-size", type=count_option, default=64, help="samples per step (64)")
    qnet.add_argument(
        "--lr",
        type=positive,
        default=1e-5,
        help="SGD rate (1e-5 from ImageNet weights; ~1e-2 from random ones)",
    )
    qnet.add_argument(
        "--encoder-weights",
        default=None,
        help="timm ResNet-18 weights both branches start from (default: random)",
    )
    qnet.add_argument(
        "--seed", type=seed_option, default=0, help="seed of the initial weights and the shuffling"
    )
    engine_options(qnet, defaults=True, clicks=False)
    qnet.add_argument("--out", required=True, help="QNet's safetensors file")
    qnet.set_defaults(func=_train_qnet)


#: The ``annotate`` commands: name → the function that adds its options, and its help.
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], str]] = {
    "simulate": (
        _simulate_options,
        "run the loop with a simulated annotator on data with ground truth; write J&F-vs-hours curves",
    ),
    "propose": (
        propose_options,
        "say which frame of which video a person should annotate next, and how (no ground truth)",
    ),
    "add": (
        add_options,
        "add a mask PNG or a clicks JSON a person made, propagate again, save the loop state",
    ),
    "export": (
        export_options,
        "write a session's current masks as a label store the datamodules train from",
    ),
    "serve": (
        serve_options,
        "serve the annotation page: annotate in the browser while the loop proposes what next",
    ),
    "ml-backend": (
        ml_backend_options,
        "serve the session as a Label Studio ML backend: predictions, webhooks, interactive masks",
    ),
    "train-policy": (
        _train_policy_options,
        "train the learned annotation-type policy on the loop states of `annotate simulate` runs",
    ),
    "train-qnet": (
        _train_qnet_options,
        "train QNet (the diversity selector's features, paper 002) on `annotate simulate` loops",
    ),
    "semantic": (
        _semantic_options,
        "the semantic loop of paper 000 (frames / rectangles / superpixels, fine-tuning) with a "
        "simulated annotator; write mIoU-vs-clicks curves and the generated labels",
    ),
}


def _simulate(args: argparse.Namespace) -> int:
    from frugalseg.active.objects.engines import ENGINES, get_loop_engine
    from frugalseg.active.objects.simulation.runs import video_sources
    from frugalseg.active.objects.simulation.simulate import (
        SimulationPlan,
        check_budget,
        simulate,
        strategies,
    )
    from frugalseg.active.objects.tools.click_models import CLICK_MODELS, get_click_model
    from frugalseg.cli.label import trainer_options
    from frugalseg.data.formats import get_format
    from frugalseg.data.formats.davis import DavisFormat
    from frugalseg.data.io import removed_on_failure
    from frugalseg.errors import ConfigError

    check_budget(args.budget_hours)  # the plan's own checks, before the data set is read
    strategies(args.frames, args.types, args.seeds)
    fmt = get_format(args.format, args.root, **({"masks": args.masks} if args.masks is not None else {}))
    if not isinstance(fmt, DavisFormat):
        raise ConfigError("format", f"the annotation loop reads DAVIS-style videos, not {fmt.name!r}")
    plan = SimulationPlan(
        split=args.split or fmt.splits()[0],
        budget_hours=args.budget_hours,
        frames=args.frames,
        types=args.types,
        seeds=args.seeds,
        stride=args.stride,
        max_frames=args.max_frames,
        policy=args.policy,
        diversity_features=args.diversity_features,
        diversity_weights=args.diversity_weights,
    )
    video_sources(fmt, plan.split, stride=args.stride, max_frames=args.max_frames)  # before loading networks
    engine = get_loop_engine(args.engine, **chosen_options(args, "engine", ENGINES, per_process=True))
    clicks = get_click_model(
        args.click_model, **chosen_options(args, "click_model", CLICK_MODELS, per_process=True)
    )
    with removed_on_failure(args.out):
        curves = simulate(
            fmt,
            args.out,
            plan,
            engine=engine,
            click_model=clicks,
            trainer=trainer_options(args),
            progress=not args.no_progress,
        )
    if curves is None:  # another process of a multi-device run: rank 0 reports
        return 0
    for name, curve in curves["strategies"].items():
        reach = curve["hours_to_target"]
        reached = "not reached" if reach is None else f"{reach:.2f} h"
        print(
            f"{name}: J&F {curve['final_jf']:.3f} after {curve['final_hours']:.2f} h; "
            f"J&F {curves['target_jf']}: {reached}"
        )
    print(f"curves: {args.out}/curves.json, {args.out}/curves.png; labels: {args.out}/labels/")
    return 0


def _train_policy(args: argparse.Namespace) -> int:
    import numpy as np

    from frugalseg.active.objects.choosing.type_policies import FEATURES
    from frugalseg.active.objects.simulation.annotation_types import ANNOTATION_TYPES
    from frugalseg.active.objects.simulation.training_samples import run_samples
    from frugalseg.active.objects.tools.click_models import CLICK_MODELS, get_click_model
    from frugalseg.lightning_modules.type_policy import fit_type_gain
    from frugalseg.zoo import save_type_gain

    clicks = get_click_model(args.click_model, **chosen_options(args, "click_model", CLICK_MODELS))
    parts = [run_samples(run, args.videos, loops=args.loops, click_model=clicks) for run in args.runs]
    features = np.concatenate([p[0] for p in parts])
    gains = np.concatenate([p[1] for p in parts])
    videos = sorted({v for p in parts for v in p[2]})
    net = fit_type_gain(features, gains, epochs=args.epochs, seed=args.seed)
    save_type_gain(net, args.out, list(ANNOTATION_TYPES), list(FEATURES))
    mean = ", ".join(f"{k} {v:+.3f}" for k, v in zip(ANNOTATION_TYPES, gains.mean(0), strict=True))
    print(f"{len(features)} samples of {len(videos)} videos ({', '.join(videos)}); mean gain {mean}")
    print(f"policy: {args.out}")
    return 0


def _train_qnet(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from frugalseg.active.objects.simulation.training_samples import QualitySamples, run_quality_samples
    from frugalseg.lightning_modules.quality_net import evaluate_quality_net, fit_quality_net
    from frugalseg.zoo import save_quality_net

    samples_file = None if args.samples is None else Path(args.samples)
    if samples_file is not None and samples_file.is_file():
        samples = QualitySamples.load(samples_file)
    else:
        engine = _run_engine(args)
        videos = None if args.videos is None else [*args.videos, *(args.val_videos or [])]
        parts = [
            run_quality_samples(run, videos, loops=args.loops, engine=engine, input_size=args.input_size)
            for run in args.runs
        ]
        samples = QualitySamples.concatenate(parts)
        if samples_file is not None:
            samples.save(samples_file)
    held = args.val_videos or []
    train = samples.subset(~np.isin(samples.video, held))
    val = samples.of_videos(held) if held else None
    net = fit_quality_net(
        train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        encoder_weights=args.encoder_weights,
        val_samples=val,
        trainer_options={"enable_progress_bar": True},
    )
    meta = {
        "runs": [str(Path(run).resolve()) for run in args.runs],
        "videos": sorted(set(train.video.tolist())),
        "samples": len(train),
        "epochs": args.epochs,
        "lr": args.lr,
    }
    save_quality_net(net, args.out, meta)
    print(f"{len(train)} samples of {len(meta['videos'])} videos ({', '.join(meta['videos'])})")
    if val is not None:
        scores = evaluate_quality_net(net, val)
        print(
            f"held out ({', '.join(held)}, {len(val)} samples): bin accuracy {scores['bin_accuracy']:.3f}, "
            f"mean |J error| {scores['quality_mae']:.3f}"
        )
    print(
        f"QNet: {args.out} (select frames with it: --frames diversity --diversity-features qnet "
        f"--diversity-weights {args.out})"
    )
    return 0


def _run_engine(args: argparse.Namespace) -> LoopEngine:
    """The engine the options describe, checked to be the one each of ``args.runs`` recorded."""
    from frugalseg.active.objects.engines import ENGINES, get_loop_engine
    from frugalseg.active.objects.simulation.runs import check_run_engine

    engine = get_loop_engine(args.engine, **chosen_options(args, "engine", ENGINES))
    check_run_engine(args.runs, engine)
    return engine
