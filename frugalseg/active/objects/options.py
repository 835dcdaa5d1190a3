"""Options as objects: each engine and click model declares its options as a frozen dataclass.

A registry member (an engine of `engines.ENGINES`, a click model of `click_models.CLICK_MODELS`)
names its options class in ``Options``; the fields of that class are the member's settings
everywhere — the command line (``--<member>-<field>``, made by `add_option_flags`),
``session.json`` (a `Choice`: the name and the options given) and the Python API
(``make_loop_engine("sam2", checkpoint=...)``). Members that run the same network share the class
(`frugalseg.autolabel.sam2_loading.SAM2Options` serves the SAM 2 engine and the SAM 2 click model),
so one set of flags sets both. A field's ``metadata`` says how the command line shows it: ``help``,
``choices``, ``type`` (a converter), ``path`` (made absolute when a session records it) and
``cli: False`` (not a flag).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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


def options_class(registry: Mapping[str, Any], name: str, *, option: str, noun: str) -> type:
    """The ``Options`` class of member ``name`` of ``registry`` (``option``, ``noun``: how errors name it)."""
    if name not in registry:
        raise ConfigError(option, f"unknown {noun} {name!r}; choose from {', '.join(registry)}")
    options: type = registry[name].Options
    return options


def build_options(
    registry: Mapping[str, Any], name: str, given: Mapping[str, Any], *, option: str, noun: str
) -> Any:
    """Member ``name``'s ``Options`` with the ``given`` fields, checked against its fields by name."""
    cls = options_class(registry, name, option=option, noun=noun)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        takes = f"takes {', '.join(known)}" if known else "takes no options"
        raise ConfigError(option, f"the {name} {noun} {takes}, got {', '.join(unknown)}")
    return cls(**given)


def absolute_paths(options_type: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with the values of path fields made absolute (a session may be resumed elsewhere)."""
    paths = {f.name for f in dataclasses.fields(options_type) if f.metadata.get("path")}
    return {k: str(Path(v).resolve()) if k in paths and v is not None else v for k, v in options.items()}


def _flags(registries: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, dataclasses.Field[Any]]]:
    """Every flag's destination → (member, field), once for members that share a name and options."""
    flags: dict[str, tuple[str, dataclasses.Field[Any]]] = {}
    for registry in registries:
        for member, cls in registry.items():
            for spec in dataclasses.fields(cls.Options):
                if spec.metadata.get("cli", True):
                    flags.setdefault(f"{member}_{spec.name}", (member, spec))
    return flags


def add_option_flags(group: Any, registries: Sequence[Mapping[str, Any]]) -> None:
    """Add ``--<member>-<field>`` for every field of every member's options (default None: not given)."""
    for dest, (member, spec) in _flags(registries).items():
        default = spec.default if spec.default is not dataclasses.MISSING else None
        shown = "" if default is None else f" (default {default})"
        group.add_argument(
            f"--{dest.replace('_', '-')}",
            dest=dest,
            default=None,
            type=spec.metadata.get("type", str),
            choices=spec.metadata.get("choices"),
            help=f"{member}: {spec.metadata.get('help', spec.name)}{shown}",
        )


def given_options(flags: Mapping[str, Any], member: str, options_type: type) -> dict[str, Any]:
    """The fields of ``options_type`` that ``flags`` (``<member>_<field>`` → value) give for ``member``."""
    values = {f.name: flags.get(f"{member}_{f.name}") for f in dataclasses.fields(options_type)}
    return {k: v for k, v in values.items() if v is not None}
