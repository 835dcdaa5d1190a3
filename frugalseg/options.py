"""Options as objects: each member of a family declares its options as a frozen dataclass.

A registry member (a propagation engine of `frugalseg.autolabel.engines.PROPAGATORS`, a loop engine, a
click model) names its options class in ``Options``; the fields of that class are the member's settings
everywhere: the command line (``--<prefix>-<option>``, made by `add_option_flags`), ``session.json`` (a
`Choice`: the name and the options given) and the Python API (``get_propagator("sam2", checkpoint=...)``).
Members that run the same network share the class (`frugalseg.autolabel.sam2_loading.SAM2Options`), so
one set of flags sets them all.

An options class may be made of parts (`frugalseg.autolabel.flow_options.FlowOptions`): a field whose
default is a dataclass. Each field of a part is then one option under its ``flat`` name, and
`flat_form` makes the one-level class of those options for the places that keep flat settings (a
session). A field's ``metadata`` says how the command line shows it: ``flat`` (its name among the
options of a class with parts), ``help`` (default: its line in its class's ``Attributes:``),
``choices``, ``type`` (a converter; default: from its annotation), ``path`` (made absolute when a
session records it) and ``cli: False`` (not a flag).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeVar

from frugalseg.errors import ConfigError


@dataclass(frozen=True)
class NoOptions:
    """The options of a member that has none (GrabCut)."""


_Member = TypeVar("_Member", bound="Configurable")


class Configurable:
    """A registry member built from its options: ``Options`` names the dataclass, `from_options` builds."""

    #: The dataclass of the member's options.
    Options: ClassVar[type] = NoOptions

    @classmethod
    def from_options(cls: type[_Member], options: Any) -> _Member:
        """The member built from its ``Options`` (by default, the fields are the constructor's arguments)."""
        return cls(**dataclasses.asdict(options))


@dataclass(frozen=True)
class Choice:
    """A registry member by name and the options given for it (``session.json``'s form).

    Attributes:
        name: the member's name in its registry.
        options: values of fields of the member's ``Options`` (the rest take their defaults).
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)


class Option(NamedTuple):
    """One option of an options class.

    Attributes:
        part: the field of the part that holds it (None: a field of the class itself).
        spec: its dataclass field.
        type: its annotation, resolved.
        owner: the dataclass that declares it (its docstring documents it).
    """

    part: str | None
    spec: dataclasses.Field[Any]
    type: Any
    owner: type


def plain_values(value: Any) -> Any:
    """``value`` with every subclass of int, float or str as that builtin, in dicts, lists and tuples too.

    The command line's parser gives restricted numbers (jsonargparse's ``ClosedUnitInterval``,
    ``PositiveInt`` …: subclasses of int and float); hyper-parameters a checkpoint holds must be plain
    to load with ``torch.load(weights_only=True)``.
    """
    if value is None or isinstance(value, bool):
        return value
    for builtin in (int, float, str):
        if isinstance(value, builtin):
            return builtin(value)
    if isinstance(value, Mapping):
        return {key: plain_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_values(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain_values(item) for item in value)
    return value


def keep_plain_hyperparameters(owner: Any) -> None:
    """Make the hyper-parameters ``owner`` saved (a LightningModule's or DataModule's) plain values.

    Each dataclass becomes a dict and each value `plain_values`, in ``hparams`` and in the copy its loggers
    write (``hparams.yaml``), so that a checkpoint loads with ``weights_only=True``.
    """
    for name, value in owner.hparams.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        owner.hparams[name] = plain_values(value)
    owner._hparams_initial = copy.deepcopy(owner._hparams)


def _is_part(spec: dataclasses.Field[Any]) -> bool:
    return dataclasses.is_dataclass(spec.default) and not isinstance(spec.default, type)


@cache
def option_fields(options_type: type) -> dict[str, Option]:
    """Every option of ``options_type`` by name: its own fields, and each part's fields by ``flat`` name."""
    options: dict[str, Option] = {}
    hints = typing.get_type_hints(options_type)
    for spec in dataclasses.fields(options_type):
        if not _is_part(spec):
            options[spec.name] = Option(None, spec, hints[spec.name], options_type)
            continue
        part_type: type = type(spec.default)
        part_hints = typing.get_type_hints(part_type)
        for inner in dataclasses.fields(part_type):
            options[inner.metadata.get("flat", inner.name)] = Option(
                spec.name, inner, part_hints[inner.name], part_type
            )
    return options


def flatten(options: Any) -> dict[str, Any]:
    """Every option of ``options`` (a dataclass instance) by name (`unflatten` gives ``options`` back)."""
    options_type: type = type(options)
    return {
        name: getattr(options if option.part is None else getattr(options, option.part), option.spec.name)
        for name, option in option_fields(options_type).items()
    }


def unflatten(options_type: type, values: Mapping[str, Any]) -> Any:
    """``options_type`` with the options ``values`` names (the rest their defaults).

    Raises:
        ConfigError: a name that is none of its options (they are listed).
    """
    where = option_fields(options_type)
    unknown = sorted(set(values) - set(where))
    if unknown:
        raise ConfigError(unknown[0], f"no option of {options_type.__name__}; it takes {', '.join(where)}")
    own = {where[name].spec.name: v for name, v in values.items() if where[name].part is None}
    parts: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if where[name].part is not None:
            parts.setdefault(str(where[name].part), {})[where[name].spec.name] = value
    defaults: dict[str, Any] = {
        spec.name: spec.default for spec in dataclasses.fields(options_type) if _is_part(spec)
    }
    built = {part: dataclasses.replace(defaults[part], **given) for part, given in parts.items()}
    return options_type(**own, **built)


