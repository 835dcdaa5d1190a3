"""What a run prints: ``v_num`` as an integer, a model summary without the FLOPs Lightning cannot count for
frugalseg's modules, and none of Lightning's LeafSpec warning or litlogger tip."""

from __future__ import annotations

import logging
import warnings

from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from frugalseg.cli.callbacks import ModelSummary, ProgressBar
from frugalseg.cli.lightning import quiet_lightning


def test_the_progress_bar_shows_the_version_as_an_integer(monkeypatch):
    monkeypatch.setattr(
        RichProgressBar, "get_metrics", lambda self, trainer, module: {"v_num": 2, "loss": 0.5}
    )
    assert ProgressBar().get_metrics(None, None) == {"v_num": "2", "loss": 0.5}  # type: ignore[arg-type]


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
