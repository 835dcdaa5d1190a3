"""What a run prints: ``v_num`` as an integer, a model summary without the FLOPs Lightning cannot count for
frugalseg's modules, and none of Lightning's LeafSpec warning or litlogger tip."""

from __future__ import annotations

import io
import logging
import re
import warnings
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch.utils.data import DataLoader, TensorDataset

from frugalseg.cli.callbacks import EpochLines, ModelSummary, ProgressBar
from frugalseg.cli.lightning import quiet_lightning


def test_the_progress_bar_shows_the_version_as_an_integer(monkeypatch):
    monkeypatch.setattr(
        RichProgressBar, "get_metrics", lambda self, trainer, module: {"v_num": 2, "loss": 0.5}
    )
    assert ProgressBar().get_metrics(None, None) == {"v_num": "2", "loss": 0.5}  # type: ignore[arg-type]


def test_a_run_bounded_by_steps_alone_shows_its_epoch_without_a_negative_total():
    bar = ProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=-1)  # --trainer.max_epochs null --trainer.max_steps N
    assert bar._get_train_description(3).rstrip() == "Epoch 3"
    bar._trainer = SimpleNamespace(max_epochs=8)
    assert bar._get_train_description(3).rstrip() == "Epoch 3/7"  # Lightning's own


def test_the_model_summary_leaves_out_flops_that_were_not_counted(capsys):
    data = [(" ", ["0"]), ("Name", ["student"]), ("Type", ["HRNetV2"]), ("Params", ["1.5 M"])]
    data += [("Mode", ["train"]), ("FLOPs", ["0"])]
    ModelSummary.summarize(data, 1_500_000, 1_500_000, 6.0, {"train": 3, "eval": 0}, 0)
    printed = capsys.readouterr().out
    assert "FLOPs" not in printed
    assert "│ 0 │ student │ HRNetV2 │  1.5 M │ train │" in printed
    assert "Total params: 1.5 M" in printed and "Modules in eval mode: 0" in printed
    ModelSummary.summarize(
        data[:-1] + [("FLOPs", ["12 M"])], 1_500_000, 1_500_000, 6.0, {"train": 3, "eval": 0}, 12e6
    )
    assert "Total FLOPs: 12.0 M" in capsys.readouterr().out  # counted: Lightning's table


def test_lightnings_leafspec_warning_and_litlogger_tip_are_kept_quiet(caplog, monkeypatch):
    """Every command, the annotation loops' trainers as much as ``fit``, runs without the warning."""
    import frugalseg.cli as cli

    def dispatch(words):
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use …", FutureWarning, stacklevel=1)
        warnings.warn("another FutureWarning", FutureWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "_dispatch", dispatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli.main(["annotate", "semantic"]) == 0
    assert [str(w.message) for w in caught] == ["another FutureWarning"]
    quiet_lightning()
    with caplog.at_level(logging.INFO):
        rank_zero_info("💡 Tip: For seamless cloud logging and experiment tracking, try installing litlogger")
        rank_zero_info("GPU available: False, used: False")
    assert caplog.messages == ["GPU available: False, used: False"]


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss)
        self.log("lr-SGD", 5.36e-05)  # a small rate keeps its digits
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/mIoU", 0.25)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=5.36e-05)


class _KnownLosses(_Tiny):
    """Returns 1.0 on an epoch's first batch and 3.0 on its second, logged as ``train/loss``."""

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).sum() * 0 + (1.0, 3.0)[batch_idx]
        self.log("train/loss", loss)
        return loss


class _KnownParts(_KnownLosses):
    """Also logs a part of the loss on step and epoch, as the modules' temporal and distillation parts."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train/loss_temporal", loss * 2, on_epoch=True)
        return loss


class _SkippedStep(_KnownLosses):
    """Skips an epoch's first batch (returns None) and returns 3.0 on its second."""

    def training_step(self, batch, batch_idx):
        return None if batch_idx == 0 else super().training_step(batch, batch_idx)


