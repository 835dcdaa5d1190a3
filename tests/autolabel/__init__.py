"""Tests of frugalseg.autolabel: the label store, propagation, SAM 2, clicks, boxes, refinement, reports."""
