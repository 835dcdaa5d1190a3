"""`frugalseg configs …`: the configs that ship inside the package, for a user without the repository.

``frugalseg configs list`` prints their names and what each trains; ``frugalseg configs copy NAME DEST``
writes one out to edit (``all``: every one, into a folder). A ``--config`` of ``fit``, ``validate``,
``test``, ``predict`` and ``vos`` that names no file here but names a shipped config
(``configs/demo.yaml``, ``demo.yaml`` or ``demo``) reads the shipped one (`with_shipped_configs`), so
the README's commands work from a wheel as from a clone.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import textwrap
from collections.abc import Sequence
from pathlib import Path

from frugalseg.data.files import nearest_existing
from frugalseg.data.io import write_bytes_atomic
from frugalseg.errors import ConfigError

logger = logging.getLogger(__name__)

#: Where the configs ship (the repository's ``configs/`` is a link to it).
SHIPPED = Path(__file__).resolve().parents[1] / "configs"


def shipped_configs() -> list[str]:
    """The names of the shipped configs (``demo.yaml``, ``published/streets_hrnetv2_w18s.yaml`` …), sorted."""
    return sorted(path.relative_to(SHIPPED).as_posix() for path in SHIPPED.rglob("*.yaml"))


def shipped_config(name: str) -> Path | None:
    """The shipped config ``name`` names (``configs/`` before it and ``.yaml`` after optional), or None."""
    name = name.removeprefix("./").removeprefix("configs/")
    for candidate in (name, f"{name}.yaml"):
        if candidate in shipped_configs():
            return SHIPPED / candidate
    return None


def with_shipped_configs(words: Sequence[str]) -> list[str]:
    """``words`` with each ``--config`` that names no file here but a shipped config set to that config."""
    words = list(words)
    for i, word in enumerate(words):
        flag, equals, value = word.partition("=")
        at = i if equals else i + 1
        if flag not in ("--config", "-c") or at == len(words):
            continue
        value = value if equals else words[at]
        shipped = None if Path(value).is_file() else shipped_config(value)
        if shipped is not None:
            logger.info("--config %s: no such file here; reading the shipped %s", value, shipped)
            words[at] = f"{flag}={shipped}" if equals else str(shipped)
    return words


#: Words ending in a full stop that end no sentence (``eq. 2``, ``Hu et al.``).
ABBREVIATIONS = ("eq.", "al.", "e.g.", "i.e.", "vs.", "cf.", "Fig.", "Tab.", "approx.")


def _summary(path: Path) -> str:
    """The first sentence of a config's header comment (what it trains), whole, over all its lines."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip("# ") if line.startswith("#") else None
        if not text:  # the header's first paragraph ends at a blank comment line or at the YAML
            if words or text is None:
                break
            continue
        for word in text.split():
            words.append(word)
            if word[-1] in ".!?" and word.lstrip("([") not in ABBREVIATIONS:
                return " ".join(words)
    return " ".join(words).rstrip(":")


def _list(args: argparse.Namespace) -> int:
    width = max(80, shutil.get_terminal_size().columns)
    for name in shipped_configs():
        print(
            textwrap.fill(
                _summary(SHIPPED / name), width, initial_indent=f"{name:<40} ", subsequent_indent=" " * 41
            )
        )
    return 0


def _copy(args: argparse.Namespace) -> int:
    """Write one shipped config to a file or folder, or ``all`` of them into a folder (as they are laid out).

    A ``dest`` that is a folder, or ends with ``/``, is a folder (made when missing).
    """
    folder = args.dest.endswith(("/", os.sep)) or Path(args.dest).is_dir() or args.name == "all"
    if args.name == "all":
        copies = [(SHIPPED / name, Path(args.dest) / name) for name in shipped_configs()]
    else:
        source = shipped_config(args.name)
        if source is None:
            raise ConfigError(
                "configs copy",
                f"no shipped config {args.name!r}; choose from all, {', '.join(shipped_configs())}",
            )
        copies = [(source, Path(args.dest) / source.name if folder else Path(args.dest))]
    for _, target in copies:
        if target.exists() and not args.force:
            raise ConfigError("configs copy", f"{target}: already exists (--force overwrites it)")
        above = nearest_existing(target.parent)
        if not above.is_dir():
            raise ConfigError("configs copy", f"{above} is a file, not a folder: {target} cannot be written")
    for source, target in copies:
        write_bytes_atomic(target, source.read_bytes())
        print(target)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``configs`` group (``list``, ``copy``) to the tool parser."""
    group = subparsers.add_parser("configs", help="list the shipped configs, or copy one out to edit")
    commands = group.add_subparsers(dest="configs_command", required=True)
    listing = commands.add_parser("list", help="print each shipped config's name and what it trains")
    listing.set_defaults(func=_list)
    copy = commands.add_parser("copy", help="write a shipped config to a file or folder")
    copy.add_argument("name", help="a name `configs list` prints (demo.yaml, or demo), or all")
    copy.add_argument(
        "dest", nargs="?", default=".", help="file or folder (ending with /) to write it to (default: .)"
    )
    copy.add_argument("--force", action="store_true", help="overwrite a file that is there")
    copy.set_defaults(func=_copy)
