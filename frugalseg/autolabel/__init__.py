"""The pseudo-label factory: propagation engines and the label store (usable without Lightning)."""

from frugalseg.autolabel.engines import PROPAGATORS, get_propagator
from frugalseg.autolabel.flow_options import FlowOptions
from frugalseg.autolabel.flow_propagate import FlowPropagator
from frugalseg.autolabel.propagate import propagate_split
from frugalseg.autolabel.runs import LabellingSummary
from frugalseg.autolabel.store import LabelStore
from frugalseg.errors import LabelStoreError

__all__ = [
    "PROPAGATORS",
    "FlowOptions",
    "FlowPropagator",
    "LabelStore",
    "LabelStoreError",
    "LabellingSummary",
    "get_propagator",
    "propagate_split",
]
