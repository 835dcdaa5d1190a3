"""The loss registry: a configuration names a loss (``ce``, ``phuber_ce``, …), `get_loss` makes it."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from frugalseg.errors import ConfigError
from frugalseg.losses.cross_entropy import CrossEntropy
from frugalseg.losses.gated_crf import GatedCRFLoss, PartialCrossEntropy
from frugalseg.losses.phuber import PHuberCrossEntropy

#: Loss name → factory taking the loss's keyword arguments.
LOSSES: dict[str, Callable[..., nn.Module]] = {
    "ce": CrossEntropy,
    "ohem_ce": functools.partial(CrossEntropy, ohem_threshold=0.7),
    "phuber_ce": PHuberCrossEntropy,
    "partial_ce": PartialCrossEntropy,
    "gated_crf": GatedCRFLoss,
}


def get_loss(name: str, **kwargs: Any) -> nn.Module:
    """A new loss registered as ``name``, made with ``kwargs``.

    Raises:
        ConfigError: an unknown loss, or an argument the loss does not take (the nearest one named).
    """
    if name not in LOSSES:
        raise ConfigError("losses", f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}")
    accepted = list(inspect.signature(LOSSES[name]).parameters)
    for key in kwargs:
        if key not in accepted:
            nearest = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f"; did you mean {nearest[0]!r}?" if nearest else ""
            raise ConfigError(
                "loss_args", f"loss {name!r} takes no argument {key!r} (it takes {', '.join(accepted)}){hint}"
            )
    return LOSSES[name](**kwargs)
