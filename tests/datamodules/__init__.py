"""Tests of frugalseg.datamodules: the datamodule, recipes, transforms, the dataset and its frame cache."""
