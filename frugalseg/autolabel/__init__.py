"""The pseudo-label factory: propagation engines and the label store (usable without Lightning)."""

from frugalseg.autolabel.propagate import FlowPropagator, PropagationSummary, propagate_split
from frugalseg.autolabel.store import LabelStore, LabelStoreError

__all__ = ["FlowPropagator", "LabelStore", "LabelStoreError", "PropagationSummary", "propagate_split"]
