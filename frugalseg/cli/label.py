"""`frugalseg label …`: the pseudo-label factory on the command line (no Lightning until --devices)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frugalseg.cli.interop import register_interop
from frugalseg.cli.options import (
    ACCELERATORS,
    LazyParser,
    count_option,
    devices_option,
    fraction,
    non_negative,
    seed_option,
)
from frugalseg.data.clips import LabelKind
from frugalseg.data.files import nearest_existing
from frugalseg.data.formats import (
    FORMATS,
    Format,
    SyntheticFormat,
    check_layout,
    generate_synthetic_streets,
    get_format,
)
from frugalseg.errors import ConfigError, DataError

if TYPE_CHECKING:  # the modules of the propagation import torch: each command imports what it runs
    from frugalseg.autolabel.runs import LabellingSummary, TrainerOptions
    from frugalseg.autolabel.sam2_loading import SAM2Options
    from frugalseg.autolabel.store import LabelStore

DEFAULT_K = 10  # issue 3: propagate up to 10 frames each way unless told otherwise
#: The engine of ``label propagate`` unless ``--engine`` names another; its flags carry no prefix.
DEFAULT_ENGINE = "flow"


def _offsets(text: str) -> list[int]:
    """Parse ``-10,10`` into ``[-10, 10]``."""
    try:
        offsets = [int(part) for part in text.split(",")]  # an empty item ("1,,5") is no integer
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"offsets must be comma-separated integers, got {text!r}") from err
    if not offsets or 0 in offsets:
        raise argparse.ArgumentTypeError(
            f"offsets must be non-empty and non-zero (0 is the manual label), got {text!r}"
        )
    return offsets


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``label`` group (``label propagate``) to the tool parser."""
    group = subparsers.add_parser("label", help="make pseudo-labels into a label store")
    commands = group.add_subparsers(dest="label_command", required=True, parser_class=LazyParser)
    # Each command's options are added when it is named: they list engines, flow methods and formats,
    # whose modules import torch, and `frugalseg label --help` should not wait for it (`LazyParser`).
    commands.add_parser(
        "propagate",
        help="carry the manual label of each clip's anchor frame to nearby frames",
        fill=_propagate_options,
    )
    _add_refine_coarse(commands)
    _add_clicks(commands)
    _add_boxes(commands)
    _register_report(commands)
    register_interop(commands)


def _propagate_options(propagate: argparse.ArgumentParser) -> None:
    """``label propagate``'s options, added when it is named (`LazyParser`).

    Each engine's flags are made from its ``Options`` (`frugalseg.options.add_option_flags`): the flow
    engine's by their flat names (``--snap-band``, the keys its stores record), another engine's with
    its name in front (``--sam2-checkpoint``).
    """
    from frugalseg.autolabel.engines import PROPAGATORS
    from frugalseg.autolabel.flow_options import SPEEDS
    from frugalseg.options import add_option_flags

    _add_dataset_options(propagate)
    which = propagate.add_mutually_exclusive_group()
    which.add_argument(
        "--offsets", type=_offsets, help="comma-separated offsets from the anchor, e.g. -10,10"
    )
    which.add_argument(
        "--k",
        type=count_option,
        help=f"every offset ±1…±k that some clip has a frame at (default without --offsets: {DEFAULT_K})",
    )
    propagate.add_argument(
        "--engine",
        default=DEFAULT_ENGINE,
        choices=tuple(PROPAGATORS),
        help="propagation engine; its options are the flags of its group below",
    )
    for name, engine in PROPAGATORS.items():
        group = propagate.add_argument_group(f"{name} engine")
        if name == DEFAULT_ENGINE:
            group.add_argument(
                "--speed",
                choices=tuple(SPEEDS),
                help="exact (default); fast: the direct flows to the anchor with DIS's fast preset; fastest: "
                "every flow on half-size frames (their cost in J: benchmarks/results/propagation.md); the "
                "speed options given override it",
            )
        add_option_flags(group, [(_flag_prefix(name), engine.Options)])
    add_trainer_options(propagate)
    # argparse takes "-10,10" for an option name; let it read as a value like "-10" does
    propagate._negative_number_matcher = re.compile(r"^-\d+(,-?\d+)*$")
    propagate.set_defaults(func=_propagate)


