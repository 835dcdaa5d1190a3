"""`frugalseg annotate …`: the annotation loop of paper 002.

``annotate simulate`` runs it with a simulated annotator on data with ground truth; ``annotate
propose`` and ``annotate add`` serve a real person on data without: what to annotate next, and
taking in what they made; ``annotate export`` writes a session's masks as a label store, ``annotate
serve`` serves the annotation page and ``annotate ml-backend`` the same session as a Label Studio ML
backend; ``annotate train-policy`` trains the learned type policy on simulated loops.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from frugalseg.cli.options import LazyParser, count_option, positive, seed_option

if TYPE_CHECKING:
    from frugalseg.active.objects.engines import LoopEngine
    from frugalseg.active.objects.session.proposals import ProposalOptions
    from frugalseg.active.objects.session.session import AnnotationSession
    from frugalseg.app import SessionService

FORMATS = ("davis", "mose", "video")


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


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
    simulate.add_argument("--root", required=True, help="the data set folder")
    simulate.add_argument("--split", default=None, help="split to annotate (default: the only or first one)")
    simulate.add_argument(
        "--budget-hours", type=float, required=True, help="human hours for the whole data set (> 0)"
    )
    simulate.add_argument(
        "--frames",
        type=_names,
        default=["uniform"],
        help=f"frame selectors, comma-separated: {', '.join(SELECTORS)}",
    )
    simulate.add_argument(
        "--types",
        type=_names,
        default=["auto"],
        help=f"annotation type policies, comma-separated: {', '.join(POLICY_NAMES)}",
    )
    simulate.add_argument(
        "--policy", default=None, help="weights of the 'learned' type policy (from `annotate train-policy`)"
    )
    _diversity_options(simulate)
    simulate.add_argument(
        "--seeds", type=count_option, default=5, help="runs of a random strategy (their mean is plotted)"
    )
    simulate.add_argument("--stride", type=count_option, default=1, help="use every n-th frame of each video")
    simulate.add_argument(
        "--max-frames", type=count_option, default=None, help="use only the first n frames of each video"
    )
    _engine_options(simulate, defaults=True)
    add_trainer_options(simulate)
    simulate.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
    simulate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    simulate.set_defaults(func=_simulate)


def _propose_options(propose: argparse.ArgumentParser) -> None:
    """``annotate propose``: the loop of a person, on data without truth (with ``add`` and ``export``)."""
    from frugalseg.interop.formats import WRITERS

    _session_options(propose)
    propose.add_argument("--video", default=None, help="propose on this video only (default: any)")
    _proposal_options(propose)
    propose.add_argument("--json", action="store_true", help="print the proposal as one JSON object")
    propose.add_argument(
        "--task",
        help="also write the proposed frame with its current masks as a file an annotation tool opens",
    )
    propose.add_argument(
        "--task-format",
        default="cvat-video",
        choices=WRITERS,
        help="the tool format of --task (default cvat-video)",
    )
    propose.set_defaults(func=_propose)


def _add_options(add: argparse.ArgumentParser) -> None:
    """``annotate add``: a person's mask or clicks."""
    _session_options(add)
    add.add_argument("--video", required=True, help="the video annotated")
    add.add_argument(
        "--frame", type=int, required=True, help="the frame annotated (its number in the sequence)"
    )
    made = add.add_mutually_exclusive_group(required=True)
    made.add_argument("--mask", help="PNG of object ids (palette or grey, 0 background), of the frame's size")
    made.add_argument(
        "--clicks", help='JSON {"clicks": [{"object": 1, "x": 10, "y": 20, "positive": true}, …]}'
    )
    add.add_argument(
        "--object",
        type=count_option,
        default=None,
        help="the --mask shows this one object (every non-zero pixel)",
    )
    add.add_argument(
        "--new-objects", action="store_true", help="accept object ids not annotated before (they appear here)"
    )
    add.add_argument(
        "--name",
        action="append",
        type=_object_name,
        default=[],
        metavar="ID=NAME",
        help='the class name of an object of this annotation, e.g. 1="horse and rider" (repeatable)',
    )
    add.set_defaults(func=_add)


def _export_options(export: argparse.ArgumentParser) -> None:
    """``annotate export``: the session's masks as a label store."""
    export.add_argument("--state", required=True, help="the session folder")
    export.add_argument(
        "--out", required=True, help="the label store folder (a new one after more additions)"
    )
    export.set_defaults(func=_export)


