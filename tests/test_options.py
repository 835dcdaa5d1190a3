"""The options mechanism: options classes (with parts) by flat name, and the flags made from them."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

import pytest

from frugalseg.errors import ConfigError
from frugalseg.options import (
    add_option_flags,
    build_options,
    flat_form,
    flatten,
    given_options,
    option_fields,
    option_flag,
    unflatten,
)


@dataclass(frozen=True)
class Snap:
    """Snapping.

    Attributes:
        enabled: snap at all.
        band: width (px) of the band.
    """

    enabled: bool = field(default=True, metadata={"flat": "snap"})
    band: int = field(default=3, metadata={"flat": "snap_band"})


@dataclass(frozen=True)
class Engine:
    """An engine's options: one of its own and a part.

    Attributes:
        preset: which preset, ``fast`` or ``slow``.
        weights: a weights file (None: none).
        snap: the snapping part.
    """

    preset: str = field(default="slow", metadata={"choices": ("fast", "slow")})
    weights: str | None = field(default=None, metadata={"cli": False})
    snap: Snap = Snap()


class Member:
    """A registry member with `Engine` options."""

    Options = Engine


def test_a_part_gives_its_fields_by_flat_name_and_they_go_back_and_forth() -> None:
    assert list(option_fields(Engine)) == ["preset", "weights", "snap", "snap_band"]
    assert [(o.part, o.spec.name) for o in option_fields(Engine).values()] == [
        (None, "preset"),
        (None, "weights"),
        ("snap", "enabled"),
        ("snap", "band"),
    ]
    options = Engine(preset="fast", snap=Snap(enabled=False, band=5))
    assert flatten(options) == {"preset": "fast", "weights": None, "snap": False, "snap_band": 5}
    assert unflatten(Engine, flatten(options)) == options
    assert unflatten(Engine, {"snap_band": 7}) == Engine(snap=Snap(band=7))
    with pytest.raises(
        ConfigError, match="band: no option of Engine; it takes preset, weights, snap, snap_band"
    ):
        unflatten(Engine, {"band": 7})


def test_the_flat_form_has_every_option_with_its_default_and_help() -> None:
    flat = flat_form(Engine)
    assert dataclasses.asdict(flat()) == {"preset": "slow", "weights": None, "snap": True, "snap_band": 3}
    assert unflatten(Engine, dataclasses.asdict(flat(snap_band=4))) == Engine(snap=Snap(band=4))
    specs = {spec.name: spec.metadata for spec in dataclasses.fields(flat)}
    assert specs["snap_band"] == {"flat": "snap_band", "help": "width (px) of the band."}
    assert specs["preset"]["choices"] == ("fast", "slow")
    assert flat_form(Engine) is flat  # made once


def test_build_options_checks_the_names_and_builds_the_parts() -> None:
    registry = {"member": Member}
    assert build_options(registry, "member", {"snap": False}, option="engine", noun="engine") == Engine(
        snap=Snap(enabled=False)
    )
    with pytest.raises(
        ConfigError, match="engine: the member engine takes preset, weights, snap, snap_band, got x"
    ):
        build_options(registry, "member", {"x": 1}, option="engine", noun="engine")
    with pytest.raises(ConfigError, match="engine: unknown engine 'other'; choose from member"):
        build_options(registry, "other", {}, option="engine", noun="engine")


def test_flags_are_made_from_the_options_with_or_without_a_prefix() -> None:
    """A flag per option but those marked ``cli: False``; yes/no options are a pair; numbers are
    converted; a flag two members share is added once; what is not given stays None."""
    parser = argparse.ArgumentParser()
    add_option_flags(parser, [("", Engine), ("m", Engine), ("m", Engine)])
    flags = sorted(
        o for action in parser._actions for o in action.option_strings if o not in ("-h", "--help")
    )
    assert flags == [
        "--m-preset",
        "--m-snap",
        "--m-snap-band",
        "--no-m-snap",
        "--no-snap",
        "--preset",
        "--snap",
        "--snap-band",
    ]
    given = vars(parser.parse_args(["--no-snap", "--snap-band", "5", "--m-preset", "fast"]))
    assert given_options(given, "", Engine) == {"snap": False, "snap_band": 5}
    assert given_options(given, "m", Engine) == {"preset": "fast"}
    help_text = " ".join(parser.format_help().split())
    assert "--snap-band SNAP_BAND width (px) of the band. (default 3)" in help_text
    assert "--m-preset {fast,slow} m: which preset, fast or slow. (default slow)" in help_text
    with pytest.raises(SystemExit):
        parser.parse_args(["--snap-band", "wide"])
    assert [
        option_flag("", "snap_band"),
        option_flag("m", "snap_band"),
        option_flag("snap", "snap_band"),
    ] == [
        "--snap-band",
        "--m-snap-band",
        "--snap-band",
    ]
    named = argparse.ArgumentParser()
    add_option_flags(named, [("snap", Engine)])  # options that start with the prefix keep their names
    assert vars(named.parse_args(["--snap-preset", "fast", "--no-snap", "--snap-band", "4"])) == {
        "snap_preset": "fast",
        "snap": False,
        "snap_band": 4,
    }
    assert given_options({"snap_preset": "fast", "snap": False}, "snap", Engine) == {
        "preset": "fast",
        "snap": False,
    }
