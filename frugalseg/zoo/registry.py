"""Name → factory registry of students, so configs and the CLI can pick a model by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from frugalseg.zoo.base import Student

Factory = Callable[..., Student]


@dataclass(frozen=True)
class _Entry:
    factory: Factory
    default_num_frames: int
    video: bool


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    name: str, *, default_num_frames: int = 1, video: bool = False
) -> Callable[[Factory], Factory]:
    """Register ``factory(num_classes, num_frames, **kwargs) -> Student`` under ``name``.

    ``video=False`` marks an image model, which only accepts ``num_frames == 1``;
    ``default_num_frames`` is used when :func:`get_model` is not told a clip length.
    """
    if not video and default_num_frames != 1:
        raise ValueError(f"image model {name!r} must have default_num_frames=1, got {default_num_frames}")

    def decorator(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = _Entry(factory, default_num_frames, video)
        return factory

    return decorator


def list_models() -> list[str]:
    """Names of all registered students, sorted."""
    return sorted(_REGISTRY)


def get_model(
    name: str,
    num_classes: int | None = None,
    num_frames: int | None = None,
    weights: Any = None,
    **kwargs: Any,
) -> Student:
    """Build the student registered as ``name``; ``num_frames=None`` picks the model's default.

    ``weights`` loads trained weights: a published name (``checkpoints/index.json``), a
    ``.safetensors`` or Lightning ``.ckpt`` path, or a URL (see :func:`frugalseg.zoo.weights.resolve`).
    Their sha256 is verified; weights of another architecture, class count or clip length are
    refused. The card's architecture arguments are the defaults of ``kwargs``, and ``num_classes``
    / ``num_frames`` default to the card's.
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(list_models())}")
    loaded = None
    if weights is not None:
        from frugalseg.zoo.weights import LoadedWeights, check_compatible, resolve

        loaded = weights if isinstance(weights, LoadedWeights) else resolve(weights)
        check_compatible(loaded, name, num_classes, num_frames)
        num_classes = num_classes or loaded.card.get("num_classes")
        num_frames = num_frames or loaded.card.get("num_frames")
        kwargs = {**loaded.card.get("architecture_args", {}), **kwargs}
    if num_classes is None:
        raise ValueError(f"get_model({name!r}) needs num_classes (or weights whose card gives it)")
    if num_frames is None:
        num_frames = entry.default_num_frames
    if not entry.video and num_frames != 1:
        raise ValueError(f"{name!r} is an image model and takes num_frames=1, got num_frames={num_frames}")
    model = entry.factory(num_classes=num_classes, num_frames=num_frames, **kwargs)
    if loaded is not None:
        loaded.load_into(model)
    return model
