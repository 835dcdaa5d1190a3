"""Tests of frugalseg.flow: DIS flow, warping, the forward-backward check and the flow cache."""
