"""`frugalseg zoo …`: the models and their weights.

List the registered models and published weights, publish trained students, verify published
weights, convert official ones.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frugalseg.cli.options import LazyParser, count_option

if TYPE_CHECKING:
    from rich.table import Table

OUT_HELP = (
    "checkpoints folder (default: $FRUGALSEG_CHECKPOINTS, else ./checkpoints unless it is frugalseg's own, "
    "as in a clone: then name it)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``zoo`` group (``publish``, ``list``, ``verify``, ``convert``) to the tool parser."""
    group = subparsers.add_parser("zoo", help="list models and weights; publish, verify and convert weights")
    commands = group.add_subparsers(dest="zoo_command", required=True, parser_class=LazyParser)
    # Each command's options are added when it is named: the zoo's registries import torch (`LazyParser`).
    commands.add_parser(
        "publish",
        help="write a Lightning checkpoint's student as <name>-<sha8>.safetensors with its card",
        fill=_publish_options,
    )
    commands.add_parser(
        "list",
        help="print the registered models and the published weights of checkpoints/index.json",
        fill=_list_options,
    )
    commands.add_parser(
        "verify",
        help="check the sha256 of published weights (a name, path, URL or hf-hub:ORG/NAME id)",
        fill=_verify_options,
    )
    commands.add_parser(
        "convert", help="convert an official checkpoint into published weights", fill=_convert_options
    )


def _default_out() -> str:
    from frugalseg.zoo import checkpoints_dir

    return (
        f"a checkpoints folder alone (default: {checkpoints_dir()}, then the packaged one; "
        "$FRUGALSEG_CHECKPOINTS or ./checkpoints first when set or present)"
    )


def _publish_options(publish: argparse.ArgumentParser) -> None:
    publish.add_argument("ckpt", help="Lightning checkpoint of `frugalseg fit` (read with weights_only=True)")
    publish.add_argument("--name", required=True, help="published name, e.g. streets-hrnetv2-w18s")
    publish.add_argument("--out", default=None, help=OUT_HELP)
    publish.add_argument(
        "--run-dir", default=None, help="the run's log folder with samples.json (default: the ckpt's ../..)"
    )
    publish.add_argument(
        "--metrics",
        default=None,
        help="metrics.csv of a CSVLogger (or a JSON dict) measured on these weights",
    )
    publish.add_argument("--metrics-command", default=None, help="the command that produced --metrics")
    publish.add_argument(
        "--train-command", default=None, help="the command that trained it (default: fit on the run's config)"
    )
    publish.add_argument(
        "--half", action="store_true", help="store floating tensors as float16 (half the size)"
    )
    publish.add_argument(
        "--hub-folder",
        default=None,
        help="write a Hugging Face Hub model repository here instead (model.safetensors, config.json, "
        "README.md); push it with `hf upload ORG/NAME DIR`",
    )
    publish.add_argument(
        "--repo-id", default=None, help="Hub repository ORG/NAME the README loads it by (with --hub-folder)"
    )
    publish.set_defaults(func=_publish)


def _list_options(listing: argparse.ArgumentParser) -> None:
    from frugalseg.zoo import TASKS

    listing.add_argument("--dir", default=None, help=_default_out())
    listing.add_argument("--filter", default=None, help="models whose name matches this fnmatch pattern")
    listing.add_argument("--task", default=None, choices=TASKS, help="models of this task only")
    listing.add_argument("--pretrained", action="store_true", help="models with published weights only")
    listing.set_defaults(func=_list)


def _verify_options(verify: argparse.ArgumentParser) -> None:
    verify.add_argument(
        "weights", nargs="+", help="published names, .safetensors/.ckpt/.pt paths, URLs or hf-hub: ids"
    )
    verify.add_argument("--dir", default=None, help=_default_out())
    verify.set_defaults(func=_verify)


def _convert_options(convert: argparse.ArgumentParser) -> None:
    from frugalseg.zoo import CONVERTERS

    convert.add_argument("file", help="the official checkpoint")
    convert.add_argument(
        "--from", dest="source", required=True, choices=sorted(CONVERTERS), help="its origin"
    )
    convert.add_argument("--out", default=None, help=OUT_HELP)
    convert.add_argument("--name", default=None, help="published name (default: <architecture>-official)")
    convert.add_argument("--arch", default=None, help="zoo architecture (default: read from the checkpoint)")
    convert.add_argument(
        "--num-classes", type=count_option, default=None, help="classes (default: from the classifier)"
    )
    convert.set_defaults(func=_convert)


