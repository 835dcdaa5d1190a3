"""Tests of frugalseg.losses: each loss against its formula, and the per-kind routing."""
