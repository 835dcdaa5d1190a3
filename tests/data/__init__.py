"""Tests of frugalseg.data: readers, io, check, synthetic data; fake_*.py write one tiny tree per layout."""