def _flag_prefix(engine: str) -> str:
    """What the flags of ``engine``'s options start with: nothing for the default engine, else its name."""
    return "" if engine == DEFAULT_ENGINE else engine


def propagation_offsets(args: argparse.Namespace) -> list[int]:
    """The offsets asked for: ``--offsets``, else ±1…±``--k`` (``DEFAULT_K`` if neither)."""
    if args.offsets is not None:
        return args.offsets
    k = DEFAULT_K if args.k is None else args.k
    return [sign * offset for offset in range(1, k + 1) for sign in (-1, 1)]


def propagator_options(args: argparse.Namespace) -> Any:
    """The ``Options`` of the engine ``--engine`` names, from its flags (the rest their defaults).

    ``--speed`` gives the flow engine's speed settings its named ones, under the speed options given;
    a ``device`` left at ``auto`` is this process's own GPU under ``--devices`` (`process_device`).
    """
    from frugalseg.autolabel.engines import PROPAGATORS
    from frugalseg.autolabel.flow_options import SPEEDS, FlowOptions
    from frugalseg.options import build_options, given_options, option_fields, option_flag

    fields = option_fields(PROPAGATORS[args.engine].Options)
    given = given_options(vars(args), _flag_prefix(args.engine), PROPAGATORS[args.engine].Options)
    if "device" in fields:
        given["device"] = process_device(given.get("device", "auto"), args)
    if args.engine == DEFAULT_ENGINE and args.speed is not None:
        named = FlowOptions(speed=SPEEDS[args.speed]).flat()
        given = {**{k: v for k, v in named.items() if fields[k].part == "speed"}, **given}
    try:
        return build_options(PROPAGATORS, args.engine, given, option="--engine", noun="propagation engine")
    except ConfigError as err:  # named by the option's flag, as argparse names its own errors
        if err.option not in fields:
            raise
        raise ConfigError(option_flag(_flag_prefix(args.engine), err.option), err.problem) from err


def _propagate(args: argparse.Namespace) -> int:
    """Run ``label propagate``; prints one summary line and returns the exit code."""
    from frugalseg.autolabel.engines import PROPAGATORS
    from frugalseg.autolabel.propagate import propagate_split, servable_offsets
    from frugalseg.autolabel.runs import anchored_clips

    options = propagator_options(args)
    asked = propagation_offsets(args)

    def label(fmt: Format, store: LabelStore) -> LabellingSummary:
        offsets = asked
        if args.offsets is None:  # ±1…±k: those the clips have (--offsets are each asked for)
            clips = anchored_clips(fmt, args.split, LabelKind.FINE)
            served = {offset for clip in clips for offset in servable_offsets(clip, asked)}
            if not served:
                raise DataError(
                    clips[0].frames[clips[0].anchor_index],
                    f"no clip of split {args.split!r} has a frame within ±{max(map(abs, asked))} of its "
                    "annotated one (single frames, no video around them): nothing to propagate",
                )
            offsets = [offset for offset in asked if offset in served]
        elif PROPAGATORS[args.engine].loads_weights:
            anchored_clips(fmt, args.split, LabelKind.FINE)  # before loading the network
        engine = PROPAGATORS[args.engine].from_options(options)
        if args.devices is None:
            return propagate_split(fmt, args.split, store, offsets, engine, progress=not args.no_progress)
        from frugalseg.autolabel.lightning_runner import propagate_with_trainer

        return propagate_with_trainer(
            fmt,
            args.split,
            store,
            offsets,
            engine,
            accelerator=args.accelerator,
            devices=args.devices,
            num_nodes=args.num_nodes,
            progress=not args.no_progress,
        )

    return _run_labelling("propagate", "clips", args, label)


def add_trainer_options(parser: argparse.ArgumentParser) -> None:
    """Options that share the job out among processes with Lightning's ``Trainer.predict``."""
    trainer = parser.add_argument_group("several devices or nodes (Lightning)")
    trainer.add_argument(
        "--devices",
        type=devices_option,
        help="run through Lightning's Trainer.predict on this many devices per node (e.g. 4, or auto); "
        "each process labels its share of the clips (or anchor frames) into the shared store",
    )
    trainer.add_argument(
        "--accelerator", default="auto", choices=ACCELERATORS, help="Lightning accelerator with --devices"
    )
    trainer.add_argument(
        "--num-nodes", type=count_option, default=1, help="nodes with --devices (default: 1)"
    )


