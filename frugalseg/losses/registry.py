"""The loss registry: a configuration names a loss (``ce``, ``phuber_ce``, …), `get_loss` makes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from frugalseg.errors import ConfigError
from frugalseg.losses.cross_entropy import CrossEntropy
from frugalseg.losses.gated_crf import GatedCRFLoss, PartialCrossEntropy
from frugalseg.losses.phuber import PHuberCrossEntropy


def _ohem_ce(**kwargs: Any) -> CrossEntropy:
    kwargs.setdefault("ohem_threshold", 0.7)
    return CrossEntropy(**kwargs)


#: Loss name → factory taking the loss's keyword arguments.
LOSSES: dict[str, Callable[..., nn.Module]] = {
    "ce": CrossEntropy,
    "ohem_ce": _ohem_ce,
    "phuber_ce": PHuberCrossEntropy,
    "partial_ce": PartialCrossEntropy,
    "gated_crf": GatedCRFLoss,
}


def get_loss(name: str, **kwargs: Any) -> nn.Module:
    """A new loss registered as ``name``, made with ``kwargs``."""
    if name not in LOSSES:
        raise ConfigError("losses", f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}")
    return LOSSES[name](**kwargs)
