"""The command line owns the callbacks every run shares: the checkpoint (monitoring the task's metric),
the learning-rate monitor and the table of metrics printed at the end of fit."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

from frugalseg.cli.callbacks import PrintMetrics
from frugalseg.cli.lightning import (
    VOSCLI,
    BestAndLastCheckpoint,
    FrugalsegCLI,
    checkpoint_filename,
    monitor_mode,
)
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.vos import VOSDataModule
from frugalseg.lightning_modules import DistillationModule, VideoSegmentationModule, VOSModule

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
#: The demo with a small image student, so that building the classes is quick.
DEMO = [
    "--config",
    str(CONFIGS / "demo.yaml"),
    "--model.student",
    "deeplabv3plus_mbv2",
    "--data.num_frames",
    "1",
]


def _cli(args: list[str], vos: bool = False) -> FrugalsegCLI | VOSCLI:
    """The classes a command line builds, without running a subcommand."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        if vos:
            return VOSCLI(VOSModule, VOSDataModule, run=False, args=args)
        return FrugalsegCLI(
            VideoSegmentationModule, VideoSegDataModule, subclass_mode_model=True, run=False, args=args
        )


def _callbacks(cli, kind: type) -> list:
    return [callback for callback in cli.trainer.callbacks if type(callback) is kind]


def test_every_run_gets_a_checkpoint_of_the_tasks_metric_a_rate_monitor_and_the_table():
    cli = _cli(DEMO)
    (checkpoint,) = _callbacks(cli, BestAndLastCheckpoint)
    assert (checkpoint.monitor, checkpoint.mode, checkpoint.save_last) == ("val/mIoU", "max", True)
    assert checkpoint.filename == "epoch{epoch}-step{step}-miou{val/mIoU:.3f}"
    assert not checkpoint.auto_insert_metric_name
    assert len(_callbacks(cli, LearningRateMonitor)) == 1 and len(_callbacks(cli, PrintMetrics)) == 1
    assert cli.trainer.checkpoint_callback is checkpoint
    assert [c for c in cli.trainer.callbacks if isinstance(c, ModelCheckpoint)] == [checkpoint]


def test_the_monitor_follows_the_class_the_config_names(monkeypatch):
    monkeypatch.setattr(DistillationModule, "monitor", "val/bIoU")
    monkeypatch.setattr(DistillationModule, "mode", "min")
    small = "{decoder_channels: 16}"
    cli = _cli(
        [
            *DEMO,
            "--model.class_path", "frugalseg.lightning_modules.DistillationModule",
            "--model.init_args.teacher", "deeplabv3plus_mbv2",
            "--model.init_args.teacher_args", small,
            "--model.init_args.student_args", small,
        ]
    )  # fmt: skip
    (checkpoint,) = _callbacks(cli, BestAndLastCheckpoint)
    assert (checkpoint.monitor, checkpoint.mode) == ("val/bIoU", "min")
    assert checkpoint.filename == "epoch{epoch}-step{step}-biou{val/bIoU:.3f}"


def test_a_config_that_monitors_another_metric_keeps_it_and_the_vos_command_monitors_jf(tmp_path):
    finetune = _cli(
        [
            "--config", str(CONFIGS / "temporal_finetune.yaml"),
            "--trainer.accelerator", "cpu",
            "--model.student", "hrnetv2_w18_small",
            "--model.init_weights", "null",
            "--data.root", "null",
        ]
    )  # fmt: skip
    (checkpoint,) = _callbacks(finetune, BestAndLastCheckpoint)
    assert (checkpoint.monitor, checkpoint.mode) == ("val/TC", "max")
    assert checkpoint.filename == checkpoint_filename("val/TC") == "epoch{epoch}-step{step}-tc{val/TC:.3f}"
    vos = _cli(["--config", str(CONFIGS / "stm_davis.yaml"), "--data.root", str(tmp_path)], vos=True)
    (checkpoint,) = _callbacks(vos, BestAndLastCheckpoint)
    assert (checkpoint.monitor, checkpoint.mode) == ("val/JF", "max")
    assert len(_callbacks(vos, PrintMetrics)) == 1


def test_options_of_the_shared_callbacks_and_runs_that_rule_them_out():
    cli = _cli([*DEMO, "--checkpoint.monitor", "val/TC", "--checkpoint.save_top_k", "3"])
    (checkpoint,) = _callbacks(cli, BestAndLastCheckpoint)
    assert (checkpoint.monitor, checkpoint.mode, checkpoint.save_top_k) == ("val/TC", "max", 3)
    quiet = _cli([*DEMO, "--trainer.logger", "false", "--trainer.enable_checkpointing", "false"])
    assert not any(isinstance(callback, ModelCheckpoint) for callback in quiet.trainer.callbacks)
    assert not _callbacks(quiet, LearningRateMonitor)
    assert len(_callbacks(quiet, PrintMetrics)) == 1


