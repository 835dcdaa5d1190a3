"""Every option a config can set has help: ``frugalseg fit --model.help CLASS`` shows a line for each.

The classes are found, not listed: every task (subclass of `BaseTask`), datamodule, label source and
callback of the command line in the package, and the frugalseg classes their arguments take (such
as `KDTerm`). jsonargparse reads each argument's help from the class docstring's ``Args:`` section,
one line per argument; grouped lines (``lr, momentum: SGD``) give none.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import typing

import lightning as L
import pytest
from jsonargparse import ArgumentParser

import frugalseg
from frugalseg.data.sources import LabelSource
from frugalseg.lightning_modules import BaseTask

#: Where the command line's callbacks come from.
CALLBACK_ROOMS = ("frugalseg.lightning_modules", "frugalseg.cli")


def _import_package() -> None:
    for module in pkgutil.walk_packages(frugalseg.__path__, "frugalseg."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def _subclasses(base: type) -> set[type]:
    found, todo = set(), [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return {cls for cls in found if cls.__module__.startswith("frugalseg.") and not inspect.isabstract(cls)}


def _argument_classes(cls: type) -> set[type]:
    """frugalseg classes named in the constructor's type hints (``list[KDTerm] | None`` → KDTerm);
    enumerations, whose values are words, are left out."""
    hints = typing.get_type_hints(cls.__init__)
    found = set()
    for hint in hints.values():
        todo = [hint]
        while todo:
            current = todo.pop()
            todo.extend(typing.get_args(current))
            if inspect.isclass(current) and current.__module__.startswith("frugalseg."):
                found.add(current)
    return {c for c in found if not inspect.isabstract(c) and not issubclass(c, enum.Enum)}


def configurable_classes() -> list[type]:
    _import_package()
    classes = _subclasses(BaseTask) | _subclasses(L.LightningDataModule) | _subclasses(LabelSource)
    classes |= {cls for cls in _subclasses(L.Callback) if cls.__module__.startswith(CALLBACK_ROOMS)}
    for cls in list(classes):
        classes |= _argument_classes(cls)
    return sorted(classes, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


CLASSES = configurable_classes()


def test_the_classes_a_config_names_are_found():
    names = {cls.__name__ for cls in CLASSES}
    expected = {
        "VideoSegmentationModule",
        "DistillationModule",
        "VOSModule",
        "KDTerm",
        "VideoSegDataModule",
        "VOSDataModule",
        "RecipeOptions",
        "LabelOptions",
        "SegmentationPredictionWriter",
        "FlowLabels",
        "StoredLabels",
        "SimulatedClicks",
        "PrintMetrics",
    }
    assert expected <= names, expected - names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_constructor_argument_has_help(cls: type):
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "x", fail_untyped=False)
    options = [a for a in parser._actions if a.dest.startswith("x.") and not a.dest.endswith(".help")]
    missing = [a.dest[2:] for a in options if not (a.help or "").strip()]
    assert not missing, f"{cls.__qualname__}: no docstring line for {missing} (one `name: …` line each)"
    documented = {a.dest[2:] for a in options}
    expected = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
    assert expected <= documented, f"{cls.__qualname__}: jsonargparse does not see {expected - documented}"