def _publish(args: argparse.Namespace) -> int:
    import torch

    from frugalseg.errors import ConfigError
    from frugalseg.lightning_modules.publish import publish_checkpoint
    from frugalseg.zoo import HUB_FILES, INDEX_FILE, packaged_checkpoints, publish_target, read_index

    if args.hub_folder is not None and args.out is not None:
        raise ConfigError("--hub-folder", "writes a Hub repository, not into --out's index; give one of them")
    if args.repo_id is not None and args.hub_folder is None:
        raise ConfigError("--repo-id", "names the Hub repository of --hub-folder; give --hub-folder too")
    for option, folder in (("--out", args.out), ("--hub-folder", args.hub_folder)):
        if folder is not None:
            _check_folder_option(option, Path(folder))
    out = publish_target(args.out) if args.hub_folder is None else Path()
    index = out / INDEX_FILE
    earlier = (
        read_index(index.parent)["models"].get(args.name)
        if args.hub_folder is None and index.is_file()
        else None
    )
    earlier = earlier if isinstance(earlier, dict) else None  # a damaged entry is replaced, not read
    card = publish_checkpoint(
        args.ckpt,
        args.name,
        out=None if args.hub_folder is not None else out,
        metrics_file=args.metrics,
        metrics_command=args.metrics_command,
        run_dir=args.run_dir,
        dtype=torch.float16 if args.half else None,
        train_command=args.train_command,
        hub_folder=args.hub_folder,
        repo_id=args.repo_id,
    )
    if args.hub_folder is not None:
        folder = Path(args.hub_folder)
        print(f"wrote {card['name']} as a Hub repository: {folder}/ holds {', '.join(sorted(HUB_FILES))}")
        print(f"sha256 {card['sha256']}")
        print(f"push it: hf upload {args.repo_id or 'ORG/' + card['name']} {shlex.quote(str(folder))} .")
        return 0
    if out.resolve() == packaged_checkpoints().resolve():
        print(
            f"note: {out} is frugalseg's own checkpoints folder ({packaged_checkpoints()}), which ships with "
            "the package: give --out (or $FRUGALSEG_CHECKPOINTS) for a folder of your own",
            file=sys.stderr,
        )
    print(f"published {card['name']}: {out / card['file']} ({card['size_bytes'] / 1e6:.2f} MB)")
    print(f"sha256 {card['sha256']}")
    print(f"card {out / card['card']}; index {out / INDEX_FILE}")
    if earlier is not None and earlier.get("sha256") != card["sha256"]:
        print(f"it replaces the weights published as {card['name']} before (sha256 {earlier.get('sha256')})")
        replaced = out / str(earlier.get("card"))  # named by the replaced sha256, as its file
        kept = [
            p for p in (out / str(earlier.get("file")), replaced, replaced.with_suffix(".md")) if p.is_file()
        ]
        if kept:
            print(f"their files are kept (the index no longer names them): {', '.join(map(str, kept))}")
    for metric, value in card["metrics"].get("values", {}).items():
        print(f"{metric} = {value:.4f}")
    if card["metrics"].get("values") and card["metrics"].get("note"):
        print(f"({card['metrics']['note']})")
    return 0


def _check_folder_option(option: str, folder: Path) -> None:
    """Refuse ``folder`` (given as ``option``) where it, or its nearest parent that exists, is a file."""
    from frugalseg.data.files import nearest_existing
    from frugalseg.errors import ConfigError

    above = nearest_existing(folder)
    if not above.is_dir():
        raise ConfigError(option, f"{above} is a file, not a folder")


def _list(args: argparse.Namespace) -> int:
    from frugalseg.cli.terminal import PipedConsole
    from frugalseg.errors import ConfigError, WeightsError
    from frugalseg.zoo import INDEX_FILE, checkpoints_dirs, list_models, read_index

    directories = [Path(args.dir)] if args.dir else checkpoints_dirs()  # a local index, then the shipped one
    if args.dir and not Path(args.dir).exists():  # had said "no published weights in nodir/index.json"
        raise ConfigError("--dir", f"{args.dir}: folder does not exist")
    indexes = [(directory, read_index(directory)["models"]) for directory in directories]
    for directory, models in indexes:  # before printing anything
        for name, entry in models.items():
            problem = _entry_problem(entry)
            if problem is not None:
                raise WeightsError(directory / INDEX_FILE, f"entry {name!r}: {problem}")
    console = PipedConsole(width=200)
    weights = _weights_by_model(list_models(args.filter, task=args.task), indexes)
    if args.pretrained:
        weights = {name: published for name, published in weights.items() if published}
    console.print(_models_table(weights))
    listed = [(directory, models) for directory, models in indexes if models]
    if not listed:
        print(f"no published weights in {directories[0] / INDEX_FILE}")
    for directory, models in listed:
        console.print(_weights_table(directory, models))
    return 0


#: The fields `zoo list` shows of an index entry, with their JSON types.
_LISTED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "architecture": str,
    "num_classes": int,
    "num_frames": int,
    "size_bytes": int,
    "sha256": str,
}


def _entry_problem(entry: Any) -> str | None:
    """What keeps an index entry from being listed (a missing field, text metrics…), or None."""
    if not isinstance(entry, dict):
        return f"must be a JSON object, got {type(entry).__name__}"
    for field, kind in _LISTED_FIELDS.items():
        if field not in entry:
            return f"lacks field {field!r}"
        if not isinstance(entry[field], kind) or isinstance(entry[field], bool):
            return f"field {field!r} has the wrong type: {json.dumps(entry[field])[:60]}"
    metrics = entry.get("metrics", {})
    if not isinstance(metrics, dict):
        return f"field 'metrics' must map metric names to numbers, got {json.dumps(metrics)[:60]}"
    for metric, value in metrics.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"metric {metric!r} is {json.dumps(value)[:60]}, not a number"
    return None


