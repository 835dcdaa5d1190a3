"""What a `frugalseg` run leaves behind: ``last.ckpt`` is its latest state whatever the monitored
metric did, and a run that failed keeps the folder it wrote into (a predict's PNGs)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch
from cli_helpers import lightning_args
from lightning.pytorch.callbacks import LambdaCallback, ModelCheckpoint

from frugalseg.cli.lightning import run_lightning_cli
from frugalseg.data.formats import get_format
from frugalseg.errors import DataError
from frugalseg.lightning_modules import VideoSegmentationModule
from frugalseg.lightning_modules.publish import _checkpoint_metrics

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "configs" / "demo.yaml")
#: An image student of DeepLabV3+-MobileNetV2 with a narrow decoder, one frame a sample.
SMALL = ["--model.student", "deeplabv3plus_mbv2", "--model.student_args", "{decoder_channels: 16}"]
SMALL += ["--data.num_frames", "1"]
TRUNCATED = "the image file ends early (truncated): its decoded pixels would be wrong"


def _common(root: Path, out: Path, batch_size: int = 2) -> list[str]:
    loader = {"batch_size": batch_size}
    options = {"augment": {"crop_size": "[64,128]"}, "recipe": {"budget": 6}, "loader": loader}
    return [*lightning_args(DEMO, root, out, **options), *SMALL]


def test_last_ckpt_is_the_final_state_when_the_metric_gets_worse_last_resumes_and_best_validates(
    tiny_streets, tmp_path, monkeypatch
):
    """Lightning 2.6 saves ``last.ckpt`` only with a best checkpoint: it held epoch 0 (the best), and
    ``--ckpt_path last`` trained epoch 1 again. The monitored val/mIoU is 0.9, then 0.1."""
    scores = {0: 0.9, 1: 0.1, 2: 0.2}
    candidates = ModelCheckpoint._monitor_candidates

    def worse_later(self, trainer):
        found = candidates(self, trainer)
        if "val/mIoU" in found:
            found["val/mIoU"] = torch.tensor(scores[trainer.current_epoch])
        return found

    monkeypatch.setattr(ModelCheckpoint, "_monitor_candidates", worse_later)
    starts: list[int] = []
    monkeypatch.setattr(
        VideoSegmentationModule, "on_train_start", lambda self: starts.append(self.global_step), raising=False
    )
    common = [*_common(tiny_streets, tmp_path, batch_size=6), "--trainer.limit_val_batches", "1"]
    run = run_lightning_cli(["fit", *common, "--trainer.max_epochs", "2"])  # one batch of 6 samples an epoch
    folder = Path(run.trainer.checkpoint_callback.dirpath)
    assert sorted(path.name for path in folder.iterdir()) == ["epoch0-step1-miou0.900.ckpt", "last.ckpt"]
    best = torch.load(folder / "epoch0-step1-miou0.900.ckpt", weights_only=True)
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert (best["epoch"], best["global_step"]) == (0, 1)
    assert (last["epoch"], last["global_step"]) == (1, 2)
    assert _checkpoint_metrics(best) == {"val/mIoU": 0.9} and _checkpoint_metrics(last) == {"val/mIoU": 0.1}
    final = run.model.state_dict()
    assert all(torch.equal(last["state_dict"][key], value) for key, value in final.items())
    resumed = run_lightning_cli(["fit", *common, "--trainer.max_epochs", "3", "--ckpt_path", "last"])
    assert starts == [0, 2]
    assert (resumed.trainer.current_epoch, resumed.trainer.global_step) == (3, 3)
    assert resumed.config_init.fit.ckpt_path == str(folder / "last.ckpt")
    scored = run_lightning_cli(["validate", *common, "--ckpt_path", "best"])  # version_0's, not the resume's
    assert scored.config_init.validate.ckpt_path == str(folder / "epoch0-step1-miou0.900.ckpt")


def _frames(
    tiny_streets: Path, folder: Path, truncated: int | None = None, damaged: int | None = None
) -> Path:
    """Six frames of a validation clip as ``folder/video/00i.png``; frame ``truncated`` cut short, or frame
    ``damaged`` with its pixel data overwritten (whole by its header and end, undecodable)."""
    clip = get_format("cityscapes", tiny_streets).clips("val")[0]
    (folder / "video").mkdir(parents=True)
    for i in range(6):
        shutil.copy(clip.frame_path(i - 5), folder / "video" / f"00{i}.png")
    bad = folder / "video" / f"00{truncated if truncated is not None else damaged}.png"
    data = bad.read_bytes()
    bad.write_bytes(data[:300] if truncated is not None else data[:100] + bytes(200) + data[300:])
    return bad


def _predict(tiny_streets: Path, frames: Path, out: Path) -> list[str]:
    return ["predict", *_common(tiny_streets, out, batch_size=1), "--data.predict.frames", str(frames)]


def test_a_predict_that_fails_on_a_truncated_frame_keeps_the_predictions_it_wrote(tiny_streets, tmp_path):
    """The run folder was removed on any failure outside fit, with the PNGs written into it."""
    damaged = _frames(tiny_streets, tmp_path / "frames", damaged=5)
    out = tmp_path / "runs"
    with pytest.raises(DataError) as error:
        run_lightning_cli(_predict(tiny_streets, tmp_path / "frames", out))
    assert str(error.value) == f"{damaged}: cannot decode image (corrupt or not an image)"
    (predictions,) = out.glob("*/version_0/predictions")
    written = sorted(str(path.relative_to(predictions)) for path in predictions.rglob("*.png"))
    kinds = ("color", "labelIds", "trainIds")
    assert written == [f"{kind}/video/00{i}.png" for kind in kinds for i in range(5)]


def test_a_predict_that_fails_before_its_first_batch_leaves_no_run_folder(tiny_streets, tmp_path):
    cut = _frames(tiny_streets, tmp_path / "frames", truncated=0)
    with pytest.raises(DataError) as error:
        run_lightning_cli(_predict(tiny_streets, tmp_path / "frames", tmp_path / "runs"))
    assert str(error.value) == f"{cut}: {TRUNCATED}"
    assert not (tmp_path / "runs").exists()


def test_a_stage_run_again_overwrites_the_last_ckpt_the_next_stage_reads(tiny_streets, tmp_path):
    """The chained configs' fixed ``checkpoint.dirpath``: a second run had written ``last-v1.ckpt`` beside the
    first run's ``last.ckpt``, which the next stage (``init_weights``, ``teacher_weights``) kept reading."""
    import yaml

    for config in ("tdnet_stage1.yaml", "weclick_teacher.yaml"):
        shipped = yaml.safe_load((REPO / "configs" / config).read_text(encoding="utf-8"))
        assert shipped["checkpoint"]["enable_version_counter"] is False, config
    common = [*_common(tiny_streets, tmp_path), "--trainer.limit_val_batches", "1"]
    common += ["--checkpoint.dirpath", str(tmp_path / "stage1")]
    common += ["--checkpoint.enable_version_counter", "false"]
    run_lightning_cli(["fit", *common, "--trainer.max_steps", "2"])
    run_lightning_cli(["fit", *common, "--trainer.max_steps", "1"])
    names = sorted(path.name for path in (tmp_path / "stage1").iterdir())
    assert "last.ckpt" in names and not [name for name in names if name.startswith("last-")]
    assert torch.load(tmp_path / "stage1" / "last.ckpt", weights_only=True)["global_step"] == 1


