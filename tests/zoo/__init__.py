"""Tests of frugalseg.zoo: one module per architecture, the registry, weights and converters."""
