"""Tests of the benchmarks' own logic: their protocols and summaries, not their figures."""
