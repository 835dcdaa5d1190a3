"""What a resume says of its checkpoint's run, on hand-made checkpoints and run folders: the model options
its own replace (`_note_replaced_options`), the data options in which it differs (`note_other_data`), and
newer runs that ``--ckpt_path last`` skips (`note_unsaved_runs`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from jsonargparse import Namespace

from frugalseg.autolabel.sources import StoredLabels
from frugalseg.cli.run_checks import _note_replaced_options, note_other_data, note_unsaved_runs
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


def test_the_model_options_the_data_gives_are_not_said_to_be_replaced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A CamVid resume had said "num_classes 19 → 11": the parser's default against the checkpoint's, though
    the data set gives the model its 11 classes either way."""
    command = Namespace(model=Namespace(lr=0.5, num_classes=19, ignore_index=255, num_frames=4, momentum=0.9))
    stored = {"lr": 0.01, "num_classes": 11, "ignore_index": 0, "num_frames": 1, "momentum": 0.9}
    with caplog.at_level(logging.WARNING, logger="frugalseg"):
        _note_replaced_options(command, "run/last.ckpt", {"hyper_parameters": stored})
    (message,) = caplog.messages
    assert "whose model options replace the config's: lr 0.5 → 0.01; to start a new run" in message


def test_last_says_when_it_skips_newer_runs_that_saved_no_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """version_1 was stopped before its first checkpoint (it logged a training step); version_2 is the
    resuming run's own folder; version_3 and version_4 a `validate` and a `predict` run logged beside them
    (they had been named too); version_5 a fit stopped early whose config.yaml was saved."""
    chosen = tmp_path / "version_0" / "checkpoints" / "last.ckpt"
    folders = [chosen.parent, *(tmp_path / f"version_{n}" for n in (1, 2, 3, 4, 5, 10))]
    for folder in folders:
        folder.mkdir(parents=True)
    chosen.touch()
    (tmp_path / "version_1" / "metrics.csv").write_text("epoch,lr-AdamW,step,train/loss\n", encoding="utf-8")
    (tmp_path / "version_3" / "metrics.csv").write_text("epoch,step,val/J,val/F,val/JF\n", encoding="utf-8")
    (tmp_path / "version_4" / "config.yaml").write_text(
        "ckpt_path: null\nreturn_predictions: false\n"
    )  # predict
    (tmp_path / "version_5" / "config.yaml").write_text(
        "ckpt_path: null\nweights_only: null\n"
    )  # a stopped fit
    (tmp_path / "version_10" / "checkpoints").mkdir()
    (tmp_path / "version_10" / "checkpoints" / "last-v1.ckpt").touch()
    with caplog.at_level(logging.WARNING, logger="frugalseg"):
        note_unsaved_runs(chosen, str(tmp_path / "version_2"))
    assert caplog.messages == [
        f"--ckpt_path last resumes {chosen}, of version_0: the newer version_1, version_5 hold no last.ckpt "
        "(stopped before their first checkpoint); give the checkpoint's path to resume another, or leave "
        "--ckpt_path out to start afresh"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="frugalseg"):
        note_unsaved_runs(tmp_path / "version_10" / "checkpoints" / "last-v1.ckpt", None)
    assert caplog.messages == []


def test_best_is_ranked_by_the_monitor_and_mode_its_runs_recorded(tmp_path: Path) -> None:
    """A fit monitoring train/loss (min) resumed once: `validate --ckpt_path best`, whose own callback watches
    val/mIoU (max), had taken the version with the highest loss."""
    import os

    import torch

    from frugalseg.cli.run_checks import best_named

    def last(version: int, monitor: str, mode: str, score: float, when: int) -> Path:
        folder = tmp_path / f"version_{version}" / "checkpoints"
        folder.mkdir(parents=True)
        best = folder / f"best{version}.ckpt"
        best.write_bytes(b"")
        key = f"ModelCheckpoint{{'monitor': {monitor!r}, 'mode': {mode!r}, 'every_n_train_steps': 0}}"
        state = {"best_model_path": str(best), "best_model_score": torch.tensor(score)}
        torch.save({"callbacks": {key: state}}, folder / "last.ckpt")
        os.utime(folder / "last.ckpt", ns=(when, when))
        return folder / "last.ckpt"

    lasts = [last(0, "train/loss", "min", 0.5, 10**9), last(1, "train/loss", "min", 0.9, 2 * 10**9)]
    assert best_named(lasts) == tmp_path / "version_0" / "checkpoints" / "best0.ckpt"
    # an older run of another monitor is not ranked against the newest run's: its scores are of another metric
    lasts.append(last(2, "val/mIoU", "max", 0.7, 3 * 10**9))
    assert best_named(lasts) == tmp_path / "version_2" / "checkpoints" / "best2.ckpt"
    lasts.append(last(3, "val/mIoU", "max", 0.6, 4 * 10**9))
    assert best_named(lasts) == tmp_path / "version_2" / "checkpoints" / "best2.ckpt"
