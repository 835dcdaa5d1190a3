"""The propagation engines by name, each with its options class: one registry for every caller.

``label propagate`` lists them (``--engine``) and makes its flags from their ``Options``
(`frugalseg.options`); the label sources (`frugalseg.autolabel.sources.FlowLabels`) and the annotation
loop's engines (`frugalseg.active.objects.engines`) build theirs here. A new engine is its class (a
`PropagationEngine` with ``Options`` and ``from_options``) and its line in `PROPAGATORS`.
"""

from __future__ import annotations

from typing import Any

from frugalseg.autolabel.flow_propagate import FlowPropagator
from frugalseg.autolabel.propagate import PropagationEngine
from frugalseg.autolabel.sam2_propagate import SAM2Propagator
from frugalseg.options import build_options

#: The propagation engines by name: ``flow`` (weight-free, the default) and ``sam2`` (the user's checkpoint).
PROPAGATORS: dict[str, type[PropagationEngine]] = {
    "flow": FlowPropagator,
    "sam2": SAM2Propagator,
}


def get_propagator(name: str = "flow", **options: Any) -> PropagationEngine:
    """The engine called ``name`` (`PROPAGATORS`) with the ``options`` of its ``Options`` given by name.

    The options of a class with parts (`FlowOptions`) are given by their flat names (``snap_band=5``).

    Raises:
        ConfigError: an unknown name or option (the known ones listed), or a network engine without
            its checkpoint.
        DataError: a SAM 2 checkpoint that is missing or of another size than ``config``.
    """
    built = build_options(PROPAGATORS, name, options, option="engine", noun="propagation engine")
    return PROPAGATORS[name].from_options(built)