def _proposal_options(parser: argparse.ArgumentParser) -> None:
    """How a session proposes: the frame selector, the type policy and their options."""
    from frugalseg.active.objects.choosing.frame_selectors import PROPOSAL_SELECTOR, SELECTORS
    from frugalseg.active.objects.choosing.type_policies import POLICIES

    parser.add_argument(
        "--frames",
        default=PROPOSAL_SELECTOR,
        help="frame selector (default %(default)s): "
        + ", ".join(n for n, c in SELECTORS.items() if not c.needs_ground_truth),
    )
    parser.add_argument(
        "--types",
        default="auto",
        help="annotation type policy: "
        + ", ".join(n for n, c in POLICIES.items() if not c.needs_ground_truth),
    )
    parser.add_argument(
        "--policy", default=None, help="weights of the 'learned' type policy (from `annotate train-policy`)"
    )
    _diversity_options(parser)
    parser.add_argument("--seed", type=seed_option, default=0, help="seed of the random selector and policy")


def _serve_options(serve: argparse.ArgumentParser) -> None:
    """``annotate serve``: the annotation page, a local web app over a session."""
    _session_options(serve)
    _proposal_options(serve)
    _listen_options(serve, 8765, "secret every request must carry")
    serve.add_argument(
        "--exports", default=None, help="folder of the label stores Export writes (default: <state>/exports)"
    )
    serve.add_argument(
        "--max-upload-mb", type=float, default=8.0, help="largest upload or request body in MB (default 8)"
    )
    serve.set_defaults(func=_serve)


def _ml_backend_options(backend: argparse.ArgumentParser) -> None:
    """``annotate ml-backend``: the session as a Label Studio ML backend."""
    _session_options(backend)
    _proposal_options(backend)
    _listen_options(backend, 9090, "Basic-auth password Label Studio must send")
    backend.set_defaults(func=_ml_backend)