def trainer_options(args: argparse.Namespace) -> TrainerOptions | None:
    """How ``--devices/--accelerator/--num-nodes`` share a job out; None (one process) without --devices."""
    from frugalseg.autolabel.runs import TrainerOptions

    if args.devices is None:
        return None
    return TrainerOptions(accelerator=args.accelerator, devices=args.devices, num_nodes=args.num_nodes)


def process_device(requested: str, args: argparse.Namespace) -> str:
    """``requested``; ``auto`` with --devices on GPUs is this process's own GPU (LOCAL_RANK)."""
    from frugalseg.autolabel.sam2_loading import resolve_device

    if args.devices is None or args.accelerator == "cpu" or requested != "auto":
        return requested
    device = resolve_device("auto")
    return device if device == "cpu" else f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


def _register_report(commands: argparse._SubParsersAction) -> None:
    """Add ``label report``: quality against ground truth and annotation cost of a store."""
    commands.add_parser(
        "report",
        help="score a label store against ground truth per frame offset, and its annotation cost",
        fill=_report_options,
    )


def _report_options(report: argparse.ArgumentParser) -> None:
    """``label report``'s options, added when it is named (`LazyParser`)."""
    report.add_argument("store", help="label store folder (holding run.json and manifest.jsonl)")
    report.add_argument("--out", help="where report.json and quality.png go (default: STORE/report)")
    report.add_argument(
        "--cost",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an annotation cost constant, e.g. fine_frame_minutes=60 (repeatable)",
    )
    report.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    report.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    """Run ``label report``; prints the table and where the files went, returns the exit code."""
    from pathlib import Path

    from frugalseg.autolabel.report import evaluate_store, write_report
    from frugalseg.data.costs import DEFAULT_COSTS

    try:
        costs = DEFAULT_COSTS.with_overrides(args.cost)
    except ConfigError as err:
        raise ConfigError("--cost", err.problem) from err
    out = Path(args.out or Path(args.store) / "report")
    _check_report_folder(out, args.store)
    report = evaluate_store(args.store, costs, progress=not args.no_progress)
    json_path, plot_path = write_report(report, out)
    print_report(report)
    print(f"label report: wrote {json_path} and {plot_path}")
    return 0


def _check_report_folder(out: Path, store: str) -> None:
    """Refuse, before scoring, a report ``--out`` that is a file or lies under one, or in the data set."""
    import os

    from frugalseg.autolabel.store import LabelStore

    there = nearest_existing(out)
    if not there.is_dir():
        raise ConfigError("--out", f"{there} is a file: name a folder for report.json and quality.png")
    root = LabelStore(store).read_run().get("root")  # absolute; an older store's as typed is not judged
    if isinstance(root, str) and os.path.isabs(root) and out.resolve().is_relative_to(Path(root).resolve()):
        raise ConfigError(
            "--out", f"{out} is inside the data set folder {root}: nothing is written into a data set"
        )


