"""The one registry that knows each model: its entrypoint, its config, and building it by name.

As timm's ``_registry.py``: an architecture module declares ``default_cfgs`` (model name →
:class:`ModelConfig`) and then its entrypoints, each a function named after the model and decorated
with bare ``@register_model``, which takes the name from ``fn.__name__`` and the config from the
module's ``default_cfgs``. Tests, benchmarks and the CLI then ask the registry
(:func:`list_models`, :func:`model_config`) instead of parsing model names.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, Literal, overload

from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.errors import ConfigError, WeightsError
from frugalseg.zoo._base import Student
from frugalseg.zoo._checkpoints import checkpoints_dirs, read_index
from frugalseg.zoo._hub import HUB_PREFIX
from frugalseg.zoo._loading import LoadedWeights, check_compatible
from frugalseg.zoo._resolve import resolve

Factory = Callable[..., Student]
Task = Literal["semantic", "vos"]
TASKS: tuple[str, ...] = ("semantic", "vos")


@dataclass(frozen=True)
class PublishedWeights:
    """Weights published for a model in frugalseg's shipped checkpoints folder (``checkpoints/index.json``).

    Attributes:
        file: the ``.safetensors`` file name in that folder.
        sha256: its full lower-case hex sha256, as its card and the index record it.
        license: licence of these weights (frugalseg's own training runs: the package's Apache-2.0).
    """

    file: str
    sha256: str
    license: str = "Apache-2.0"


@dataclass(frozen=True)
class ModelConfig:
    """Facts about one registered model, declared beside its entrypoint (timm's ``default_cfgs``).

    Attributes:
        num_frames: frames per clip when :func:`get_model` is not told (1 for image models).
        video: True for a model that reads several frames and streams with ``reset()`` / ``step()``.
        task: ``"semantic"`` (class logits of the last frame) or ``"vos"`` (object masks given on
            the first frame, as STM).
        num_classes: default class count, or None when the data set decides (semantic models).
        aux_weights: loss weight of each auxiliary output of ``forward_train`` in the default build.
        stream_matches_clip: True for a video model whose streamed output at each frame (``reset()``
            then ``step()`` frame by frame) equals its clip forward over the ``num_frames`` frames
            ending there (TMANet: a frame's features do not depend on its place in the clip; not
            TDNet, whose sub-networks turn with the stream), so a validation frame pair can be
            segmented by streaming, each frame encoded once.
        unused_parameters: True when one training step leaves some parameters without a gradient
            by design (TDNet trains one sub-network's head per step); DDP then needs
            ``find_unused_parameters=True``.
        mean: RGB mean the input is normalised with (frames are RGB in [0, 1] minus mean over std).
        std: RGB standard deviation of that normalisation.
        param_count: millions of parameters of the default build with 19 classes (``num_classes``
            when set), rounded to 0.1, as timm's results tables list them.
        paper: short citation of the paper the architecture comes from (``Hu et al., CVPR 2020``).
        paper_url: where to read it.
        code: the official (or followed) implementation.
        license: licence of that implementation and of its official weights, which converted
            official weights keep.
        weights: published weights of this model by name (``streets-hrnetv2-w18s`` → file, sha256).
    """

    num_frames: int = 1
    video: bool = False
    task: Task = "semantic"
    num_classes: int | None = None
    aux_weights: Mapping[str, float] = field(default_factory=dict)
    stream_matches_clip: bool = False
    unused_parameters: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    param_count: float | None = None
    paper: str = ""
    paper_url: str = ""
    code: str = ""
    license: str = ""
    weights: Mapping[str, PublishedWeights] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"ModelConfig.task must be one of {TASKS}, got {self.task!r}")
        if self.num_frames < 1:
            raise ValueError(f"ModelConfig.num_frames must be >= 1, got {self.num_frames}")
        if not self.video and self.num_frames != 1:
            raise ValueError(f"an image model has num_frames=1, got num_frames={self.num_frames}")


@dataclass(frozen=True)
class _Entry:
    entrypoint: Factory
    config: ModelConfig


_REGISTRY: dict[str, _Entry] = {}


@overload
def register_model(fn: Factory, *, config: ModelConfig | None = None) -> Factory: ...


@overload
def register_model(fn: None = None, *, config: ModelConfig | None = None) -> Callable[[Factory], Factory]: ...


def register_model(
    fn: Factory | None = None, *, config: ModelConfig | None = None
) -> Factory | Callable[[Factory], Factory]:
    """Register the entrypoint ``fn(num_classes, num_frames, **kwargs) -> Student`` as ``fn.__name__``.

    Used bare (``@register_model``) the config is ``default_cfgs[fn.__name__]`` of the module that
    defines ``fn``; ``register_model(fn, config=…)`` gives it directly (a model defined outside the
    zoo, or in a test).

    Args:
        fn: the entrypoint; its name is the model's name.
        config: the model's config, if not declared in its module's ``default_cfgs``.

    Raises:
        ValueError: the name is taken, or no config is found.
    """

    def decorator(entrypoint: Factory) -> Factory:
        name = entrypoint.__name__
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered")
        found = config
        if found is None:
            module = sys.modules.get(entrypoint.__module__)
            found = getattr(module, "default_cfgs", {}).get(name)
        if found is None:
            raise ValueError(
                f"model {name!r} has no config: declare default_cfgs[{name!r}] = ModelConfig(…) in "
                f"{entrypoint.__module__} above its entrypoint, or pass register_model(fn, config=…)"
            )
        _REGISTRY[name] = _Entry(entrypoint, found)
        return entrypoint

    return decorator if fn is None else decorator(fn)


def unregister_model(name: str) -> None:
    """Remove ``name`` from the registry (a model registered for a test or an experiment)."""
    _entry(name)
    del _REGISTRY[name]


def _entry(name: str) -> _Entry:
    entry = _REGISTRY.get(name)
    if entry is None:
        owner = next((model for model, e in sorted(_REGISTRY.items()) if name in e.config.weights), None)
        hint = (
            f"; {name!r} is published weights: get_model({owner!r}, weights={name!r})"
            if owner is not None
            else f"; {name!r} is a file or folder: give it as weights= of its architecture"
            if Path(name).exists()
            else f"; available models: {', '.join(list_models())}"
        )
        raise ConfigError("student", f"unknown model {name!r}{hint}")
    return entry


def list_models(
    filter: str | Sequence[str] | None = None, task: str | None = None, pretrained: bool = False
) -> list[str]:
    """Names of the registered models, sorted.

    Args:
        filter: an fnmatch pattern (``"tdnet_*"``, ``"*_small"``) or several; a name matching any is kept.
        task: ``"semantic"`` or ``"vos"`` to keep the models of that task only.
        pretrained: keep only models with published weights: shipped (:attr:`ModelConfig.weights`) or
            named by the index of a checkpoints folder searched (`checkpoints_dirs`), as ``zoo list``.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")
    published = _published_architectures() if pretrained else set()
    patterns = [filter] if isinstance(filter, str) else list(filter or [])
    names = []
    for name, entry in sorted(_REGISTRY.items()):
        if patterns and not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            continue
        if task is not None and entry.config.task != task:
            continue
        if pretrained and not entry.config.weights and name not in published:
            continue
        names.append(name)
    return names


def _published_architectures() -> set[str]:
    """The architectures the searched checkpoints folders' indexes hold weights of (a damaged one: none)."""
    found = set()
    for folder in checkpoints_dirs():
        try:
            entries = read_index(folder)["models"].values()
        except (WeightsError, OSError):  # damaged or unreadable: `zoo list` says why
            continue
        found |= {str(entry.get("architecture")) for entry in entries if isinstance(entry, dict)}
    return found


def model_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of the registered model ``name``."""
    return _entry(name).config


def model_entrypoint(name: str) -> Factory:
    """The function that builds ``name`` (``num_classes``, ``num_frames`` and architecture arguments)."""
    return _entry(name).entrypoint


def get_model(
    name: str,
    num_classes: int | None = None,
    num_frames: int | None = None,
    weights: Any = None,
    **kwargs: Any,
) -> Student:
    """Build the student registered as ``name``.

    Args:
        name: a registered model (:func:`list_models`), or the Hub id of a frugalseg repository
            (``hf-hub:ORG/NAME[@REVISION]``, as timm's ``create_model`` takes it): its card names the
            architecture and its weights are loaded.
        num_classes: output classes; default the weights' card's, else the config's ``num_classes``.
        num_frames: frames per clip; default the weights' card's, else the config's ``num_frames``.
        weights: trained weights to load: a published name (``checkpoints/index.json``), a
            ``.safetensors`` or Lightning ``.ckpt`` path, a URL, an ``hf-hub:ORG/NAME[@REVISION]`` id
            (see :func:`frugalseg.zoo.resolve`) or
            :class:`LoadedWeights`. Their sha256 is verified; weights of another architecture, class
            count or clip length are refused, and the card's architecture arguments are the
            defaults of ``kwargs``.
        **kwargs: architecture arguments of the model's class.
    """
    for option, count in (("num_classes", num_classes), ("num_frames", num_frames)):
        if count is not None and (isinstance(count, bool) or not isinstance(count, Integral) or count < 1):
            raise ConfigError(option, f"must be a whole number ≥ 1, got {count!r}")
    if name.startswith(HUB_PREFIX):
        if weights is not None:
            raise ConfigError("weights", f"{name} names its weights already; give weights=None")
        weights = resolve(name)
        name = _card_architecture(weights)
    entry = _entry(name)
    loaded = None
    if weights is not None:
        loaded = weights if isinstance(weights, LoadedWeights) else resolve(weights)
        if entry.config.task == "vos":  # STM's weights hold no class or frame count: any max_objects fits
            check_compatible(loaded, name, None, None)
        else:
            check_compatible(loaded, name, num_classes, num_frames)
        num_classes = num_classes or loaded.card.get("num_classes")
        num_frames = num_frames or loaded.card.get("num_frames")
        kwargs = {**loaded.card.get("architecture_args", {}), **kwargs}
    num_classes = num_classes or entry.config.num_classes
    if num_classes is None:
        raise ConfigError(
            "num_classes", f"get_model({name!r}) needs num_classes (or weights whose card gives it)"
        )
    if num_frames is None:
        num_frames = entry.config.num_frames
    if not entry.config.video and num_frames != 1:
        raise ConfigError(
            "num_frames", f"{name!r} is an image model and takes num_frames=1, got num_frames={num_frames}"
        )
    try:
        model = entry.entrypoint(num_classes=num_classes, num_frames=num_frames, **kwargs)
    except TypeError as err:
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(err))
        if unexpected is None:
            raise
        raise ConfigError(unexpected[1], _unknown_argument(name, unexpected[1])) from err
    if loaded is not None:
        loaded.load_into(model)
    return model


def _unknown_argument(name: str, key: str) -> str:
    """Why ``key`` is no argument of model ``name``, and what to give instead."""
    text = f"is no argument of {name!r}"
    if key == "pretrained":
        text += (
            " (timm's pretrained=True): frugalseg's students take weights=NAME for a whole trained model "
            "(list_models(pretrained=True) and `frugalseg zoo list` name them) and, where a timm backbone "
            "is used, backbone_weights for its pretrained backbone"
        )
    return text


def load_pretrained(weights: str | Path, checkpoints: str | Path | None = None, **kwargs: Any) -> Student:
    """The student a published name / path / URL describes, built from its card with its weights.

    Args:
        weights: a published name, a weights path, a URL or an ``hf-hub:`` id, as
            :func:`frugalseg.zoo.resolve` reads them.
        checkpoints: the checkpoints folder to look a published name up in (default: the usual folders).
        **kwargs: arguments of :func:`get_model` that override the card's.
    """
    loaded = resolve(weights, checkpoints)
    return get_model(_card_architecture(loaded), weights=loaded, **kwargs)


def _card_architecture(loaded: LoadedWeights) -> str:
    """The architecture the weights' card names."""
    architecture = loaded.card.get("architecture")
    if not isinstance(architecture, str):
        raise WeightsError(loaded.path, "has no card naming its architecture; use get_model(name, weights=…)")
    return architecture
