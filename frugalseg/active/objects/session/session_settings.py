"""The settings of an annotation session (``session.json``).

The data set, the stride, the costs, and the chosen propagation engine and click model with every
field of their options.

A session saved before options were objects (flat keys such as ``preset`` or ``device``) is read into
the current form; a call that names other settings than the saved ones is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any

from frugalseg.active.objects.engines import ENGINES, LoopEngine, get_loop_engine
from frugalseg.active.objects.tools.click_models import (
    CLICK_MODELS,
    DEFAULT_CLICK_MODEL,
    ClickToMask,
    get_click_model,
)
from frugalseg.data.costs import DEFAULT_COSTS
from frugalseg.data.formats import get_format
from frugalseg.data.formats.davis import other_layout
from frugalseg.errors import ConfigError, DataError
from frugalseg.options import (
    Choice,
    absolute_paths,
    build_options,
    given_options,
    options_class,
)

SESSION_FILE = "session.json"


@dataclass(frozen=True)
class SessionSettings:
    """What a session annotates and how it propagates (recorded in ``session.json``).

    Attributes:
        format: the data set layout (``davis``, ``mose``).
        root: the data set folder (absolute).
        split: the split whose videos are annotated.
        stride: the loop uses every ``stride``-th frame of a video.
        max_frames: the loop uses only the first ``max_frames`` frames (None: all).
        costs: annotation costs (seconds) booked on the ledger.
        engine: the propagation engine (`engines.ENGINES`) and every field of its options.
        click_model: the click-to-mask model of a person's clicks (`click_models.CLICK_MODELS`) and
            every field of its options.
    """

    format: str
    root: str
    split: str
    stride: int = 1
    max_frames: int | None = None
    costs: dict[str, float] = field(default_factory=DEFAULT_COSTS.to_dict)
    engine: Choice = field(default_factory=lambda: _choice("engine", "flow", {}))
    click_model: Choice = field(default_factory=lambda: _choice("click_model", DEFAULT_CLICK_MODEL, {}))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionSettings:
        """The settings ``session.json`` holds (`asdict` of them)."""
        fields: dict[str, Any] = {**data}
        fields.update({key: Choice(**data[key]) for key in FAMILIES if key in data})
        return cls(**fields)

    def build_engine(self) -> LoopEngine:
        """The propagation engine these settings name (its weights checked)."""
        return get_loop_engine(self.engine.name, **self.engine.options)

    def build_click_model(self) -> ClickToMask:
        """The click-to-mask model these settings name (its weights checked)."""
        return get_click_model(self.click_model.name, **self.click_model.options)


#: The two families a session chooses from: their registries and how errors name them.
FAMILIES: dict[str, tuple[Mapping[str, Any], str]] = {
    "engine": (ENGINES, "propagation engine"),
    "click_model": (CLICK_MODELS, "click-to-mask model"),
}


def _full_choice(registry: Mapping[str, Any], name: str, given: Mapping[str, Any], option: str) -> Choice:
    """Member ``name`` with every field of its options (the ``given`` ones, the rest their defaults)."""
    built = build_options(registry, name, given, option=option, noun=FAMILIES[option][1])
    return Choice(name, absolute_paths(type(built), asdict(built)))


#: The flat keys of ``session.json`` before options were objects, read into `Choice` on opening.
_FLAT_KEYS = (
    "preset",
    "flow_downscale",
    "sam2_config",
    "sam2_checkpoint",
    "sam2_image_size",
    "stm_model",
    "stm_weights",
)


def _choice(option: str, name: str, flags: Mapping[str, Any]) -> Choice:
    """Member ``name`` of the ``option`` family with the fields ``flags`` give (``<member>_<field>``)."""
    registry, noun = FAMILIES[option]
    options_type = options_class(registry, name, option=option, noun=noun)
    return _full_choice(registry, name, given_options(flags, name, options_type), option)


def _from_flat(data: dict[str, Any]) -> dict[str, Any]:
    """Settings of a session written before options were objects (or before the engines existed)."""
    flags = {key: data.pop(key) for key in _FLAT_KEYS if key in data}
    flags["flow_preset"] = flags.pop("preset", None)
    device = data.pop("device", None)
    flags.update(sam2_device=device, stm_device=device)
    flags = {k: v for k, v in flags.items() if v is not None}
    defaults = {"engine": "flow", "click_model": "grabcut"}  # what such a session was made with
    return {
        **data,
        **{key: asdict(_choice(key, data.get(key) or name, flags)) for key, name in defaults.items()},
    }


def _read_settings(path: Path) -> SessionSettings:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, f"not valid JSON ({err})") from err
    names = set(SessionSettings.__dataclass_fields__)
    required = {
        name
        for name, spec in SessionSettings.__dataclass_fields__.items()
        if spec.default is MISSING and spec.default_factory is MISSING
    }
    if not isinstance(data, dict) or not required <= set(data):
        raise DataError(path, f"not an annotation session's settings (keys: {', '.join(sorted(names))})")
    if not isinstance(data.get("engine", {}), dict) or {"device", *_FLAT_KEYS} & set(data):
        data = _from_flat(data)
    if "click_model" not in data:  # saved before click models were a setting: GrabCut made its masks
        data["click_model"] = asdict(_choice("click_model", "grabcut", {}))
    if not set(data) <= names:
        raise DataError(path, f"not an annotation session's settings (keys: {', '.join(sorted(names))})")
    try:
        return SessionSettings.from_json(data)
    except (TypeError, ConfigError) as err:
        raise DataError(path, f"not an annotation session's settings ({err})") from err


def _differences(held: Choice, name: str | None, flags: Mapping[str, Any], option: str) -> list[str]:
    """How the asked member ``name`` and its ``flags`` differ from the saved choice ``held``."""
    if name is not None and name != held.name:
        return [f"{option} {held.name!r} (asked: {name!r})"]
    registry, noun = FAMILIES[option]
    options_type = options_class(registry, held.name, option=option, noun=noun)
    asked = absolute_paths(options_type, given_options(flags, held.name, options_type))
    return [
        f"{held.name}_{k} {held.options.get(k)!r} (asked: {v!r})"
        for k, v in asked.items()
        if held.options.get(k) != v
    ]


def saved_settings(
    folder: Path, given: Mapping[str, Any], names: Mapping[str, str | None], flags: Mapping[str, Any]
) -> SessionSettings:
    """The settings saved in ``folder``, checked to agree with every one the caller named."""
    saved = _read_settings(folder / SESSION_FILE)
    differ = [f"{k} {getattr(saved, k)!r} (asked: {v!r})" for k, v in given.items() if getattr(saved, k) != v]
    for key, name in names.items():
        differ += _differences(getattr(saved, key), name, flags, key)
    if differ:
        raise ConfigError(
            "state",
            f"{folder} is a session with other settings: {', '.join(differ)}; leave them out or use "
            "another folder",
        )
    return saved


def new_settings(
    folder: Path, given: dict[str, Any], names: Mapping[str, str | None], flags: Mapping[str, Any]
) -> SessionSettings:
    """The settings of a new session: the data set named, its split, and the chosen engine and click model."""
    if "root" not in given:
        raise ConfigError("state", f"{folder} holds no session yet: give --root (its data set) to start one")
    if given.get("stride", 1) < 1:
        raise ConfigError("stride", f"must be ≥ 1, got {given['stride']}")
    if given.get("max_frames", 2) < 2:
        raise ConfigError("max_frames", f"must be ≥ 2, got {given['max_frames']}")
    given.setdefault("format", "davis")
    root = Path(given["root"])
    like = (
        "" if given["format"] == "video" or (root / "JPEGImages").is_dir() else other_layout(root, flag=False)
    )
    if like:  # the reader's hint had named a --format that `annotate` does not take
        raise ConfigError(
            "--root",
            f"{root}: not a DAVIS-style data set{like}: the annotation loop takes object masks "
            "(`annotate semantic` simulates a loop of class labels)",
        )
    if "split" not in given:
        given["split"] = get_format(given["format"], given["root"]).splits()[0]
    return SessionSettings(
        **given,
        engine=_choice("engine", names["engine"] or "flow", flags),
        click_model=_choice("click_model", names["click_model"] or DEFAULT_CLICK_MODEL, flags),
    )
