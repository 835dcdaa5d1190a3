"""Tests of frugalseg.cli: dispatch and help, and bad input through the real command line."""