def test_validate_without_a_checkpoint_says_it_scores_an_untrained_model(tiny_streets, tmp_path, caplog):
    common = [*_common(tiny_streets, tmp_path), "--trainer.limit_val_batches", "1"]
    untrained = (
        "validate scores the model as built, untrained: give --ckpt_path (a checkpoint of `frugalseg fit`)"
    )
    with caplog.at_level("WARNING", logger="frugalseg"):
        run_lightning_cli(["validate", *common])
    assert [r.getMessage() for r in caplog.records if r.name == "frugalseg"] == [
        f"{untrained}, published weights (--model.student_args '{{weights: ID}}') or "
        "--model.init_args.init_weights"
    ]
    caplog.clear()
    run = run_lightning_cli(["fit", *common, "--trainer.max_steps", "1"])
    with caplog.at_level("WARNING", logger="frugalseg"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_lightning_cli(
            ["validate", *common, "--ckpt_path", run.trainer.checkpoint_callback.last_model_path]
        )
    assert not [r for r in caplog.records if r.name == "frugalseg" and "untrained" in r.getMessage()]
    # the fit's checkpoint callback state, restored into a run that saves none, warned of its new folder
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]


def test_with_validation_every_second_epoch_last_ckpt_is_still_the_last_step(tiny_streets, tmp_path, capsys):
    """``check_val_every_n_epoch 2`` over 3 epochs: ``last.ckpt`` held step 2 (the last validated), the
    third epoch's line repeated the second's val/mIoU and the table called step 2's scores step 3's."""
    common = [*_common(tiny_streets, tmp_path, batch_size=6), "--trainer.limit_val_batches", "1"]
    run = run_lightning_cli(
        ["fit", *common, "--trainer.max_epochs", "3", "--trainer.check_val_every_n_epoch", "2"]
    )
    folder = Path(run.trainer.checkpoint_callback.dirpath)
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 3)
    assert _checkpoint_metrics(last) == {}  # step 3 was not validated: no score to publish
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [("val/mIoU" in line) for line in lines] == [False, True, False], lines
    assert "validation after 2 steps" in out


class _Stopped(Exception):
    """The run was stopped (as a kill would), after its first epoch's checkpoint."""


