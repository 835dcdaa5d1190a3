"""A resume's data options against its checkpoint's run (`note_other_data`), on hand-made checkpoints."""

from __future__ import annotations

import logging

import pytest
from jsonargparse import Namespace

from frugalseg.autolabel.sources import StoredLabels
from frugalseg.cli.run_checks import note_other_data
from frugalseg.data.clips import LabelKind


def _checkpoint(store: str) -> dict:
    """What a run trained on the pseudo-labels of ``store`` keeps of its data (the source it made of it)."""
    labels = {"pseudo": StoredLabels(store, LabelKind.PSEUDO).describe(), "min_confidence": 0.0}
    return {"datamodule_hyper_parameters": {"labels": labels, "recipe": {"name": "F2s"}}}


def _command(store: str) -> Namespace:
    return Namespace(
        data=Namespace(labels=Namespace(pseudo=store, min_confidence=0.0), recipe=Namespace(name="F2s"))
    )


def test_the_same_label_store_given_again_is_no_difference(caplog: pytest.LogCaptureFixture) -> None:
    """The run keeps the folder as its source's description; the command gives the folder: the same."""
    with caplog.at_level(logging.WARNING, logger="frugalseg"):
        note_other_data(_command("runs/sfit"), "run/checkpoints/last.ckpt", _checkpoint("runs/sfit"))
    assert caplog.messages == []


def test_another_label_store_is_named(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="frugalseg"):
        note_other_data(_command("runs/other"), "run/checkpoints/last.ckpt", _checkpoint("runs/sfit"))
    (message,) = caplog.messages
    assert "labels.pseudo.store 'runs/sfit' → 'runs/other'" in message
