"""Tests of frugalseg.active: the simulated corrective annotator."""
