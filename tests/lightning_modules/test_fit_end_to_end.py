"""`frugalseg fit|validate` as users run them: resume from a checkpoint, DDP on CPU."""

from __future__ import annotations

import csv
import json
import logging
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from cli_helpers import lightning_args

from frugalseg.cli.lightning import run_lightning_cli
from frugalseg.data.clips import LabelKind
from frugalseg.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "configs" / "demo.yaml")


def _small(root: Path, out: Path) -> list[str]:
    """Overrides that shrink the demo to the tiny synthetic set and keep every file under ``out``."""
    return lightning_args(
        DEMO, root, out, augment={"crop_size": "[64,128]"}, recipe={"budget": 6}, loader={"batch_size": 2}
    )


#: A small image student where the model does not matter (DDP's processes, resuming, the recipe), one
#: sample per batch so that each of two processes has 2 batches of its 3 samples, as one process has
#: of 6 (HRNet has no image-level pooling, which needs two samples to train its BatchNorm).
SMALL_STUDENT = [
    "--model.student",
    "hrnetv2_w18_small",
    "--data.num_frames",
    "1",
    "--data.loader.batch_size",
    "1",
]


def _last_val_metrics(out: Path) -> dict[str, float]:
    """The validation metrics of the last row that has them in the CSV log under ``out``."""
    (metrics_file,) = out.glob("**/metrics.csv")
    with metrics_file.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val/mIoU")]
    return {k: float(v) for k, v in rows[-1].items() if k.startswith("val/") and v}