@pytest.mark.parametrize("workers", [0, 1])
def test_a_resumed_run_ends_with_the_weights_of_the_run_that_was_not_stopped(
    tiny_streets, tmp_path, monkeypatch, workers
):
    """``--ckpt_path last`` continued the step and the rate, but ``seed_everything`` reseeded the
    generators: the shuffle and the random crops and flips after the resume were others than the run's.
    With loader workers, the resumed run's new training iterator drew its workers' seed from the global
    generator where the run's persistent one had not, and every later shuffle and crop differed."""
    from frugalseg.cli.lightning import TaskCLI

    options = ["--trainer.limit_val_batches", "1", "--data.loader.num_workers", str(workers)]
    straight = [*_common(tiny_streets, tmp_path / "a", batch_size=3), *options]
    stopped = [*_common(tiny_streets, tmp_path / "b", batch_size=3), *options]
    whole = run_lightning_cli(["fit", *straight, "--trainer.max_epochs", "3"])

    def stop_at_epoch_1(trainer, pl_module):
        if trainer.current_epoch == 1:
            raise _Stopped

    build = TaskCLI.instantiate_trainer

    def with_a_stop(self, **kwargs):
        trainer = build(self, **kwargs)
        trainer.callbacks.append(LambdaCallback(on_train_epoch_start=stop_at_epoch_1))
        return trainer

    monkeypatch.setattr(TaskCLI, "instantiate_trainer", with_a_stop)
    with pytest.raises(_Stopped):
        run_lightning_cli(["fit", *stopped, "--trainer.max_epochs", "3"])
    monkeypatch.setattr(TaskCLI, "instantiate_trainer", build)
    resumed = run_lightning_cli(["fit", *stopped, "--trainer.max_epochs", "3", "--ckpt_path", "last"])
    assert resumed.trainer.global_step == whole.trainer.global_step == 6
    final = whole.model.state_dict()
    assert all(torch.equal(resumed.model.state_dict()[key], value) for key, value in final.items())


def test_a_score_from_a_checkpoint_file_keeps_the_commands_evaluation_options(tiny_streets, tmp_path):
    """A checkpoint file's model options had replaced ``--model.inference slide`` and ``boundary_width``
    without a word (``last``, resolved later, kept them); its other options still come (its lr here)."""
    common = [*_common(tiny_streets, tmp_path), "--trainer.limit_val_batches", "1"]
    run = run_lightning_cli(["fit", *common, "--trainer.max_steps", "1", "--model.lr", "0.05"])
    last = Path(run.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    scoring = ["--model.inference", "slide", "--model.boundary_width", "5"]
    for path in (str(last), "last"):
        scored = run_lightning_cli(["validate", *common, *scoring, "--ckpt_path", path])
        hparams = scored.model.hparams
        assert (hparams["inference"], hparams["boundary_width"]) == ("slide", 5), path
        if path != "last":  # `last` is found after LightningCLI reads a file's options: the config's stay
            assert hparams["lr"] == 0.05


def test_tensorboards_hp_metric_is_the_monitored_metric_of_each_validation_and_test(tiny_streets, tmp_path):
    """TensorBoard's HPARAMS tab read ``hp_metric`` -1 for every run: the logger's placeholder, never set."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    common = [*_common(tiny_streets, tmp_path, batch_size=6), "--trainer.limit_val_batches", "1"]
    run = run_lightning_cli(["fit", *common, "--trainer.max_epochs", "2"])
    events = EventAccumulator(run.trainer.logger.log_dir)
    events.Reload()
    scores = [(event.step, round(event.value, 6)) for event in events.Scalars("val/mIoU")]
    hp_metric = [(event.step, round(event.value, 6)) for event in events.Scalars("hp_metric")]
    assert len(scores) == 2 and hp_metric == [(0, -1.0), *scores]
    tested = run_lightning_cli(["test", *common, "--data.splits.test", "val", "--ckpt_path", "last"])
    events = EventAccumulator(tested.trainer.logger.log_dir)
    events.Reload()
    (score,) = events.Scalars("test/mIoU")
    assert [(e.step, e.value) for e in events.Scalars("hp_metric")] == [(0, -1.0), (score.step, score.value)]


def test_ckpt_path_last_under_fast_dev_run_finds_the_runs_of_the_configs_logger(tiny_streets, tmp_path):
    """``fast_dev_run`` swaps the logger for Lightning's stand-in: ``--ckpt_path last`` looked in
    ``<default_root_dir>/checkpoints`` alone and found nothing."""
    common = [*_common(tiny_streets, tmp_path, batch_size=6), "--trainer.limit_val_batches", "1"]
    fitted = run_lightning_cli(["fit", *common, "--trainer.max_epochs", "1"])
    last = Path(fitted.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    assert last.is_file()
    checked = run_lightning_cli(
        ["validate", *common, "--ckpt_path", "last", "--trainer.fast_dev_run", "true"]
    )
    assert checked.config_init.validate.ckpt_path == str(last)
