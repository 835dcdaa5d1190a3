"""jsonargparse's refusals, as LightningCLI's parser prints them, in one line naming the option and its file.

jsonargparse explains a refused value or option in a multi-line dump of every type a union allows; a user
needs the option, the value and, for a misspelt one, the file that holds it and the nearest accepted name.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml  # type: ignore[import-untyped]
from lightning.pytorch.cli import LightningArgumentParser


class ShortErrorParser(LightningArgumentParser):
    """LightningCLI's parser whose error is the tip and one line, not the 120-line usage before them.

    An option a ``--config`` file holds that no parser accepts is named with that file, and with the
    accepted option nearest its spelling (``data.loader.batchsize`` → ``data.loader.batch_size``).
    """

    #: The ``--config`` files of the command line, set as it is parsed (`TaskCLI.parse_arguments`).
    config_files: Sequence[str] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # never abbreviated, as in every tool's parser: ``--trainer.max_epoch`` had set max_epochs silently
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def print_usage(self, file: Any = None) -> None:
        """Nothing: ``--help`` lists the options, and the tip after it says so."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        """The parser's error; an unaccepted option named with its config file and the nearest one."""
        unknown = re.search(
            r"(?:Group '([^']+)' )?does not accept option '([^']+)'|unrecognized arguments: --([^\s=]+)",
            message,
        )
        nested = re.search(_CLASS_OPTION, message, re.S)
        value = re.search(_CLASS_VALUE, message, re.S)
        if unknown:
            parser = getattr(ex, "subcommand_parser", None) or self
            key = f"{unknown[1]}.{unknown[2]}" if unknown[1] else unknown[2] or unknown[3]
            message += _unaccepted_option_hint(key, parser, self.config_files)
        elif nested:
            message = _unaccepted_init_arg(nested[1], nested[2], nested[3], self.config_files)
        elif value:
            message = _refused_init_value(*value.groups())
        elif reason := re.search(_CLASS_VALUE_REASON, message, re.S):
            message = f"{reason[1]}.{reason[2]}: {reason[3].strip()}"
        super().error(message, ex)


#: jsonargparse's multi-line refusal of a class's argument (``Parser key "model": … Union subtypes …``).
_CLASS_OPTION = (
    r'Parser key "([^"]+)":.*?given class_path \'([^\']+)\':\s*Option \'([^\']+)\' is not accepted'
)


#: jsonargparse's multi-line refusal of a class argument's value (``Parser key "model": … Parser key
#: "student_args": … Subtypes: [<class 'dict'>, …] … Given value: {weights:x}``).
_CLASS_VALUE = (
    r'Parser key "([^"]+)":.*?given class_path \'([^\']+)\':\s*Parser key "([^"]+)":.*?Subtypes: \[([^\n]*)\]'
    r".*?Given value: ([^\n]*)"
)


#: jsonargparse's refusal of a class argument's value of one type, its reason on the line after the key.
_CLASS_VALUE_REASON = (
    r'Parser key "([^"]+)":.*?given class_path \'[^\']+\':\s*Parser key "([^"]+)":\s*\n\s*'
    r"(?!Does not validate)([^\n]+)"
)


def _refused_init_value(group: str, class_path: str, argument: str, subtypes: str, given: str) -> str:
    """One line for a value of a class's argument that is of none of its types (``--model.student_args``)."""
    # each type as jsonargparse writes it: <class 'dict'>, or a generic such as dict[str, str | int]
    names = re.findall(r"<class '(?:[\w.]*\.)?(\w+)'>|(?:^|, )(\w+)\[", subtypes)
    types = " or ".join("None" if name == "NoneType" else name for pair in names for name in pair if name)
    hint = ""
    if "dict" in types and re.search(r"\{[^}]*\w:\S", given):  # YAML reads {a:b} as one word, not a: b
        hint = "; a YAML mapping needs a space after each colon, as in '{weights: ID}'"
    name = class_path.rpartition(".")[2]
    return f"{group}.{argument}: {name} takes {types} there, got {given!r}{hint}"


def _unaccepted_init_arg(group: str, class_path: str, option: str, config_files: Sequence[str]) -> str:
    """One line for an argument the class of ``group`` (``model``) does not take, with its nearest one."""
    module, _, name = class_path.rpartition(".")
    try:
        accepted = list(inspect.signature(getattr(importlib.import_module(module), name)).parameters)
    except (ImportError, AttributeError, TypeError, ValueError):
        accepted = []
    held = [
        path for path in config_files if {f"{group}.{option}", f"{group}.init_args.{option}"} & _keys_of(path)
    ]
    argument, _, below = option.partition(".")  # ``losess.fine``: the argument is ``losess``
    nearest = difflib.get_close_matches(argument, accepted, n=1, cutoff=0.7)
    parts = ([f"in {', '.join(held)}"] if held else []) + (
        [f"did you mean {group}.{'.'.join([nearest[0], *filter(None, [below])])}?"] if nearest else []
    )
    hint = f" ({'; '.join(parts)})" if parts else ""
    return f"{group}.{option}: {name} takes no argument {argument!r}{hint}"


def _keys_of(path: str) -> set[str]:
    """The dotted keys of a YAML config file (`_dotted_keys`); none for a file that cannot be read."""
    try:
        return _dotted_keys(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, yaml.YAMLError):
        return set()


def _unaccepted_option_hint(key: str, parser: Any, config_files: Sequence[str]) -> str:
    """`` (in FILE; did you mean 'NEAREST'?)`` for an unaccepted option ``key``, as much as is known."""
    held = [path for path in config_files if key in _keys_of(path)]
    subcommands = parser._subcommands_action
    parsers = [parser, *(subcommands.choices.values() if subcommands is not None else ())]
    accepted = [action.dest for each in parsers for action in each._actions if isinstance(action.dest, str)]
    nearest = difflib.get_close_matches(key, accepted, n=1, cutoff=0.8)
    parts = ([f"in {', '.join(held)}"] if held else []) + (
        [f"did you mean {nearest[0]!r}?"] if nearest else []
    )
    return f" ({'; '.join(parts)})" if parts else ""


def _dotted_keys(data: Any, prefix: str = "") -> set[str]:
    """Every key of a nested mapping, dotted (``data.loader.batch_size``), the mappings' own too."""
    if not isinstance(data, dict):
        return set()
    keys = set()
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        keys |= {dotted, *_dotted_keys(value, f"{dotted}.")}
    return keys
