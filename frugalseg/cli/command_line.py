"""A Lightning command line's words and ``--config`` files, checked before jsonargparse reads them.

The ``--config`` files named (`config_paths`) are read as UTF-8 whatever the locale, and refused in one
line when jsonargparse could not read them (`check_config_files`); data options that moved to a group
are refused with where they went (`refuse_moved_options`).
"""

from __future__ import annotations

import codecs
import locale
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from frugalseg.errors import ConfigError


def command_words(args: Any) -> list[str]:
    """The command line LightningCLI parses: ``args`` when given as words, else ``sys.argv``."""
    if args is None:
        return sys.argv[1:]
    return list(args) if isinstance(args, list | tuple) else []


def option_values(words: Sequence[str], option: str) -> list[str]:
    """The values ``words`` give ``option`` (``--config a.yaml``, ``--config=a.yaml``)."""
    values = [words[i + 1] for i, word in enumerate(words[:-1]) if word == option]
    return values + [word.split("=", 1)[1] for word in words if word.startswith(f"{option}=")]


def config_paths(words: Sequence[str]) -> list[str]:
    """The ``--config`` (``-c``) files named in ``words``."""
    return option_values(words, "--config") + option_values(words, "-c")


def refuse_moved_options(words: Sequence[str], moved: Mapping[str, str]) -> None:
    """Refuse a ``data`` option that moved into a group (config file, ``--data`` file or mapping, flag).

    ``moved`` maps the old key to the new one (``batch_size`` → ``loader.batch_size``); jsonargparse
    would only say that the old key is not expected. An old key that is now a group's name (``recipe``)
    is old only with a plain value: the group takes a mapping or a file. Config files are read after
    `check_config_files`.
    """
    for path in config_paths(words):
        if Path(path).is_file():
            content = yaml.safe_load(config_text("--config", path)) or {}
            _refuse_flat_block(content.get("data"), moved, "--config", f"{path}: ")
    for value in option_values(words, "--data"):
        if Path(value).is_file():
            _refuse_flat_block(_yaml(config_text("--data", value)), moved, "--data", f"{value}: ")
        else:
            _refuse_flat_block(_yaml(value), moved, "--data", "")
    for index, word in enumerate(words):
        key, equals, value = word.partition("=")
        key = key.removeprefix("--data.")
        if not word.startswith("--data.") or key not in moved:
            continue
        value = value if equals else (words[index + 1] if index + 1 < len(words) else "")
        if not Path(value).is_file() and not isinstance(_yaml(value), dict):
            raise ConfigError(f"--data.{key}", _moved_message([key], moved))


def _refuse_flat_block(data: Any, moved: Mapping[str, str], option: str, where: str) -> None:
    """Refuse a ``data`` mapping that names old keys with plain values."""
    if isinstance(data, dict):
        old = [key for key, value in data.items() if key in moved and not isinstance(value, dict)]
        if old:
            raise ConfigError(option, f"{where}{_moved_message(old, moved)}")


def _yaml(text: str) -> Any:
    """``text`` read as YAML (``{name: B3}``); None when it is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _moved_message(old: Sequence[str], moved: Mapping[str, str]) -> str:
    """``data.batch_size is now data.loader.batch_size, …`` and how to nest them in a config."""
    places = ", ".join(f"data.{key} is now data.{moved[key]}" for key in old)
    return (
        f"{places} (the data options are grouped now: nest them in the config, e.g. "
        "`loader: {batch_size: 8}` under `data:`, or give --data.loader.batch_size 8)"
    )


#: The option groups a YAML file may fill (``--trainer trainer.yaml``), as jsonargparse reads it.
GROUP_FILE_OPTIONS = ("--trainer", "--model", "--data", "--optimizer", "--lr_scheduler")


def check_config_files(words: Sequence[str]) -> None:
    """Refuse a ``--config`` or group file that is missing, not YAML, empty or not a mapping, naming it.

    jsonargparse reports these without the file's name (``<unicode string>``, ``Unexpected config``). A
    group's file (`GROUP_FILE_OPTIONS`) is checked when it exists (its option also takes a value).
    """
    for option in GROUP_FILE_OPTIONS:
        for value in option_values(words, option):
            if Path(value).is_file():
                _check_yaml_mapping(option, value, f"options of {option[2:]}")
    for path in config_paths(words):
        file = Path(path)
        if not file.is_file() and ":" in path:  # jsonargparse also takes the YAML text itself
            continue
        if not file.is_file():
            raise ConfigError("--config", f"{path}: config file does not exist")
        _check_yaml_mapping("--config", path, "options (trainer:, model:, data: …)")


def _check_yaml_mapping(option: str, path: str, holds: str) -> None:
    """Refuse the file ``option`` names unless it is text holding a YAML mapping (of ``holds``)."""
    text = config_text(option, path)
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(option, f"{path}: not valid YAML{at}: {problem}") from err
    if content is None:
        raise ConfigError(option, f"{path}: holds no {holds}: it is empty, or comments alone")
    if not isinstance(content, dict):
        raise ConfigError(option, f"{path}: holds a YAML {type(content).__name__}, not a mapping of {holds}")


def config_text(option: str, path: str) -> str:
    """The text of the file ``option`` names, as jsonargparse reads it; `ConfigError` naming it if not text.

    jsonargparse opens config files in the locale's encoding: a UTF-8 file that encoding cannot read is
    refused with its line rather than left to fail there.

    Args:
        option: the option that names the file (``--config``, ``--data``…), for the message.
        path: the file.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(option, f"{path}: not a text file ({err.reason})") from err
    encoding = codecs.lookup(locale.getpreferredencoding(False)).name
    try:
        data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(
            option,
            f"{path}: line {line} holds a character this locale's encoding ({encoding}) cannot read, and "
            "jsonargparse reads config files in it: run with PYTHONUTF8=1 or a UTF-8 locale (LANG=C.UTF-8)",
        ) from err
    return text
