"""`frugalseg annotate propose|add|export|serve|ml-backend`: the loop of a person, on data without truth.

``propose`` says which frame to annotate next and how, ``add`` takes in the mask or clicks the person made
and propagates again, ``export`` writes the session's masks as a label store and tool files; ``serve``
serves the annotation page over the same session, and ``ml-backend`` serves it to Label Studio.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frugalseg.cli.annotate_options import FORMATS, diversity_options, engine_options
from frugalseg.cli.options import count_option, port_option, seed_option, typed_text

if TYPE_CHECKING:
    from frugalseg.active.objects.session.proposals import ProposalOptions
    from frugalseg.active.objects.session.session import AnnotationSession
    from frugalseg.active.propagation import FrameReady
    from frugalseg.app import SessionService


def propose_options(propose: argparse.ArgumentParser) -> None:
    """``annotate propose``: the loop of a person, on data without truth (with ``add`` and ``export``)."""
    from frugalseg.interop.formats import WRITERS

    session_options(propose)
    propose.add_argument("--video", default=None, help="propose on this video only (default: any)")
    _proposal_options(propose)
    propose.add_argument("--json", action="store_true", help="print the proposal as one JSON object")
    propose.add_argument(
        "--task",
        help="also write the proposed frame with its current masks as a file an annotation tool opens",
    )
    propose.add_argument(
        "--task-format",
        choices=WRITERS,
        help="the tool format of --task (default: label-studio for a .json file, cvat-video for .xml)",
    )
    propose.add_argument(
        "--frames-out",
        type=Path,
        help="with --task: also write its frame here as an image file and name it so in the task (a frame "
        "inside a video file as a PNG): the folder to serve as Label Studio's local files root",
    )
    propose.set_defaults(func=flagged(_propose))


def add_options(add: argparse.ArgumentParser) -> None:
    """``annotate add``: a person's mask or clicks."""
    session_options(add)
    add.add_argument("--video", required=True, help="the video annotated")
    add.add_argument(
        "--frame", type=int, required=True, help="the frame annotated (its number in the sequence)"
    )
    made = add.add_mutually_exclusive_group(required=True)
    made.add_argument("--mask", help="PNG of object ids (palette or grey, 0 background), of the frame's size")
    made.add_argument(
        "--clicks", help='JSON {"clicks": [{"object": 1, "x": 10, "y": 20, "positive": true}, …]}'
    )
    made.add_argument(
        "--box",
        type=_box,
        metavar="X0,Y0,X1,Y1",
        help="the box object --object lies in (pixels, corners included): the click model draws its mask, "
        "as the page's box tool does; the frame's other objects are kept",
    )
    add.add_argument(
        "--box-clicks", help="with --box: a clicks JSON of the corrective clicks made since the box"
    )
    add.add_argument(
        "--object",
        type=count_option,
        default=None,
        help="the --mask shows this one object (every non-zero pixel), or the object of a label store's "
        "--clicks (`label import` of a tool's points) that name none",
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
    add.set_defaults(func=flagged(_add))


def export_options(export: argparse.ArgumentParser) -> None:
    """``annotate export``: the session's masks as a label store."""
    export.add_argument("--state", required=True, help="the session folder")
    export.add_argument(
        "--out", required=True, help="the label store folder (a new one after more additions)"
    )
    export.set_defaults(func=flagged(_export))


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
        help="annotation type policy (default: auto, the cheapest type expected to leave the frame at IoU "
        "0.9): " + ", ".join(n for n, c in POLICIES.items() if not c.needs_ground_truth),
    )
    parser.add_argument(
        "--policy", default=None, help="weights of the 'learned' type policy (from `annotate train-policy`)"
    )
    diversity_options(parser)
    parser.add_argument("--seed", type=seed_option, default=0, help="seed of the random selector and policy")