def _add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """Options every labelling command shares: the data set, the split, the store, the progress bar."""
    parser.add_argument("--format", required=True, choices=list(FORMATS), help="data set layout")
    parser.add_argument(
        "--root", required=True, help="data set folder (format video: a video file or folder)"
    )
    parser.add_argument(
        "--masks",
        default=None,
        help="format video: folder of mask PNGs named by frame index (default: Annotations/<clip>/ beside)",
    )
    parser.add_argument("--split", help="split to label (default: the data set's only split, else train)")
    parser.add_argument("--out", required=True, help="label store folder (one per labelling run)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_sam2_model_options(parser: argparse.ArgumentParser) -> None:
    """The SAM 2 model's flags, made from `SAM2Options` (``--sam2-checkpoint``, ``--sam2-device``, …)."""
    from frugalseg.autolabel.sam2_loading import SAM2Options
    from frugalseg.options import add_option_flags

    add_option_flags(parser.add_argument_group("SAM 2 model"), [("sam2", SAM2Options)])


def _sam2_model_options(args: argparse.Namespace, command: str) -> SAM2Options:
    """The SAM 2 model the ``--sam2-*`` flags describe; ``label <command>`` needs its checkpoint.

    Its input size is checked here, before any model is read, as the video engine's is.
    """
    from frugalseg.autolabel.sam2_loading import SAM2Options, check_image_size
    from frugalseg.options import given_options

    given = given_options(vars(args), "sam2", SAM2Options)
    if "checkpoint" not in given:
        needs = f"label {command} needs a SAM 2 checkpoint (a file or an id: facebook/sam2.1-hiera-tiny)"
        raise ConfigError("--sam2-checkpoint", needs)
    check_image_size(given.get("image_size"))
    return SAM2Options(**given)


def _image_predictor(options: SAM2Options, args: argparse.Namespace) -> Any:
    """The SAM 2 image predictor of ``options``, on this process's own GPU under ``--devices``.

    A ``SAM2ImagePredictor`` (untyped, as all of ``sam2``).
    """
    from frugalseg.autolabel.sam2_loading import build_sam2_image_predictor, resolve_device

    device = resolve_device(process_device(options.device, args))
    sizes: dict[str, Any] = {} if options.image_size is None else {"image_size": options.image_size}
    return build_sam2_image_predictor(options.config, options.checkpoint, device, **sizes)


def _add_refine_coarse(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "refine-coarse",
        help="refine the coarse label of each clip's anchor frame with SAM 2 (paper 001)",
        fill=_refine_coarse_options,
    )


def _refine_coarse_options(parser: argparse.ArgumentParser) -> None:
    """``label refine-coarse``'s options, added when it is named (`LazyParser`)."""
    from frugalseg.autolabel.refine import REFINE_CLASSES

    _add_dataset_options(parser)
    _add_sam2_model_options(parser)
    parser.add_argument(
        "--method",
        default="points",
        choices=("points", "auto"),
        help="points: 2 random points per object + 2 refinement iterations (the paper's method); "
        "auto: classify automatically generated masks by the coarse map (the failed alternative)",
    )
    parser.add_argument(
        "--classes",
        default=",".join(REFINE_CLASSES),
        help=f"comma-separated class names to refine (default: {','.join(REFINE_CLASSES)}), or 'all'",
    )
    parser.add_argument("--points", type=count_option, default=2, help="random points per object (points)")
    parser.add_argument("--iterations", type=count_option, default=2, help="refinement iterations (points)")
    parser.add_argument(
        "--agreement", type=fraction, default=0.9, help="fraction of coarse pixels a mask needs (auto)"
    )
    parser.add_argument(
        "--points-per-side",
        type=count_option,
        default=32,
        help="grid of point prompts of the mask generator (auto)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="let refined masks overwrite coarse labels of other classes"
    )
    parser.add_argument("--seed", type=seed_option, default=0, help="seed of the random points")
    add_trainer_options(parser)
    parser.set_defaults(func=_refine_coarse)


def _refine_coarse(args: argparse.Namespace) -> int:
    """Run ``label refine-coarse``; prints one summary line and returns the exit code."""
    from frugalseg.autolabel.refine import AutoMaskRefiner, PointRefiner, class_ids, refine_split
    from frugalseg.autolabel.runs import anchored_clips

    sam2 = _sam2_model_options(args, "refine-coarse")

    def label(fmt: Format, store: LabelStore) -> LabellingSummary:
        anchored_clips(fmt, args.split, LabelKind.COARSE)  # before loading SAM 2
        names = (
            list(fmt.class_names) if args.classes == "all" else [n.strip() for n in args.classes.split(",")]
        )
        try:
            train_ids = class_ids(names, fmt.class_names)
        except ConfigError as err:
            raise ConfigError("--classes", err.problem) from err
        predictor = _image_predictor(sam2, args)
        model = {"config": sam2.config, "checkpoint": sam2.checkpoint}
        refiner: PointRefiner | AutoMaskRefiner
        if args.method == "points":
            refiner = PointRefiner(
                predictor,
                train_ids,
                num_points=args.points,
                iterations=args.iterations,
                overwrite=args.overwrite,
                model=model,
            )
        else:
            from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

            refiner = AutoMaskRefiner(
                SAM2AutomaticMaskGenerator(predictor.model, points_per_side=args.points_per_side),
                train_ids,
                agreement=args.agreement,
                overwrite=args.overwrite,
                model={**model, "points_per_side": args.points_per_side},
            )
        return refine_split(
            fmt,
            args.split,
            store,
            refiner,
            seed=args.seed,
            progress=not args.no_progress,
            trainer=trainer_options(args),
        )

    return _run_labelling("refine-coarse", "images", args, label)


def _add_clicks(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "clicks",
        help="simulate click annotations on each clip's anchor frame (paper 004)",
        fill=_clicks_options,
    )


def _clicks_options(parser: argparse.ArgumentParser) -> None:
    """``label clicks``'s options, added when it is named (`LazyParser`)."""
    _add_dataset_options(parser)
    parser.add_argument(
        "--radius", type=non_negative, default=0, help="label pixels within this radius of a click"
    )
    parser.add_argument(
        "--min-stuff-area", type=count_option, default=512, help="smallest stuff component that gets a click"
    )
    parser.add_argument("--seed", type=seed_option, default=0, help="seed of clicks placed off the centroid")
    add_trainer_options(parser)
    parser.set_defaults(func=_clicks)


def _clicks(args: argparse.Namespace) -> int:
    """Run ``label clicks``; prints one summary line and returns the exit code."""
    from frugalseg.autolabel.clicks import click_split

    def label(fmt: Format, store: LabelStore) -> LabellingSummary:
        return click_split(
            fmt,
            args.split,
            store,
            radius=args.radius,
            min_stuff_area=args.min_stuff_area,
            seed=args.seed,
            progress=not args.no_progress,
            trainer=trainer_options(args),
        )

    return _run_labelling("clicks", "images", args, label)


def _add_boxes(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "boxes",
        help="turn a box per instance of each clip's anchor frame into a SAM 2 mask (paper 003)",
        fill=_boxes_options,
    )


def _boxes_options(parser: argparse.ArgumentParser) -> None:
    """``label boxes``'s options, added when it is named (`LazyParser`)."""
    _add_dataset_options(parser)
    _add_sam2_model_options(parser)
    parser.add_argument(
        "--filter-iou",
        type=fraction,
        default=None,
        help="simulate filtering bad masks: a mask whose IoU with the ground truth is lower "
        "becomes ignore over its box",
    )
    add_trainer_options(parser)
    parser.set_defaults(func=_boxes)


def _boxes(args: argparse.Namespace) -> int:
    """Run ``label boxes``; prints one summary line and returns the exit code."""
    from frugalseg.autolabel.boxes import box_split
    from frugalseg.autolabel.runs import anchored_clips

    sam2 = _sam2_model_options(args, "boxes")

    def label(fmt: Format, store: LabelStore) -> LabellingSummary:
        anchored_clips(fmt, args.split, LabelKind.FINE)  # before loading SAM 2
        if not fmt.classes.instance_classes:  # every label had been all ignore
            raise ConfigError(
                "--format",
                f"{fmt.name} has no instance classes (objects a box holds, as Cityscapes' cars and people): "
                "nothing to box; `label clicks` labels any class",
            )
        return box_split(
            fmt,
            args.split,
            store,
            _image_predictor(sam2, args),
            min_iou=args.filter_iou,
            model={"config": sam2.config, "checkpoint": sam2.checkpoint},
            progress=not args.no_progress,
            trainer=trainer_options(args),
        )

    return _run_labelling("boxes", "images", args, label)


def _run_labelling(
    command: str,
    unit: str,
    args: argparse.Namespace,
    label: Callable[[Format, LabelStore], LabellingSummary],
) -> int:
    """Run one ``label`` command: ``label(fmt, store)`` on the data set and store the dataset options name.

    Prints its summary line (with several processes, only global rank 0 prints it), and a line naming
    the clips that got fewer labels than offsets asked for; ``unit`` names what the summary counts:
    ``clips`` for propagation, ``images`` (anchor frames) for the commands that label each clip's
    anchor frame. Errors go to the command line's one error path; a Ctrl-C first says what the store
    kept. The synthetic streets set is generated into ``--root`` when that folder is new or empty.
    """
    from frugalseg.autolabel.store import LabelStore, check_store_apart, check_store_folder

    out = args.out
    check_store_apart(out, args.root)
    check_store_folder(out)
    if args.format == "synthetic" and not SyntheticFormat.looks_like(Path(args.root)):
        generate_synthetic_streets(args.root)
    options = {"masks": args.masks} if args.masks is not None else {}
    fmt = get_format(args.format, args.root, **options)
    check_layout(fmt)
    args.split = args.split or fmt.default_split()
    store = LabelStore(out)
    try:
        summary = label(fmt, store)
    except KeyboardInterrupt:
        print(_kept(command, unit, store), file=sys.stderr)
        raise
    if summary.rank != 0:
        return 0
    print(
        f"label {command}: {summary.clips} {unit}, {summary.written} labels written, "
        f"{summary.skipped} skipped (already in {out}), {summary.seconds:.1f} s"
    )
    if summary.fewer:
        listed = ", ".join(f"{clip} ({_spans(lacking)})" for clip, lacking in list(summary.fewer.items())[:5])
        more = f" and {len(summary.fewer) - 5} more" if len(summary.fewer) > 5 else ""
        print(
            f"label {command}: {len(summary.fewer)} of {summary.clips} {unit} got fewer labels, having no "
            f"frame at these offsets: {listed}{more}"
        )
    return 0


def _kept(command: str, unit: str, store: LabelStore) -> str:
    """What an interrupted ``label`` command kept in ``store``, and how to go on."""
    if not store.root.is_dir() or not any(store.root.iterdir()):
        return f"label {command}: interrupted before a label was recorded; {store.root} was not written"
    held = len({(record["split"], record["clip_id"]) for record in store.records()})
    return (
        f"label {command}: interrupted; the {store.written} labels it wrote are kept in {store.root}, "
        f"which holds labels of {held} {unit}: run the same command again to resume (what is recorded "
        "is skipped)"
    )


def _spans(offsets: list[int]) -> str:
    """Offsets in ascending runs: ``[-1, 5, -3, -2]`` is ``-3…-1, +5``."""
    runs: list[list[int]] = []
    for offset in sorted(offsets):
        if runs and offset == runs[-1][-1] + 1:
            runs[-1].append(offset)
        else:
            runs.append([offset])
    return ", ".join(f"{run[0]:+d}…{run[-1]:+d}" if len(run) > 1 else f"{run[0]:+d}" for run in runs)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def print_report(report: dict[str, Any], console: Any = None) -> None:
    """Print the per-offset table and the cost of a `label report` in a readable form."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from frugalseg.cli.terminal import PipedConsole

    console = console or PipedConsole(width=max(Console().width, 140))
    table = Table(
        title=f"label quality — {report['store']} ({report['format']}, {report['split']})", box=box.SIMPLE
    )
    scores = ["j", "miou", "recall@0.5", "recall@0.7", "coverage", "precision"]
    headers = ["kind", "offset", "labels", "scored", "J", "mIoU", "rec@.5", "rec@.7", "coverage", "precision"]
    if any(row.get("confidence") is not None for row in report["rows"]):  # stores with confidence maps
        scores += ["confidence", "wrong@low10", "wrong@high10"]
        headers += ["confidence", "wrong@low10", "wrong@high10"]
    for name in headers:
        table.add_column(name, justify="left" if name == "kind" else "right", no_wrap=True)
    for row in report["rows"]:
        table.add_row(
            row["kind"],
            f"{row['offset']:+d}",
            str(row["labels"]),
            str(row["scored"]),
            *(_fmt(row.get(k)) for k in scores),
        )
    console.print(table)
    labels, scored = (sum(row[key] for row in report["rows"]) for key in ("labels", "scored"))
    if scored < labels:
        console.print(
            f"{labels - scored} of {labels} labels not scored: the data set has no truth on their frames"
        )
    cost = report["cost"]
    units = ", ".join(f"{n} {name}" for name, n in cost["units"].items())
    if not units:  # the semantic loop books its clicks' seconds on the partial labels it made
        seconds = {kind: s for kind, s in cost["seconds"].items() if s}
        booked = ", ".join(f"{s:.1f} s on {kind} labels" for kind, s in seconds.items())
        units = f"booked by the run that wrote it: {booked}" if booked else "no manual work"
    console.print(f"annotation cost: {cost['hours']:.2f} h of human work ({units})")
    if cost["uncosted_labels"]:
        listed = ", ".join(f"{n} {kind}" for kind, n in cost["uncosted_labels"].items())
        console.print(f"not costed (no count or manual source recorded): {listed}")