def _listen_options(parser: argparse.ArgumentParser, port: int, token: str) -> None:
    """``--host``, ``--port`` (default ``port``) and ``--token`` (what ``token`` is) of a served app."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port}; 0: any free one)")
    parser.add_argument(
        "--token",
        default=None,
        help=f"{token} (generated and printed for a --host other than 127.0.0.1 when not given)",
    )


def _train_policy_options(train: argparse.ArgumentParser) -> None:
    """``annotate train-policy``: the learned type policy on the states of simulated loops."""
    train.add_argument(
        "--runs", type=_names, required=True, help="`annotate simulate` output folders, comma-separated"
    )
    train.add_argument(
        "--videos", type=_names, default=None, help="train on these videos only (default: all)"
    )
    train.add_argument(
        "--loops",
        type=_names,
        default=None,
        help="use only these loops, <frames>-<types>/seed<k>, comma-separated (default: all)",
    )
    train.add_argument("--epochs", type=count_option, default=200, help="passes over the samples")
    _engine_options(train, defaults=True, engine=False)
    train.add_argument("--seed", type=seed_option, default=0, help="seed of the initial weights")
    train.add_argument("--out", required=True, help="the policy's safetensors file")
    train.set_defaults(func=_train_policy)


def _train_qnet_options(qnet: argparse.ArgumentParser) -> None:
    """``annotate train-qnet``: QNet on the masks of every iteration of simulated loops."""
    qnet.add_argument(
        "--runs", type=_names, required=True, help="`annotate simulate` output folders, comma-separated"
    )
    qnet.add_argument("--videos", type=_names, default=None, help="train on these videos only (default: all)")
    qnet.add_argument(
        "--val-videos",
        type=_names,
        default=None,
        help="hold these videos out and report QNet's quality on them",
    )
    qnet.add_argument(
        "--loops",
        type=_names,
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
    _engine_options(qnet, defaults=True, clicks=False)
    qnet.add_argument("--out", required=True, help="QNet's safetensors file")
    qnet.set_defaults(func=_train_qnet)


#: The ``annotate`` commands: name → the function that adds its options, and its help.
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], str]] = {
    "simulate": (
        _simulate_options,
        "run the loop with a simulated annotator on data with ground truth; write J&F-vs-hours curves",
    ),
    "propose": (
        _propose_options,
        "say which frame of which video a person should annotate next, and how (no ground truth)",
    ),
    "add": (
        _add_options,
        "add a mask PNG or a clicks JSON a person made, propagate again, save the loop state",
    ),
    "export": (
        _export_options,
        "write a session's current masks as a label store the datamodules train from",
    ),
    "serve": (
        _serve_options,
        "serve the annotation page: annotate in the browser while the loop proposes what next",
    ),
    "ml-backend": (
        _ml_backend_options,
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


def _diversity_options(parser: argparse.ArgumentParser) -> None:
    """What the ``diversity`` frame selector compares."""
    parser.add_argument(
        "--diversity-features",
        default="descriptor",
        help="features of the diversity selector: descriptor (weight-free, default), qnet (from `annotate "
        "train-qnet`) or timm:<model> (a pretrained image encoder), the last two with --diversity-weights",
    )
    parser.add_argument("--diversity-weights", default=None, help="the QNet or encoder weights file")


def _engine_options(
    parser: argparse.ArgumentParser, *, defaults: bool, engine: bool = True, clicks: bool = True
) -> None:
    """The propagation engine (``engine``), the click-to-mask model (``clicks``) and their options.

    The choices and the ``--<member>-<field>`` flags come from the registries and each member's
    ``Options`` (`frugalseg.options`). ``defaults``: the names default to ``flow`` and
    ``grabcut`` (else None: a session's own settings apply).
    """
    from frugalseg.active.objects.engines import ENGINES
    from frugalseg.active.objects.tools.click_models import CLICK_MODELS, DEFAULT_CLICK_MODEL
    from frugalseg.options import add_option_flags, registry_options

    families = [
        (option, registry, default, noun)
        for option, registry, default, noun, used in (
            ("engine", ENGINES, "flow", "propagation engine", engine),
            ("click_model", CLICK_MODELS, DEFAULT_CLICK_MODEL, "click-to-mask model", clicks),
        )
        if used
    ]
    nouns = " and ".join(noun for *_, noun in families)
    group = parser.add_argument_group(nouns + ("" if defaults else " (to start a session)"))
    for option, registry, default, noun in families:
        group.add_argument(
            f"--{option.replace('_', '-')}",
            default=default if defaults else None,
            choices=tuple(registry),
            help=f"the {noun} (default {default}); its options are the --<name>-… flags below",
        )
    add_option_flags(group, registry_options(registry for _, registry, *_ in families))
    # Unset SAM 2 options stay unset (None): SAM2Options' default, or a saved session's, applies.
    parser.set_defaults(sam2_default_config=None)


def _chosen(
    args: argparse.Namespace, option: str, registry: Any, *, per_process: bool = False
) -> dict[str, Any]:
    """The options the command line gives the member ``--engine`` / ``--click-model`` names.

    ``per_process``: a ``device`` left at ``auto`` is this process's own GPU (`process_device`).
    """
    import dataclasses

    from frugalseg.cli.label import process_device
    from frugalseg.options import given_options, options_class

    name = getattr(args, option)
    options_type = options_class(registry, name, option=option, noun=option.replace("_", " "))
    options = given_options(vars(args), name, options_type)
    if per_process and "device" in {f.name for f in dataclasses.fields(options_type)}:
        options["device"] = process_device(options.get("device", "auto"), args)
    return options


def _session_options(parser: argparse.ArgumentParser) -> None:
    """Options of a session's folder and, to start one, of its data set and engine."""
    parser.add_argument("--state", required=True, help="the session folder (made by the first `add`)")
    parser.add_argument(
        "--format", default=None, choices=FORMATS, help="data set layout (to start a session; default davis)"
    )
    parser.add_argument("--root", default=None, help="the data set folder (to start a session)")
    parser.add_argument("--split", default=None, help="split to annotate (default: the only or first one)")
    parser.add_argument(
        "--stride", type=count_option, default=None, help="use every n-th frame of each video"
    )
    parser.add_argument("--max-frames", type=count_option, default=None, help="use only the first n frames")
    _engine_options(parser, defaults=False)


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
    fmt = get_format(args.format, args.root)
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
    engine = get_loop_engine(args.engine, **_chosen(args, "engine", ENGINES, per_process=True))
    clicks = get_click_model(args.click_model, **_chosen(args, "click_model", CLICK_MODELS, per_process=True))
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


def _open(args: argparse.Namespace) -> AnnotationSession:
    from frugalseg.active.objects.session.session import AnnotationSession

    return AnnotationSession.open(
        args.state,
        format=args.format,
        root=args.root,
        split=args.split,
        stride=args.stride,
        max_frames=args.max_frames,
        engine=args.engine,
        click_model=args.click_model,
        options=vars(args),
    )


def _chosen_proposal_options(args: argparse.Namespace) -> ProposalOptions:
    """The proposal options of ``propose`` and ``serve``'s flags."""
    from frugalseg.active.objects.session.proposals import ProposalOptions

    return ProposalOptions(**{name: getattr(args, name) for name in ProposalOptions.__dataclass_fields__})


def _propose(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    session = _open(args)
    proposal = session.propose(_chosen_proposal_options(args), video=args.video)
    if proposal is None:
        print("nothing to propose: every frame is annotated")
        return 0
    if args.task:
        import shlex

        from frugalseg.active.objects.session.tasks import task_names, write_task

        masks = write_task(session, proposal, args.task, args.task_format)
        names = task_names(session, proposal.video)
        maps = " ".join(f"--map {shlex.quote(name + '=object')}" for name in names)
        print(
            f"task: {args.task} ({args.task_format}) holds frame {proposal.frame} of {proposal.video} "
            f"with {masks} masks" + (f" (`label import` of it: {maps})" if names else "")
        )
    if args.json:
        print(json.dumps(asdict(proposal)))
        return 0
    count = len(proposal.objects)
    what = (
        f"object{'s' if count > 1 else ''} {', '.join(map(str, proposal.objects))}"
        if count
        else "every object on it (this declares the video's objects)"
    )
    print(f"next: {proposal.video} frame {proposal.frame} ({proposal.frame_path}): {proposal.kind} of {what}")
    print(f"why: {proposal.reason}")
    made = "--clicks YOUR_CLICKS.json" if proposal.kind == "clicks" else "--mask YOUR_MASK.png"
    print(
        f"then: frugalseg annotate add --state {args.state}{_start_words(args)} --video {proposal.video} "
        f"--frame {proposal.frame} {made}"
        + (" (the mask the box tool of `frugalseg annotate serve` makes)" if proposal.kind == "box" else "")
    )
    return 0


def _start_words(args: argparse.Namespace) -> str:
    """The options that start ``args.state``'s session as named, while none is saved there ("" after).

    The first ``annotate add`` starts the session, so the ``then:`` line of a ``propose`` before it
    repeats the data set, its frames, the engine and click model and their options given.
    """
    import shlex
    from pathlib import Path

    from frugalseg.active.objects.session.session_settings import FAMILIES, SESSION_FILE
    from frugalseg.active.objects.tools.click_models import DEFAULT_CLICK_MODEL
    from frugalseg.options import given_options, option_flag, options_class

    if (Path(args.state) / SESSION_FILE).is_file():
        return ""
    words = []
    for name in ("format", "root", "split", "stride", "max_frames", "engine", "click_model"):
        if getattr(args, name) is not None:
            words += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    defaults = {"engine": "flow", "click_model": DEFAULT_CLICK_MODEL}  # what `new_settings` takes
    for option, (registry, noun) in FAMILIES.items():
        member = getattr(args, option) or defaults[option]
        options_type = options_class(registry, member, option=option, noun=noun)
        for field, value in given_options(vars(args), member, options_type).items():
            flag = option_flag(member, field)
            if isinstance(value, bool):
                words.append(flag if value else flag.replace("--", "--no-", 1))
            else:
                words += [flag, str(value)]
    return "".join(f" {shlex.quote(word)}" for word in words)


def _object_name(text: str) -> tuple[int, str]:
    """``ID=NAME`` of ``annotate add --name`` as (object id, name)."""
    number, _, name = text.partition("=")
    from frugalseg.active.objects.session.given import MAX_OBJECTS, is_object_id, object_name
    from frugalseg.errors import ConfigError

    obj = int(number) if number.strip().isdigit() else None
    if not is_object_id(obj):
        raise argparse.ArgumentTypeError(f"expected ID=NAME with an object id 1…{MAX_OBJECTS}, got {text!r}")
    assert obj is not None
    try:
        return obj, object_name(obj, name)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(err.problem) from err


def _add(args: argparse.Namespace) -> int:
    session = _open(args)
    given = session.read_given(
        args.video,
        args.frame,
        mask=args.mask,
        clicks=args.clicks,
        object_id=args.object,
        new_objects=args.new_objects,
        names=dict(args.name),
    )
    added = session.add(args.video, args.frame, given)
    record = added.record
    objects = ", ".join(map(str, added.objects))
    what = (
        f"object{'s' if len(added.objects) > 1 else ''} {objects}" if objects else "no object (none visible)"
    )
    # a mask booked as clicks without a click is the propagated mask taken back unchanged (`_given_mask`)
    kind = "propagated mask, unchanged," if args.mask is not None and record.kind == "clicks" else record.kind
    print(
        f"{added.video} frame {added.frame}: {kind} of {what} ({record.seconds:g} s); "
        f"{added.annotated_frames} of {added.num_frames} frames annotated, "
        f"{record.total_seconds / 3600:.3f} h in all"
    )
    for obj, (gained, lost) in added.changed.items():
        nothing = gained + lost <= 1
        note = "; the clicks changed nothing around them: draw that part (--mask)" if nothing else ""
        print(f"  object {obj}: +{gained} / -{lost} px against the mask the clicks corrected{note}")
    print(f"current masks of every frame: {added.masks}/")
    return 0


def _export(args: argparse.Namespace) -> int:
    """The store and tool files the page's Export writes (`export_with_tools`), to ``--out``."""
    from pathlib import Path

    from frugalseg.active.objects.session.exports import export_with_tools, tools_folder
    from frugalseg.active.objects.session.session import AnnotationSession
    from frugalseg.active.objects.session.session_settings import SESSION_FILE
    from frugalseg.autolabel.store import check_store_apart
    from frugalseg.errors import ConfigError

    if not (Path(args.state) / SESSION_FILE).is_file():
        raise ConfigError(
            "--state",
            f"{args.state}: no annotation session there (`annotate add` starts one); nothing to export",
        )
    out = Path(args.out)
    for folder in (out, tools_folder(out)):
        there = next(path for path in (folder, *folder.parents) if path.exists())
        if not there.is_dir():
            where = f"{there} is a file" if there == folder else f"{folder}: {there} is a file, not a folder"
            raise ConfigError("--out", f"{where}: name a new folder for the label store")
    session = AnnotationSession.open(args.state)
    # labels never go into the data set, as `label propagate` and `label import` refuse it
    for store in (args.out, str(tools_folder(out))):
        check_store_apart(store, session.settings.root)
    new = not out.exists() or not any(out.iterdir())
    try:
        written, frames, files = export_with_tools(session, out, new=new)
    except ConfigError as err:
        if err.option != "out":
            raise
        raise ConfigError("--out", err.problem) from err
    print(
        f"{written} labels written to {args.out} (train from it: data.labels.manual, data.labels.pseudo and, "
        f"for a person's clicks, data.labels.clicks={args.out}; each reads its own kind)"
    )
    print(
        f"tool files of {frames} frames, each object under its id and name, in {tools_folder(out)}/: "
        + ", ".join(path.name for path in files)
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from frugalseg.app import create_app

    token, service = _service(args)
    exports = Path(args.exports) if args.exports else Path(args.state) / "exports"
    app = create_app(service, token=token, exports=exports, max_upload=int(args.max_upload_mb * 2**20))
    _listen(
        app,
        args,
        lambda base: f"annotation page: {base}/" + (f"?token={token}" if token else ""),
    )
    return 0


def _ml_backend(args: argparse.Namespace) -> int:
    from frugalseg.app.ml_backend import create_ml_backend

    token, service = _service(args)
    app = create_ml_backend(service, token=token)
    auth = f" (Basic auth: any user, password {token})" if token else ""
    _listen(app, args, lambda base: f"Label Studio ML backend: {base}{auth}")
    return 0


def _service(args: argparse.Namespace) -> tuple[str | None, SessionService]:
    """The token (generated off the loopback when not given) and the session's service of ``serve``."""
    import secrets

    from frugalseg.app import SessionService

    token = args.token
    if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        token = secrets.token_urlsafe(18)
    return token, SessionService(_open(args), _chosen_proposal_options(args))


def _listen(app: Any, args: argparse.Namespace, address: Callable[[str], str]) -> None:
    """Serve ``app`` on ``--host``/``--port``, printing ``address(base URL)`` once it listens."""
    import socket

    import uvicorn

    from frugalseg.errors import ConfigError

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    try:  # bound here, so that a busy port is a clear error and the printed address is already served
        listener = socket.create_server((args.host, args.port), family=family)
    except OSError as err:
        raise ConfigError("port", f"cannot listen on {args.host} port {args.port}: {err.strerror}") from err
    port = listener.getsockname()[1]
    # every interface (0.0.0.0, ::) is no address a browser opens: the machine's name is
    shown = socket.gethostname() if args.host in ("0.0.0.0", "::") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    print(address(f"http://{shown}:{port}"), flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])


def _train_policy(args: argparse.Namespace) -> int:
    import numpy as np

    from frugalseg.active.objects.choosing.type_policies import FEATURES
    from frugalseg.active.objects.simulation.annotation_types import ANNOTATION_TYPES
    from frugalseg.active.objects.simulation.training_samples import run_samples
    from frugalseg.active.objects.tools.click_models import CLICK_MODELS, get_click_model
    from frugalseg.lightning_modules.type_policy import fit_type_gain
    from frugalseg.zoo import save_type_gain

    clicks = get_click_model(args.click_model, **_chosen(args, "click_model", CLICK_MODELS))
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

    engine = get_loop_engine(args.engine, **_chosen(args, "engine", ENGINES))
    check_run_engine(args.runs, engine)
    return engine