def serve_options(serve: argparse.ArgumentParser) -> None:
    """``annotate serve``: the annotation page, a local web app over a session."""
    session_options(serve)
    _proposal_options(serve)
    _listen_options(serve, 8765, "secret every request must carry")
    serve.add_argument(
        "--exports", default=None, help="folder of the label stores Export writes (default: <state>/exports)"
    )
    serve.add_argument(
        "--max-upload-mb", type=float, default=8.0, help="largest upload or request body in MB (default 8)"
    )
    serve.set_defaults(func=_serve)


def ml_backend_options(backend: argparse.ArgumentParser) -> None:
    """``annotate ml-backend``: the session as a Label Studio ML backend."""
    session_options(backend)
    _proposal_options(backend)
    _listen_options(backend, 9090, "Basic-auth password Label Studio must send")
    backend.set_defaults(func=_ml_backend)


def _listen_options(parser: argparse.ArgumentParser, port: int, token: str) -> None:
    """``--host``, ``--port`` (default ``port``) and ``--token`` (what ``token`` is) of a served app."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_option, default=port, help=f"port (default {port}; 0: any free one)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"{token} (generated and printed for a --host other than 127.0.0.1 when not given)",
    )


def session_options(parser: argparse.ArgumentParser) -> None:
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
    engine_options(parser, defaults=False)


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


#: The tool format of a task file named by its suffix alone.
_TASK_FORMAT_BY_SUFFIX = {".json": "label-studio", ".xml": "cvat-video"}


def _task_format(task: str, given: str | None) -> str:
    """The tool format of ``--task``: ``given``, else the one its suffix names; a mismatch refused."""
    from frugalseg.errors import ConfigError
    from frugalseg.interop.formats import WRITERS

    suffix = Path(task).suffix.lower()
    if given is None:
        if suffix not in _TASK_FORMAT_BY_SUFFIX:
            raise ConfigError("--task", f"{task}: name its tool with --task-format ({', '.join(WRITERS)})")
        return _TASK_FORMAT_BY_SUFFIX[suffix]
    wanted = WRITERS[given].format.suffix
    if wanted and suffix != wanted:
        raise ConfigError("--task", f"{task}: --task-format {given} writes a {wanted} file")
    return given


def flagged(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command``, its session's errors named by their flags (``--frame``: the session names ``frame``)."""
    from frugalseg.errors import option_paths

    def run(args: argparse.Namespace) -> int:
        flags = ("frame", "video", "state", "object", "root", "frames", "types", "policy", "name")
        with option_paths(**{name: f"--{name}" for name in flags}, budget_hours="--budget-hours"):
            return command(args)

    return run