def _fit(
    callback: EpochLines, tmp_path, max_steps: int = -1, ckpt_path: str | None = None, module=None, **trainer
) -> L.Trainer:
    data = DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)
    fitted = L.Trainer(
        max_epochs=2, max_steps=max_steps, callbacks=[callback], enable_progress_bar=False,
        enable_model_summary=False, logger=False, enable_checkpointing=False, default_root_dir=tmp_path,
        **trainer,
    )  # fmt: skip
    fitted.fit(module or _Tiny(), data, data, ckpt_path=ckpt_path)
    return fitted


@pytest.mark.parametrize("accumulate", [1, 2])
def test_the_line_gives_the_epochs_mean_loss_not_its_last_steps(tmp_path, capsys, accumulate):
    """The per-kind losses beside it are epoch means: the total had been the last step's (3.0 here)."""
    _fit(EpochLines(), tmp_path, module=_KnownLosses(), accumulate_grad_batches=accumulate)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and all(": train/loss 2.0000," in line for line in lines)


def test_a_part_logged_on_epoch_shows_its_epoch_mean_once(tmp_path, capsys):
    """Its last step's value (6.0) had been shown; Lightning's ``_step``/``_epoch`` copies are left out."""
    _fit(EpochLines(), tmp_path, module=_KnownParts())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2
    assert all(": train/loss 2.0000, train/loss_temporal 4.0000, val/mIoU" in line for line in lines), lines


def test_a_skipped_step_is_left_out_of_the_mean(tmp_path, capsys):
    """A step that returns None trains nothing: the mean is over the losses returned (it had halved them)."""
    _fit(EpochLines(), tmp_path, module=_SkippedStep())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and all(": train/loss 3.0000," in line for line in lines)


def test_a_run_to_a_pipe_or_file_prints_a_line_per_epoch(tmp_path, capsys):
    """``make demo > log`` showed nothing while it trained: Lightning's bar reaches a file only at the end."""
    _fit(EpochLines(), tmp_path)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split(" done in ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "(step 4): lr-SGD 5.36e-05, train/loss " in lines[1] and lines[1].endswith(", val/mIoU 0.2500")


def test_an_epoch_cut_short_says_so_and_a_resume_with_nothing_left_prints_no_line(tmp_path, capsys):
    trainer = _fit(EpochLines(), tmp_path, max_steps=3)  # 2 batches an epoch
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split(" in ")[0] for line in lines] == [
        "epoch 1/2 done",
        "epoch 2/2 stopped after 1 of 2 batches",
    ]
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    _fit(EpochLines(), tmp_path, max_steps=3, ckpt_path=str(tmp_path / "last.ckpt"))
    assert "epoch " not in capsys.readouterr().out  # it had printed "epoch 2/2 done … (step 3)"


def test_an_epoch_resumed_in_its_middle_counts_its_batches_before_the_resume(tmp_path, capsys):
    """It counted this process's batches alone: ``stopped after 1 of 3 batches`` for a whole epoch."""
    data = DataLoader(TensorDataset(torch.ones(6, 2)), batch_size=2)  # 3 batches an epoch

    def fit(max_steps: int, ckpt_path: str | None = None) -> L.Trainer:
        trainer = L.Trainer(
            max_epochs=2, max_steps=max_steps, callbacks=[EpochLines()], enable_progress_bar=False,
            enable_model_summary=False, logger=False, enable_checkpointing=False, default_root_dir=tmp_path,
        )  # fmt: skip
        trainer.fit(_Tiny(), data, data, ckpt_path=ckpt_path)
        return trainer

    fit(2).save_checkpoint(tmp_path / "middle.ckpt")
    capsys.readouterr()
    assert fit(5, str(tmp_path / "middle.ckpt")).global_step == 3
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split(" in ")[0] for line in lines] == ["epoch 2/2 done"]