def _weights_by_model(names: list[str], indexes: list[tuple[Path, dict[str, Any]]]) -> dict[str, list[str]]:
    """The published weights of each model: those shipped with it, then those the listed indexes hold."""
    from frugalseg.zoo import model_config

    weights = {name: list(model_config(name).weights) for name in names}
    for _, models in indexes:
        for published, entry in models.items():
            shown = weights.get(entry["architecture"])
            if shown is not None and published not in shown:
                shown.append(published)
    return weights


def _models_table(weights: dict[str, list[str]]) -> Table:
    """The models ``weights`` lists: name, task, frames, video or image, parameters, paper, their weights."""
    from rich.table import Table

    from frugalseg.zoo import model_config

    table = Table(title="models (frugalseg.zoo.list_models())")
    for column in ("name", "task", "frames", "input", "params (M)", "paper", "weights"):
        table.add_column(column, justify="right" if column in ("frames", "params (M)") else "left")
    for name, published in weights.items():
        config = model_config(name)
        table.add_row(
            name,
            config.task,
            str(config.num_frames),
            "video" if config.video else "image",
            "–" if config.param_count is None else f"{config.param_count:.1f}",
            config.paper,
            ", ".join(published) or "–",
        )
    return table


def _weights_table(directory: Path, models: dict[str, Any]) -> Table:
    """The published weights of a checkpoints folder's index."""
    from rich.table import Table

    from frugalseg.zoo import INDEX_FILE

    index = (directory / INDEX_FILE).absolute()
    shown = index.relative_to(Path.cwd()) if index.is_relative_to(Path.cwd()) else index
    table = Table(title=f"published weights ({shown})")
    for column in ("name", "architecture", "classes", "frames", "MB", "sha256", "metrics"):
        table.add_column(column, justify="right" if column in ("classes", "frames", "MB") else "left")
    for name, entry in models.items():
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in entry.get("metrics", {}).items())
        table.add_row(
            name,
            entry["architecture"],
            str(entry["num_classes"]),
            str(entry["num_frames"]),
            f"{entry['size_bytes'] / 1e6:.2f}",
            entry["sha256"][:8],
            metrics,
        )
    return table


def _verify(args: argparse.Namespace) -> int:
    """Check each weights' sha256 and say against what; exit 1 if any fails or no record says what it is."""
    from frugalseg.errors import WeightsError
    from frugalseg.zoo import HUB_PREFIX, list_models, resolve

    failed = 0
    for weights in args.weights:
        try:
            loaded = resolve(weights, args.dir)
        except WeightsError as err:
            failed += 1
            print(f"FAILED {err}" if str(err.path) == weights else f"FAILED {weights}: {err}")  # as given
            continue
        if loaded.verified and weights.startswith(HUB_PREFIX):
            state = f"sha256 {loaded.verified} matches the Hub's record" + (
                " and its card" if "sha256" in loaded.card else ""
            )
        elif loaded.verified:
            state = f"sha256 {loaded.verified} matches its card"
        else:
            failed += 1
            how = (
                "checkpoints of `frugalseg vos fit` are not published: they load by path as they are"
                if loaded.card.get("architecture") in list_models(task="vos")
                else "publish it with `frugalseg zoo publish` for one"
            )
            print(
                f"UNVERIFIED {weights} ({loaded.path}): {len(loaded.state_dict)} tensors load, but no card "
                f"records its sha256 to check it against ({how})"
            )
            continue
        print(f"ok {weights} ({loaded.path}): {len(loaded.state_dict)} tensors, {state}")
    return 1 if failed else 0


def _convert(args: argparse.Namespace) -> int:
    from frugalseg.zoo import convert_checkpoint, publish_target

    out = publish_target(args.out)
    _check_folder_option("--out", out)
    card, report = convert_checkpoint(
        args.source, args.file, out, name=args.name, architecture=args.arch, num_classes=args.num_classes
    )
    print(report.summary())
    print(f"wrote {out / card['file']} ({card['size_bytes'] / 1e6:.2f} MB), sha256 {card['sha256']}")
    print(f"load it with {_load_hint(out, card)}")
    return 0


def _load_hint(out: Path, card: dict[str, Any]) -> str:
    """How to load weights written into ``out``: by name where it is searched, else by path."""
    from frugalseg.zoo import checkpoints_dirs

    architecture = card["architecture"]
    if out.resolve() in [folder.resolve() for folder in checkpoints_dirs()]:
        return f"get_model({architecture!r}, weights={card['name']!r})"
    return (
        f"get_model({architecture!r}, weights={str(out / card['file'])!r}), or by its name "
        f"{card['name']!r} with FRUGALSEG_CHECKPOINTS={out} set"
    )