def _propose(args: argparse.Namespace) -> int:
    import json
    import shlex
    from dataclasses import asdict

    from frugalseg.errors import ConfigError

    if args.frames_out is not None and not args.task:
        raise ConfigError("--frames-out", "writes the frame of a --task: give --task too")
    if args.task_format is not None and not args.task:
        raise ConfigError("--task-format", "is the tool format of a --task: give --task too")
    task_format = _task_format(args.task, args.task_format) if args.task else None
    session = _open(args)
    for video in [args.video] if args.video else session.videos():  # masks/ a killed `add` left half-written
        with _propagation_bar(session, video) as on_frame:
            session.finish(video, on_frame)
    proposal = session.propose(_chosen_proposal_options(args), video=args.video)
    if proposal is None:
        print("null" if args.json else "nothing to propose: every frame is annotated")
        return 0
    if args.task:
        from frugalseg.active.objects.session.tasks import write_task

        assert task_format is not None
        masks = write_task(session, proposal, args.task, task_format, frames_out=args.frames_out)
        config = ""
        if task_format == "label-studio":
            from frugalseg.interop.label_studio import config_path

            config = f"; the labeling config of a Label Studio project for it: {config_path(args.task)}"
        print(  # beside --json's one JSON object, on stderr
            f"task: {args.task} ({task_format}) holds frame {proposal.frame} of {proposal.video} "
            f"with {masks} object mask{'s' if masks != 1 else ''}{config}",
            file=sys.stderr if args.json else sys.stdout,
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
    made = {"clicks": "--clicks YOUR_CLICKS.json", "box": "--box X0,Y0,X1,Y1 --object ID"}
    print(
        f"then: frugalseg annotate add --state {shlex.quote(args.state)}{_start_words(args)} "
        f"--video {shlex.quote(proposal.video)} --frame {proposal.frame} "
        + made.get(proposal.kind, "--mask YOUR_MASK.png")
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
    number, _, name = typed_text(text).partition("=")
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


def _names(pairs: list[tuple[int, str]]) -> dict[int, str]:
    """``--name ID=NAME`` pairs as object → name; `ConfigError` for an object named twice otherwise."""
    from frugalseg.errors import ConfigError

    names: dict[int, str] = {}
    for obj, name in pairs:
        if names.setdefault(obj, name) != name:
            twice = f"object {obj} is named twice ({names[obj]!r} and {name!r}): give one"
            raise ConfigError("--name", twice)
    return names


def _box(text: str) -> tuple[int, int, int, int]:
    """``X0,Y0,X1,Y1`` as four whole numbers (pixels, corners included, the first corner top left)."""
    parts = text.split(",")
    if len(parts) != 4 or not all(part.strip().lstrip("-").isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1 in whole pixels, got {text!r}")
    x0, y0, x1, y1 = (int(part) for part in parts)
    if x1 < x0 or y1 < y0:
        raise argparse.ArgumentTypeError(f"the box {text} ends before it starts (X1 ≥ X0 and Y1 ≥ Y0)")
    return x0, y0, x1, y1


def _boxed(session: AnnotationSession, args: argparse.Namespace) -> Any:
    """The annotation of object ``--object`` drawn from ``--box`` and its clicks."""
    from frugalseg.active.objects.session.given import read_clicks
    from frugalseg.errors import ConfigError

    if args.object is None:
        raise ConfigError("--object", "names the object the --box draws (its id; 1 for a video's first)")
    path, (height, width) = session.frame_shape(args.video, args.frame)
    x0, y0, x1, y1 = box = args.box
    if x0 < 0 or y0 < 0 or x1 >= width or y1 >= height:  # as the page's box tool: inside the frame
        raise ConfigError(
            "--box",
            f"{','.join(map(str, box))} reaches past the {width}×{height} frame {path.name} "
            f"(x 0…{width - 1}, y 0…{height - 1}, corners included)",
        )
    clicks = read_clicks(args.box_clicks, (height, width)) if args.box_clicks else []
    return session.box_given(
        args.video,
        args.frame,
        box,
        args.object,
        clicks,
        names=_names(args.name),
        new_objects=args.new_objects,
    )


@contextlib.contextmanager
def _propagation_bar(session: AnnotationSession, video: str) -> Iterator[FrameReady]:
    """A bar of the frames of ``video`` a propagation in the block makes, on a terminal (long videos).

    The block is given the listener to pass on (`AnnotationSession.finish`'s ``on_frame``).
    """
    from rich.console import Console

    from frugalseg.autolabel.runs import labelling_progress

    console = Console(stderr=True)
    with labelling_progress("propagating", "frames", enabled=console.is_terminal, console=console) as bar:
        task = bar.add_task(video, total=len(session.frames(video)))
        yield lambda *_: bar.advance(task)


def _add(args: argparse.Namespace) -> int:
    session = _open(args)
    if args.box_clicks is not None and args.box is None:
        from frugalseg.errors import ConfigError

        raise ConfigError("--box-clicks", "are the clicks made since a --box: give --box too")
    if args.box is not None:
        given = _boxed(session, args)
    else:
        given = session.read_given(
            args.video,
            args.frame,
            mask=args.mask,
            clicks=args.clicks,
            object_id=args.object,
            new_objects=args.new_objects,
            names=_names(args.name),
        )
    with _propagation_bar(session, args.video) as on_frame:
        added = session.add(args.video, args.frame, given, on_frame=on_frame)
    record = added.record
    drawn = [args.object] if args.box is not None else added.objects  # a box keeps the frame's others
    objects = ", ".join(map(str, drawn))
    what = f"object{'s' if len(drawn) > 1 else ''} {objects}" if objects else "no object (none visible)"
    kept = [obj for obj in added.objects if obj not in drawn]
    if kept:
        what += f", object{'s' if len(kept) > 1 else ''} {', '.join(map(str, kept))} kept"
    # a mask booked as clicks without a click is the propagated mask taken back unchanged (`_given_mask`)
    kind = "propagated mask, unchanged," if args.mask is not None and record.kind == "clicks" else record.kind
    path, _ = session.frame_shape(added.video, added.frame)
    print(
        f"{added.video} frame {added.frame} ({path.name}): {kind} of {what} ({record.seconds:g} s); "
        f"{added.annotated_frames} of {added.num_frames} frames annotated, "
        f"{record.total_seconds / 3600:.3f} h on this video"
    )
    for obj, (gained, lost) in added.changed.items():
        nothing = gained + lost <= 1
        note = "; the clicks changed nothing around them: draw that part (--mask)" if nothing else ""
        print(f"  object {obj}: +{gained} / -{lost} px against the mask the clicks corrected{note}")
    print(f"current masks of every frame: {added.masks}/")
    return 0


def _export(args: argparse.Namespace) -> int:
    """The store and tool files the page's Export writes (`export_with_tools`), to ``--out``.

    A video whose masks cannot be propagated is exported as far as it was annotated, with a warning
    (`AnnotationSession.export_states`). The last line is the ``label import`` of an edited tool file
    (the names the person gave are objects' names on the session's object data set: no ``--map``).
    """
    from pathlib import Path

    from frugalseg.active.objects.session.exports import export_with_tools, import_command, tools_folder
    from frugalseg.active.objects.session.session import AnnotationSession
    from frugalseg.active.objects.session.session_settings import SESSION_FILE
    from frugalseg.autolabel.store import check_store_apart, check_store_folder
    from frugalseg.errors import ConfigError
    from frugalseg.interop.label_studio import config_path

    if not (Path(args.state) / SESSION_FILE).is_file():
        raise ConfigError(
            "--state",
            f"{args.state}: no annotation session there (`annotate add` starts one); nothing to export",
        )
    out = Path(args.out)
    session = AnnotationSession.open(args.state)
    # labels never go into the data set, as `label propagate` and `label import` refuse it
    for store in (args.out, str(tools_folder(out))):
        check_store_apart(store, session.settings.root)
    check_store_folder(out)
    check_store_folder(tools_folder(out), store=False)
    new = not out.exists() or not any(out.iterdir())
    states = session.export_states()
    try:
        written, frames, files = export_with_tools(session, out, new=new, states=states)
    except ConfigError as err:
        if err.option != "out":
            raise
        raise ConfigError("--out", err.problem) from err
    for video, why in sorted(session.unpropagated.items()):
        annotated = len(states[video].annotated)
        print(
            f"warning: {video}: its masks could not be propagated ({why}); only its {annotated} annotated "
            f"frame{'s' if annotated != 1 else ''} exported",
            file=sys.stderr,
        )
    print(
        f"{written} labels written to {args.out} (train from it: data.labels.manual, data.labels.pseudo and, "
        f"for a person's clicks, data.labels.clicks={args.out}; each reads its own kind)"
    )
    print(
        f"tool files of {frames} frames, each object under its id and name, in {tools_folder(out)}/: "
        + ", ".join(path.name for path in files)
    )
    tasks = next((path for path in files if path.name == "label-studio.json"), None)
    if tasks is not None:
        print(f"the labeling config of a Label Studio project for its tasks: {config_path(tasks)}")
    back = import_command(session, out)
    print(f"once edited in a tool, back to a label store (another tool file: its --tool): {back}")
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
    """The token (generated off the loopback when not given) and the session's service of ``serve``.

    Every video's frames are checked first (`AnnotationSession.check_frames`).
    """
    import secrets

    from frugalseg.app import SessionService

    token = args.token
    if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        token = secrets.token_urlsafe(18)
    session = _open(args)
    session.check_frames()  # a truncated frame or one of another size: refused before the page serves
    return token, SessionService(session, _chosen_proposal_options(args))


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