class _Decaying(_Tiny):
    """A rate that halves every 2 steps (an epoch's), which the monitor logs every 50 steps only."""

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        halving = torch.optim.lr_scheduler.StepLR(optimizer, 2, 0.5)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": halving, "interval": "step"}}


def test_the_line_gives_the_rate_of_the_epochs_end_not_the_last_one_logged(tmp_path, capsys):
    """With 2 steps an epoch and a log every 50, epoch 2's line had shown the rate logged at step 1."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    class _Logged(_Decaying):
        def training_step(self, batch, batch_idx):
            loss = self.layer(batch[0]).pow(2).mean()
            self.log("train/loss", loss)
            return loss

    callbacks = [EpochLines(), LearningRateMonitor()]
    data = DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)
    L.Trainer(
        max_epochs=3, callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
        logger=CSVLogger(tmp_path), enable_checkpointing=False, log_every_n_steps=50,
        default_root_dir=tmp_path,
    ).fit(_Logged(), data, data)  # fmt: skip
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    rates = [line.split("lr-SGD ")[1].split(",")[0] for line in lines]
    assert rates == ["0.1000", "0.0500", "0.0250"], lines


def test_on_a_terminal_the_bar_shows_the_epochs_and_no_line_is_printed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(EpochLines, "stream", property(lambda self: _Terminal()))
    _fit(EpochLines(), tmp_path)
    assert "epoch 1/2" not in capsys.readouterr().out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_every_lightning_command_has_the_epoch_lines():
    from lightning.pytorch.cli import LightningArgumentParser

    from frugalseg.cli.lightning import TaskCLI

    parser = LightningArgumentParser()
    TaskCLI.add_arguments_to_parser(None, parser)  # type: ignore[arg-type]
    assert "epoch_lines" in parser.callback_keys
    assert parser.get_defaults().epoch_lines.always is False


def test_an_early_stop_is_said_before_the_final_table(tmp_path, capsys):
    """EarlyStopping ended a run after its first epoch of two with no word of why (verbose is off)."""
    from lightning.pytorch.callbacks import EarlyStopping

    from frugalseg.cli.callbacks import PrintMetrics

    data = DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)
    stop = EarlyStopping(monitor="val/mIoU", mode="max", stopping_threshold=0.2)  # 0.25 reaches it
    trainer = L.Trainer(
        max_epochs=2, callbacks=[stop, PrintMetrics()], enable_progress_bar=False, enable_model_summary=False,
        logger=False, enable_checkpointing=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(_Tiny(), data, data)
    out = capsys.readouterr().out
    assert trainer.current_epoch == 1 and "validation after 2 steps" in out
    said = "early stop after epoch 1: Stopping threshold reached: val/mIoU = 0.25 > 0.2. Signaling Trainer"
    assert f"{said} to stop." in out.splitlines(), out


class _Scored(_Tiny):
    """Validation and test metrics with more digits than a table shows."""

    def validation_step(self, batch, batch_idx):
        self.log("val/mIoU", 0.123456789)

    def test_step(self, batch, batch_idx):
        self.log("test/mIoU", 0.987654321)


def test_validate_and_test_print_the_metric_table_to_4_decimals(tmp_path, capsys):
    """`frugalseg validate|test` printed Lightning's table (16 digits) where `fit` prints 4 decimals."""
    from frugalseg.cli.callbacks import PrintMetrics

    data = DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)
    trainer = L.Trainer(
        callbacks=[PrintMetrics()], enable_progress_bar=False, enable_model_summary=False, logger=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.validate(_Scored(), data, verbose=False)
    out = capsys.readouterr().out
    assert out.split()[0] == "validation" and re.search(r"│ val/mIoU +│ +0\.1235 │", out), out
    trainer.test(_Scored(), data, verbose=False)
    out = capsys.readouterr().out
    assert out.split()[0] == "test" and re.search(r"│ test/mIoU +│ +0\.9877 │", out), out