@cache
def flat_form(options_type: type) -> type:
    """A frozen dataclass with one field per option of ``options_type`` (`option_fields`), same defaults.

    Its instance gives the options back with ``unflatten(options_type, dataclasses.asdict(flat))``.
    """
    default = flatten(options_type())
    specs = [
        (name, option.type, field(default=default[name], metadata=_documented(option)))
        for name, option in option_fields(options_type).items()
    ]
    flat: type = dataclasses.make_dataclass(f"Flat{options_type.__name__}", specs, frozen=True)
    flat.__doc__ = f"The options of `{options_type.__name__}`, one level (`frugalseg.options.flat_form`)."
    return flat


def _documented(option: Option) -> dict[str, Any]:
    """The option's metadata, with ``help`` from its class's ``Attributes:`` where it has none."""
    if "help" in option.spec.metadata:
        return dict(option.spec.metadata)
    import docstring_parser  # jsonargparse's docstring reader

    lines = {p.arg_name: p.description for p in docstring_parser.parse(option.owner.__doc__ or "").params}
    help_text = " ".join((lines.get(option.spec.name) or option.spec.name).replace("``", "").split())
    return {**option.spec.metadata, "help": help_text}


def options_class(registry: Mapping[str, Any], name: str, *, option: str, noun: str) -> type:
    """The ``Options`` class of member ``name`` of ``registry`` (``option``, ``noun``: how errors name it)."""
    if name not in registry:
        raise ConfigError(option, f"unknown {noun} {name!r}; choose from {', '.join(registry)}")
    options: type = registry[name].Options
    return options


def build_options(
    registry: Mapping[str, Any], name: str, given: Mapping[str, Any], *, option: str, noun: str
) -> Any:
    """Member ``name``'s ``Options`` with the ``given`` options, checked against its options by name."""
    cls = options_class(registry, name, option=option, noun=noun)
    known = list(option_fields(cls))
    unknown = sorted(set(given) - set(known))
    if unknown:
        takes = f"takes {', '.join(known)}" if known else "takes no options"
        raise ConfigError(option, f"the {name} {noun} {takes}, got {', '.join(unknown)}")
    return unflatten(cls, given)


def absolute_paths(options_type: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with the values of path fields made absolute (a session may be resumed elsewhere)."""
    paths = {name for name, option in option_fields(options_type).items() if option.spec.metadata.get("path")}
    return {k: str(Path(v).resolve()) if k in paths and v is not None else v for k, v in options.items()}


def registry_options(registries: Iterable[Mapping[str, Any]]) -> list[tuple[str, type]]:
    """Each member of ``registries`` with its ``Options`` (`add_option_flags` with the member's name)."""
    return [(member, cls.Options) for registry in registries for member, cls in registry.items()]


def _dest(prefix: str, name: str) -> str:
    """The flag's destination: ``<prefix>_<name>``, or ``name`` alone when it starts with the prefix."""
    return name if not prefix or name == prefix or name.startswith(f"{prefix}_") else f"{prefix}_{name}"


def option_flag(prefix: str, name: str) -> str:
    """The flag `add_option_flags` gives option ``name`` under ``prefix`` (``--snap-band``)."""
    return f"--{_dest(prefix, name).replace('_', '-')}"


def add_option_flags(group: Any, members: Iterable[tuple[str, type]]) -> None:
    """Add a flag for every option of each (prefix, options class): ``--<prefix>-<option>`` (default None).

    A prefix "" gives ``--<option>``, and so does an option whose name starts with the prefix (the
    flow engine's ``flow_threads`` is ``--flow-threads``); a flag that two members share (the same
    prefix and option) is added once. A yes/no option is a pair, ``--<flag>`` and ``--no-<flag>``.
    """
    added: set[str] = set()
    for prefix, options_type in members:
        for name, option in option_fields(options_type).items():
            dest = _dest(prefix, name)
            if not option.spec.metadata.get("cli", True) or dest in added:
                continue
            added.add(dest)
            _add_flag(group, dest, prefix, option)


def _add_flag(group: Any, dest: str, prefix: str, option: Option) -> None:
    """Add the flag of ``option`` (`add_option_flags`)."""
    metadata = _documented(option)
    default = option.spec.default if option.spec.default is not dataclasses.MISSING else None
    shown = "" if default is None else f" (default {default})"
    kind: dict[str, Any] = {"action": argparse.BooleanOptionalAction}
    if option.type is not bool:
        kind = {"type": metadata.get("type", _converter(option.type)), "choices": metadata.get("choices")}
    group.add_argument(
        f"--{dest.replace('_', '-')}",
        dest=dest,
        default=None,
        help=f"{prefix + ': ' if prefix else ''}{metadata['help']}{shown}",
        **kind,
    )


def _converter(annotation: Any) -> Any:
    """How a flag's text becomes a value of ``annotation`` (``int | None``: int): int, float or str."""
    types = [t for t in typing.get_args(annotation) if t is not type(None)] or [annotation]
    return types[0] if types[0] in (int, float) else str


def given_options(flags: Mapping[str, Any], prefix: str, options_type: type) -> dict[str, Any]:
    """The options of ``options_type`` that ``flags`` (destination of `add_option_flags` → value) give."""
    values = {name: flags.get(_dest(prefix, name)) for name in option_fields(options_type)}
    return {k: v for k, v in values.items() if v is not None}