@pytest.mark.slow
def test_ddp_fit_validates_as_one_process_and_a_run_resumes_from_its_checkpoint(tiny_streets, tmp_path):
    """`frugalseg fit` with DDP on two CPU processes, one epoch of 2 steps on recipe B3: rank 0 writes
    samples.json and the last checkpoint, and the epoch's validation metrics, gathered from both
    processes, equal `frugalseg validate` of that checkpoint in one process (3 validation clips do not
    split evenly over 2 processes, so a sampler that pads with repeats would change them). A run in
    this process resumes from the checkpoint (steps, epochs and the scheduler continue) and reports
    every metric, with the recipe's samples and pseudo-labels."""
    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.limit_train_batches", "2"]
    # a part of the loss logged on step and epoch (synced at each step): the temporal consistency term
    common += ["--model.temporal_weight", "0.5", "--data.temporal.train_pair", "true"]
    csv_logger = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir"]
    ddp = ["--trainer.max_epochs", "1", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    # the progress bar on, as a user runs it: its epoch-end read of the metrics on rank 0 alone had paired
    # with the epoch line's reduce on rank 1, and the run hung at its first epoch's end
    ddp += ["--trainer.enable_progress_bar", "true"]
    command = [str(Path(sys.executable).parent / "frugalseg"), "fit", *common, *ddp]
    command += [*csv_logger, str(tmp_path / "ddp")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sync_dist" not in result.stderr  # each kind's epoch loss is summed over both processes
    assert result.stdout.count("epoch 1/1 done") == 1  # its loss the mean over both processes, printed once
    assert "train/loss_temporal " in result.stdout and "train/loss_temporal_step" not in result.stdout
    (samples_file,) = tmp_path.glob("**/samples.json")
    samples = json.loads(samples_file.read_text(encoding="utf-8"))
    assert samples["recipe"] == "B3" and len(samples["samples"]) == 6
    (last,) = tmp_path.glob("**/checkpoints/last.ckpt")
    assert torch.load(last, weights_only=True)["global_step"] == 2  # each process trained 2 steps

    two = _last_val_metrics(tmp_path / "ddp")
    run_lightning_cli(["validate", *common, *csv_logger, str(tmp_path / "one"), "--ckpt_path", str(last)])
    one = _last_val_metrics(tmp_path / "one")
    assert set(one) == {"val/mIoU", "val/mAcc", "val/bIoU", "val/TC"}
    assert 0 < one["val/mIoU"] < 1 and 0 < one["val/bIoU"] < 1 and 0 < one["val/TC"] < 1
    assert one.keys() == two.keys()
    for name, value in one.items():
        assert two[name] == pytest.approx(value, abs=1e-6), name

    resumed = run_lightning_cli(
        [
            "fit",
            *common,
            "--trainer.limit_val_batches",
            "1",
            "--trainer.max_epochs",
            "2",
            "--ckpt_path",
            str(last),
        ]
    )
    assert resumed.trainer.global_step == 4
    assert resumed.trainer.current_epoch == 2
    # The scheduler resumed too: the rate after 4 of 4 planned steps is the floor of the poly decay.
    assert resumed.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-4, rel=1e-3)
    metrics = resumed.trainer.callback_metrics
    for name in ("train/loss", "val/mIoU", "val/mAcc", "val/bIoU", "val/TC"):
        assert name in metrics, f"{name} missing from {sorted(metrics)}"
        assert math.isfinite(float(metrics[name]))
    for name in ("val/mIoU", "val/mAcc", "val/bIoU", "val/TC"):
        assert 0.0 <= float(metrics[name]) <= 1.0
    # B3 on 4 clips: budget 6 → 2 clips × offsets (−10, 0, +10), pseudo-labels made in prepare_data.
    kinds = sorted(sample.kind.value for sample in resumed.datamodule.samples)
    assert kinds == ["fine", "fine", "pseudo", "pseudo", "pseudo", "pseudo"]
    source = resumed.datamodule.source(LabelKind.PSEUDO)
    manifest = source.store_for(resumed.datamodule.format_reader()) / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    made = {(r["clip_id"], r["offset"]) for r in records if r["kind"] == "pseudo"}
    drawn = {(s.clip_id, s.offset) for s in resumed.datamodule.samples if s.kind is LabelKind.PSEUDO}
    assert len(drawn) == 2 * 2 and drawn <= made  # the drawn clips' labels (other tests may add others)


def test_a_run_without_a_logger_resumes_from_its_last_checkpoint(tiny_streets, tmp_path):
    """Without a logger Lightning saves to ``<default_root_dir>/checkpoints``: ``--ckpt_path last`` looks."""
    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.logger", "false"]
    common += ["--trainer.limit_val_batches", "0"]
    run_lightning_cli(["fit", *common, "--trainer.max_steps", "1"])
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1
    # a resume with a longer plan spreads the rate decay over it: said, as the run is not the unstopped one
    with pytest.warns(UserWarning, match="planned its learning-rate decay over 1 steps and this one over 2"):
        resumed = run_lightning_cli(["fit", *common, "--trainer.max_steps", "2", "--ckpt_path", "last"])
    assert resumed.trainer.global_step == 2
    # a resumed run's checkpoint resumes too: it had held the parser's ClosedUnitInterval, no plain float
    again = run_lightning_cli(["fit", *common, "--trainer.max_steps", "3", "--ckpt_path", "last"])
    assert again.trainer.global_step == 3


def test_a_resume_past_max_epochs_is_one_line_naming_the_option(tiny_streets, tmp_path):
    """Lightning's MisconfigurationException had ended the command in a traceback (exit 1)."""
    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.logger", "false"]
    common += ["--trainer.limit_val_batches", "0", "--trainer.limit_train_batches", "1"]
    run_lightning_cli(["fit", *common, "--trainer.max_epochs", "3"])
    with pytest.raises(
        ConfigError, match=r"current_epoch=2, but you have set Trainer\(max_epochs=1\)\. The run"
    ) as refused:
        run_lightning_cli(["fit", *common, "--trainer.max_epochs", "1", "--ckpt_path", "last"])
    assert refused.value.option == "--trainer.max_epochs"


def test_a_resume_says_which_model_options_its_checkpoint_replaces(tiny_streets, tmp_path, caplog):
    """LightningCLI builds the model from the checkpoint's options: a next stage's config resumed from the
    stage before trained at the earlier lr, and nothing said so."""
    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.logger", "false"]
    common += ["--trainer.limit_val_batches", "0"]
    run_lightning_cli(["fit", *common, "--trainer.max_steps", "1", "--model.lr", "0.02"])
    last = tmp_path / "checkpoints" / "last.ckpt"
    with caplog.at_level(logging.WARNING, logger="frugalseg"):
        resumed = run_lightning_cli(
            ["fit", *common, "--trainer.max_steps", "2", "--model.lr", "0.005", "--ckpt_path", str(last)]
        )
    assert resumed.model.hparams["lr"] == 0.02
    (warning,) = [r.getMessage() for r in caplog.records if "resumes its run" in r.getMessage()]
    assert "whose model options replace the config's: lr 0.005 → 0.02; to start a new run" in warning


def test_last_is_the_file_it_names_its_options_and_refusals_too(tiny_streets, tmp_path, caplog):
    """``--ckpt_path last`` had been resolved after LightningCLI read the file's options: the resume trained
    with the command's lr and said nothing, and another student ended in a state-dict traceback."""
    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.logger", "false"]
    common += ["--trainer.limit_val_batches", "0"]
    run_lightning_cli(["fit", *common, "--trainer.max_steps", "1", "--model.lr", "0.02"])
    with caplog.at_level(logging.WARNING, logger="frugalseg"):
        resumed = run_lightning_cli(
            ["fit", *common, "--trainer.max_steps", "2", "--model.lr", "0.005", "--ckpt_path", "last"]
        )
    assert resumed.model.hparams["lr"] == 0.02 and resumed.trainer.global_step == 2
    (warning,) = [r.getMessage() for r in caplog.records if "resumes its run" in r.getMessage()]
    assert "whose model options replace the config's: lr 0.005 → 0.02; to start a new run" in warning
    other = ["--model.student", "deeplabv3plus_mbv2", "--ckpt_path", "last"]
    with pytest.raises(
        ConfigError, match=r"'deeplabv3plus_mbv2' was asked for, but the checkpoint .*last\.ckpt"
    ):
        run_lightning_cli(["validate", *common, *other])


def test_a_next_stage_resumes_when_its_starting_weights_have_moved(tiny_streets, tmp_path, caplog):
    """A checkpoint keeps no starting weights (`drop_starting_weights`): the config's init_weights, moved
    since, had been refused on resume, and named as an option the checkpoint replaces. hparams.yaml is plain
    YAML."""
    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.limit_val_batches", "0"]
    run_lightning_cli(["fit", *common, "--trainer.logger", "false", "--trainer.max_steps", "1"])
    first = tmp_path / "first.ckpt"
    (tmp_path / "checkpoints" / "last.ckpt").rename(first)
    csv = [
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir",
        str(tmp_path),
    ]
    stage = [*common, *csv, "--model.init_weights", str(first)]
    run_lightning_cli(["fit", *stage, "--trainer.max_steps", "1"])
    (hparams,) = tmp_path.glob("**/hparams.yaml")
    assert "!!python" not in hparams.read_text(encoding="utf-8")  # jsonargparse's restricted numbers
    first.rename(tmp_path / "moved.ckpt")
    (last,) = tmp_path.glob("**/checkpoints/last.ckpt")
    with caplog.at_level(logging.WARNING, logger="frugalseg"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = run_lightning_cli(["fit", *stage, "--trainer.max_steps", "2", "--ckpt_path", str(last)])
    assert resumed.trainer.global_step == 2
    assert not [r for r in caplog.records if "init_weights" in r.getMessage()]
    # Lightning's note that the resume's version folder keeps its own bests, with its site-packages path
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]


def test_a_fast_dev_run_writes_no_checkpoint(tiny_streets, tmp_path):
    """Lightning says a fast_dev_run saves nothing; its ModelCheckpoint wrote last.ckpt at the end (and the
    datamodule samples.json in the working folder)."""
    run = run_lightning_cli(
        ["fit", *_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.fast_dev_run", "true"]
    )
    assert run.trainer.global_step == 1
    assert run.trainer.checkpoint_callback is None
    assert not list(tmp_path.glob("**/*.ckpt")) and not list(tmp_path.glob("**/samples.json"))


def test_a_resume_with_nothing_left_to_train_is_refused_naming_the_option_and_leaves_no_folder(
    tiny_streets, tmp_path
):
    """It trained nothing, exited 0 and left an empty version folder (a helper's walkthrough)."""
    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.limit_val_batches", "0"]
    run_lightning_cli(["fit", *common, "--trainer.max_steps", "2"])
    before = sorted(tmp_path.rglob("version_*"))
    assert len(before) == 1
    with pytest.raises(
        ConfigError, match=r"is at step 2 \(epoch \d+\), where this run's --trainer.max_steps 2 "
    ):
        run_lightning_cli(["fit", *common, "--trainer.max_steps", "2", "--ckpt_path", "last"])
    assert sorted(tmp_path.rglob("version_*")) == before
    # its epochs are counted from 1, as the epoch lines count them ("epoch 1/1 done")
    one_epoch = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1"]
    run_lightning_cli(["fit", *common, *one_epoch, "--trainer.max_steps", "-1"])
    with pytest.raises(
        ConfigError, match=r"is at step \d+ \(epoch 1/1\), where this run's --trainer.max_epochs 1 "
    ):
        run_lightning_cli(["fit", *common, *one_epoch, "--trainer.max_steps", "-1", "--ckpt_path", "last"])
    # a fast_dev_run sets its own max_steps: "give a larger --trainer.max_steps" had changed nothing
    quick = ["--trainer.fast_dev_run", "true", "--trainer.max_steps", "10", "--ckpt_path", "last"]
    with pytest.raises(
        ConfigError, match=r"is at step \d+, and a fast_dev_run trains 1 step\(s\) from the start"
    ):
        run_lightning_cli(["fit", *common, *quick])


@pytest.mark.parametrize("where", ["training_step", "setup"])
def test_a_resume_that_fails_before_its_first_step_leaves_no_folder(
    tiny_streets, tmp_path, monkeypatch, where
):
    """The restored steps counted as the resumed run's: its empty version folder was kept (a failure in
    the data's set-up, before Lightning restores the checkpoint, counted a negative number of steps)."""
    from frugalseg.datamodules.datamodule import VideoSegDataModule
    from frugalseg.lightning_modules import VideoSegmentationModule

    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.limit_val_batches", "0"]
    run_lightning_cli(["fit", *common, "--trainer.max_steps", "1"])
    before = sorted(tmp_path.rglob("version_*"))
    assert len(before) == 1

    def fails(*args, **kwargs):
        raise RuntimeError("a bad batch")

    owner = VideoSegmentationModule if where == "training_step" else VideoSegDataModule
    monkeypatch.setattr(owner, where, fails)
    with pytest.raises(RuntimeError, match="a bad batch"):
        run_lightning_cli(["fit", *common, "--trainer.max_steps", "2", "--ckpt_path", "last"])
    assert sorted(tmp_path.rglob("version_*")) == before


def test_a_resume_says_which_data_options_differ_from_its_checkpoint_s_run(tiny_streets, tmp_path, caplog):
    """LightningCLI restores the model's options, not the data's: a resume without the run's config trained
    on other data (the defaults' recipe budget and batch size) and nothing said so."""
    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.limit_val_batches", "0"]
    run_lightning_cli(["fit", *common, "--trainer.max_steps", "1"])
    # options of how the data is read change nothing it trains on: no word of them
    quiet = ["--data.loader.cache_frames", "false", "--data.loader.val_batch_size", "1"]
    with caplog.at_level(logging.WARNING, logger="frugalseg"):
        run_lightning_cli(["fit", *common, *quiet, "--trainer.max_steps", "2", "--ckpt_path", "last"])
    assert not [r for r in caplog.records if "data options differ" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="frugalseg"):
        run_lightning_cli(
            ["fit", *common, "--trainer.max_steps", "3", "--data.recipe.budget", "3", "--ckpt_path", "last"]
        )
    (warning,) = [r.getMessage() for r in caplog.records if "data options differ" in r.getMessage()]
    config = next(tmp_path.rglob("version_1/config.yaml"))
    assert warning.endswith(
        f"differ from this command's: recipe.budget 6 → 3; this run trains on the command's (give its "
        f"--config {config} to train on as it did)"
    )


def test_an_epoch_cut_by_max_steps_prints_each_kind_s_loss(tiny_streets, tmp_path, capsys):
    """The epoch line of an epoch stopped by max_steps had shown train/loss alone, no train/loss_<kind>."""
    from frugalseg.cli import main

    steps = ["--trainer.max_epochs", "1", "--trainer.max_steps", "2"]
    assert main(["fit", *_small(tiny_streets, tmp_path), *steps]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert (
        "stopped after 2 of 3 batches" in line and "train/loss_pseudo 4" in line
    )  # the one kind drawn so far


def test_a_monitor_validation_did_not_log_stops_in_one_line_keeping_last_ckpt(tiny_streets, tmp_path):
    """Lightning's MisconfigurationException came after training, in a traceback, with no checkpoint saved; a
    run that ends within an epoch, before any validation, gets no warning about the metric."""
    common = [*_small(tiny_streets, tmp_path), *SMALL_STUDENT, "--trainer.logger", "false"]
    common += ["--checkpoint.monitor", "other/score"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_lightning_cli(["fit", *common, "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0"])
    assert not [w for w in caught if "could not find the monitored key" in str(w.message)]
    (tmp_path / "checkpoints" / "last.ckpt").unlink()
    one_epoch = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1"]
    with pytest.raises(
        ConfigError, match=r"'other/score' was not logged by validation, which logged val/TC, val/bIoU,"
    ):
        run_lightning_cli(["fit", *common, *one_epoch, "--trainer.limit_val_batches", "1"])
    # saved at the validation that did not log it (an epoch of 1 batch, or of all: jsonargparse may read 1.0)
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] >= 1