def test_a_monitored_loss_keeps_its_lowest_value_unless_told():
    """``--checkpoint.monitor train/loss`` had taken the semantic task's ``max``: the worst epoch was kept."""
    (checkpoint,) = _callbacks(_cli([*DEMO, "--checkpoint.monitor", "train/loss"]), BestAndLastCheckpoint)
    assert (checkpoint.monitor, checkpoint.mode) == ("train/loss", "min")
    told = _cli([*DEMO, "--checkpoint.monitor", "train/loss", "--checkpoint.mode", "max"])
    assert _callbacks(told, BestAndLastCheckpoint)[0].mode == "max"
    assert [monitor_mode(name, "max") for name in ("val/quality_mae", "val/bIoU", "val/JF", None)] == [
        "min",
        "max",
        "max",
        "max",
    ]


def test_val_tc_is_refused_where_the_data_scores_no_frame_pairs(tmp_path, capsys):
    from frugalseg.cli import main

    root = ["--trainer.default_root_dir", str(tmp_path)]
    off = ["--data.temporal.consistency", "false"]
    assert main(["fit", *DEMO, *root, *off, "--checkpoint.monitor", "val/TC"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --checkpoint.monitor: 'val/TC' is logged only with data.temporal.consistency true"
    ]
    assert not any(tmp_path.iterdir())


def test_print_metrics_shows_the_last_validation_metrics(capsys):
    trainer = SimpleNamespace(
        callback_metrics={"val/mIoU": torch.tensor(0.5), "train/loss": torch.tensor(2.0)},
        global_step=12,
    )
    PrintMetrics().on_fit_end(trainer, None)
    printed = capsys.readouterr().out
    assert "validation after 12 steps" in printed and "val/mIoU" in printed and "0.5000" in printed
    assert "train/loss" not in printed


@pytest.mark.parametrize("command", [["fit"], ["vos", "fit"]])
def test_help_lists_the_shared_callbacks(command, capsys):
    from frugalseg.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for option in ("--checkpoint.monitor", "--checkpoint.dirpath", "--lr_monitor.logging_interval"):
        assert option in printed
    assert "null (default): the task's `monitor`" in " ".join(printed.split())


@pytest.mark.parametrize(
    ("vos", "words", "built"),
    [
        (False, ["validate", *DEMO, "--print_config"], ["validate"]),
        (False, ["--help"], ["fit", "validate", "test", "predict"]),
        (True, ["test", "--help"], ["test"]),
        (True, ["--help"], ["fit", "validate", "test"]),
    ],
)
def test_only_the_parser_of_the_named_subcommand_is_built(vos, words, built, monkeypatch, capsys):
    """Building a subcommand's parser is most of the start-up: a command line that names one builds
    that one alone; one that names none (``--help``) builds every one it offers."""
    from lightning.pytorch.cli import LightningCLI

    from frugalseg.cli.lightning import run_lightning_cli, run_vos_cli

    names = []
    prepare = LightningCLI._prepare_subcommand_parser

    def recording(self, klass, subcommand, **kwargs):
        names.append(subcommand)
        return prepare(self, klass, subcommand, **kwargs)

    monkeypatch.setattr(LightningCLI, "_prepare_subcommand_parser", recording)
    with pytest.raises(SystemExit) as exit_info:
        (run_vos_cli if vos else run_lightning_cli)(words)
    assert exit_info.value.code == 0
    assert names == built


@pytest.mark.parametrize(("monitor", "hint"), [("val/MIoU", "did you mean val/mIoU? "), ("val/IoU", "")])
def test_a_monitor_the_task_does_not_log_is_refused_before_training(tmp_path, capsys, monitor, hint):
    """Lightning found it at the first validation: a traceback after an epoch's training, no checkpoint."""
    from frugalseg.cli import main

    root = ["--trainer.default_root_dir", str(tmp_path)]
    assert main(["fit", *DEMO, *root, "--checkpoint.monitor", monitor, "--trainer.max_epochs", "1"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --checkpoint.monitor: {monitor!r} is no metric this task logs: {hint}it logs val/mIoU, "
        "val/mAcc, val/bIoU, val/TC"
    ]
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--trainer.accelerator", "gpus", "You selected an invalid accelerator name: `accelerator='gpus'`"),
        ("--trainer.strategy", "dpp", "You selected an invalid strategy name: `strategy='dpp'`"),
    ],
)
def test_a_trainer_option_lightning_does_not_know_is_one_line(tmp_path, capsys, option, value, said):
    """Lightning's ValueError for a misspelt accelerator or strategy had been a 45-line traceback, exit 1."""
    from frugalseg.cli import main

    assert main(["fit", *DEMO, "--trainer.default_root_dir", str(tmp_path), option, value]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: --trainer: {said}")


def test_a_checkpoint_mode_other_than_min_or_max_is_one_line(tmp_path, capsys):
    """Lightning's refusal had been a 64-line traceback while the callbacks were built."""
    from frugalseg.cli import main

    root = ["--trainer.default_root_dir", str(tmp_path)]
    assert main(["fit", *DEMO, *root, "--checkpoint.mode", "maximum"]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: --checkpoint.mode: is min or max, got 'maximum'"]
