"""VOS data and `frugalseg vos …`: training clips (skip curriculum, objects), sequences, J&F logged."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from cli_helpers import lightning_args
from data.fake_davis import SQUARES_FRAMES as FRAMES
from data.fake_davis import SQUARES_SIZE as SIZE
from data.fake_davis import squares
from data.fake_davis import write_moving_squares as make_davis

from frugalseg.cli import main
from frugalseg.cli.lightning import run_vos_cli
from frugalseg.data.io import image_size
from frugalseg.datamodules.vos import VOSDataModule
from frugalseg.errors import ConfigError, DataError
from frugalseg.lightning_modules import VOSModule
from frugalseg.zoo import masks_from_ids

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "stm_davis.yaml")


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    return make_davis(tmp_path_factory.mktemp("vos") / "davis")


def _datamodule(root: Path, **kwargs) -> VOSDataModule:
    options = {"crop_size": None, "num_workers": 0, "batch_size": 2, "max_objects": 3} | kwargs
    dm = VOSDataModule(str(root), **options)
    dm.setup("fit")
    return dm


def test_training_clips_follow_the_skip_curriculum_and_renumber_objects(davis: Path) -> None:
    dm = _datamodule(davis, max_skip=(0, 3), train_objects=1, clips_per_sequence=6)
    assert [dm.max_skip_at(e) for e in range(6)] == [0, 1, 2, 3, 3, 3]
    for epoch, max_gap in ((0, 1), (3, 4)):
        dataset = dm.train_dataset(epoch)
        gaps = set()
        for i in range(len(dataset)):
            sample = dataset[i]
            indices = [int(s) for s in sample["meta"]["frames"].split(",")]
            steps = np.diff(indices)
            assert len(indices) == 3 and (steps >= 1).all() and (steps <= max_gap).all()
            gaps.update(steps.tolist())
            labels = sample["labels"]
            assert sample["num_objects"] == 1 and set(labels.unique().tolist()) <= {0, 1}
            # The kept object is renumbered 1 on every frame: one of the two squares, the other is background.
            area = int((labels[0] == 1).sum())
            assert area in (12 * 12, 10 * 12)
        assert max(gaps) == max_gap  # the largest allowed gap is drawn
    # Draws depend on (seed, epoch, index) only: the same again, another epoch draws other clips.
    first, again, later = dm.train_dataset(2), dm.train_dataset(2), dm.train_dataset(3)
    assert all(torch.equal(first[i]["labels"], again[i]["labels"]) for i in range(len(first)))
    assert [first[i]["meta"] for i in range(len(first))] != [later[i]["meta"] for i in range(len(later))]


def test_one_training_loader_draws_new_clips_every_epoch(davis: Path) -> None:
    """Lightning's set_epoch before each epoch: without reload_dataloaders_every_n_epochs the clips had
    been the first epoch's for the whole run."""
    dm = _datamodule(davis, max_skip=(3, 3), clips_per_sequence=4)
    loader = dm.train_dataloader()

    def epoch_of(epoch: int) -> list[str]:
        loader.sampler.set_epoch(epoch)  # as Lightning's fit loop does before every epoch
        return sorted(meta for batch in loader for meta in batch["meta"]["frames"])

    first, second = epoch_of(0), epoch_of(1)
    assert first != second and epoch_of(0) == first  # new draws, and the same again for one epoch
    assert first == sorted(dm.train_dataset(0)[i]["meta"]["frames"] for i in range(len(first)))


def test_cropped_training_batches_and_whole_validation_sequences(davis: Path) -> None:
    dm = _datamodule(davis, crop_size=(32, 32), scale_range=(1.0, 1.0))
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (2, 3, 3, 32, 32) and batch["frames"].dtype == torch.uint8
    assert batch["labels"].shape == (2, 3, 32, 32)
    normalized = dm.on_after_batch_transfer(batch, 0)["frames"]
    assert normalized.is_floating_point()
    sequence = next(iter(dm.val_dataloader()))
    assert sequence["frames"].shape == (1, FRAMES, 3, *SIZE)
    assert sequence["num_objects"].tolist() == [2]
    assert np.array_equal(sequence["labels"][0, 4].numpy(), squares(4, 0))


def test_sequences_with_too_many_objects_or_missing_masks_are_named(davis: Path, tmp_path: Path) -> None:
    dm = _datamodule(davis, max_objects=1, train_objects=1)
    with pytest.raises(DataError, match="squares-a.*2 objects, more than max_objects=1"):
        next(iter(dm.val_dataloader()))
    broken = make_davis(tmp_path / "broken")
    (broken / "Annotations" / "480p" / "squares-b" / "00003.png").unlink()
    with pytest.raises(DataError, match="00003.png.*mask on every frame"):
        _datamodule(broken)


def test_real_davis_sample_loads_as_one_object_sequences(shared_data: Path) -> None:
    dm = VOSDataModule(
        str(shared_data / "davis_dev"), train_split="all", val_split="all", load_scale=0.25, num_workers=0
    )
    dm.setup("validate")
    assert [s.name for s in dm.sequences["val"]] == ["blackswan", "car-shadow"]
    sample = next(iter(dm.val_dataloader()))
    assert sample["frames"].shape == (1, 50, 3, 120, 214)
    assert sample["num_objects"].tolist() == [1]
    assert set(sample["labels"].unique().tolist()) == {0, 1}


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_a_bfloat16_run_reads_bfloat16_frames_and_encodes_float_masks(davis: Path) -> None:
    """``--trainer.precision bf16-true``: the frames take the weights' dtype, and STM's memory encoder its
    masks (both had met bfloat16 weights as float32: a traceback)."""
    from types import SimpleNamespace

    from lightning.pytorch.plugins.precision import HalfPrecision

    dm = _datamodule(davis, crop_size=(32, 32), scale_range=(1.0, 1.0))
    loaded = next(iter(dm.train_dataloader()))
    dm.trainer = SimpleNamespace(precision_plugin=HalfPrecision("bf16-true"))
    batch = dm.on_after_batch_transfer(loaded, 0)
    assert batch["frames"].dtype == torch.bfloat16
    module = VOSModule(student="stm_r18", max_objects=3).to(torch.bfloat16)
    masks = masks_from_ids(batch["labels"][:, 0], int(batch["num_objects"].max()))  # float32
    key, value = module.student.encode_memory(batch["frames"][:, 0], masks)
    assert key.dtype == value.dtype == torch.bfloat16 and torch.isfinite(key.float()).all()


def test_training_step_loss_and_frozen_batch_norm(davis: Path) -> None:
    torch.manual_seed(0)
    dm = _datamodule(davis, crop_size=(32, 32), scale_range=(1.0, 1.0))
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    module = VOSModule(student="stm_r18", max_objects=3, freeze_bn=True).train()
    bn = module.student.query_encoder.bn1
    assert not bn.training and module.student.decoder.training
    before = bn.running_mean.clone()
    loss = module.training_step(batch, 0)
    assert torch.equal(bn.running_mean, before)
    # The loss is the cross-entropy of the aggregated logits of frames 1 and 2 against their ids.
    masks = masks_from_ids(batch["labels"][:, 0], int(batch["num_objects"].max()))
    logits = module.student(batch["frames"], masks, batch["num_objects"])
    expected = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), batch["labels"][:, 1:].flatten(0, 1), ignore_index=255
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def _overrides(root: Path, out: Path) -> list[str]:
    return lightning_args(
        CONFIG,
        root,
        out,
        train_split="train",
        val_split="val",
        load_scale=1.0,
        crop_size="[32,32]",
        max_objects=3,
        workers="num_workers",
    )


@pytest.mark.slow
def test_vos_fit_fast_dev_run_trains_and_logs_j_and_f(davis: Path, tmp_path: Path) -> None:
    cli = run_vos_cli(["fit", *_overrides(davis, tmp_path), "--trainer.fast_dev_run", "1"])
    metrics = cli.trainer.callback_metrics
    for name in ("train/loss", "val/J", "val/F", "val/JF"):
        assert name in metrics, f"{name} missing from {sorted(metrics)}"
        assert math.isfinite(float(metrics[name]))
    assert 0.0 <= float(metrics["val/J"]) <= 1.0 and 0.0 <= float(metrics["val/F"]) <= 1.0
    assert float(metrics["val/JF"]) == pytest.approx((float(metrics["val/J"]) + float(metrics["val/F"])) / 2)
    assert cli.model.student.max_objects == 3  # linked from data.max_objects
    scores = cli.model.sequence_scores
    assert list(scores) == ["squares-a"]  # fast_dev_run validates one sequence
    assert scores["squares-a"]["JF"] == pytest.approx(float(metrics["val/JF"]))
    assert not list(tmp_path.rglob("*.csv"))  # fast_dev_run writes nothing


@pytest.mark.slow
def test_vos_validate_writes_each_sequence_s_j_and_f(davis: Path, tmp_path: Path) -> None:
    cli = run_vos_cli(["validate", *_overrides(davis, tmp_path)])
    scores = cli.model.sequence_scores
    assert sorted(scores) == ["squares-a", "squares-b"]
    rows = ["sequence,J,F,JF"] + [
        f"{n},{s['J']:.4f},{s['F']:.4f},{s['JF']:.4f}" for n, s in sorted(scores.items())
    ]
    (written,) = tmp_path.rglob("val_sequences.csv")
    assert written.read_text(encoding="utf-8") == "\n".join(rows) + "\n"


@pytest.mark.slow
def test_vos_validate_on_two_processes_scores_as_one_without_sync_dist_advice(
    davis: Path, tmp_path: Path
) -> None:
    """Lightning had advised ``sync_dist=True`` once per metric for J, F and J&F, already summed over both."""
    import subprocess
    import sys

    command = [
        str(Path(sys.executable).parent / "frugalseg"),
        "vos",
        "validate",
        *_overrides(davis, tmp_path),
    ]
    command += ["--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sync_dist" not in result.stderr
    (written,) = tmp_path.rglob("val_sequences.csv")
    one = run_vos_cli(["validate", *_overrides(davis, tmp_path / "one")])
    rows = [
        f"{n},{s['J']:.4f},{s['F']:.4f},{s['JF']:.4f}" for n, s in sorted(one.model.sequence_scores.items())
    ]
    assert written.read_text(encoding="utf-8") == "\n".join(["sequence,J,F,JF", *rows]) + "\n"


def test_vos_word_dispatches_to_the_vos_cli(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["vos", "fit", "--config", CONFIG, "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "student: stm_r18" in printed and "clip_length: 3" in printed and "max_objects: 10" in printed


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
@pytest.mark.filterwarnings("ignore:data.max_skip grows per epoch")
def test_freeze_bn_holds_through_fit_and_after_validation(davis: Path) -> None:
    # Lightning's fit never calls `train()`: it restores each submodule's ``training`` flag after validation.
    torch.manual_seed(0)
    dm = _datamodule(davis, crop_size=(32, 32), scale_range=(1.0, 1.0), clips_per_sequence=1)
    module = VOSModule(student="stm_r18", max_objects=3, freeze_bn=True)
    norms = {n: m for n, m in module.student.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    before = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in norms.items()}
    modes: list[tuple[bool, bool]] = []

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            modes.append((any(m.training for m in norms.values()), pl_module.student.decoder.training))

    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,  # one step per epoch (2 clips, batch 2), a validation after each
        limit_val_batches=1,
        num_sanity_val_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Spy()],
    )
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 2 and trainer.current_epoch == 2
    assert modes == [(False, True), (False, True)]  # BatchNorm in eval, the rest training, both steps
    for name, norm in norms.items():
        assert int(norm.num_batches_tracked) == 0, name
        assert torch.equal(norm.running_mean, before[name][0]), name
        assert torch.equal(norm.running_var, before[name][1]), name


def test_fewer_validation_sequences_than_processes_is_a_config_error(davis: Path) -> None:
    dm = _datamodule(davis)  # 2 validation sequences
    dm.setup("validate")
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1)  # the processes of DDP, none spawned
    assert list(dm.val_dataloader().sampler) == [1]
    expected = (
        r"^trainer.devices: the val split holds 2 sequences for 3 processes, and every process needs one"
    )
    for rank in range(3):  # every process stops, not only the one left without a sequence
        dm.trainer = SimpleNamespace(world_size=3, global_rank=rank)
        with pytest.raises(ConfigError, match=expected):
            dm.val_dataloader()


def test_a_root_that_is_a_file_is_named_so_not_missing(tmp_path: Path) -> None:
    """A video file given as the root had been said not to exist."""
    video = tmp_path / "car-shadow.mp4"
    video.write_bytes(b"not read")
    with pytest.raises(ConfigError, match=r"car-shadow\.mp4: a file, not a DAVIS- or MOSE-layout folder"):
        VOSDataModule(root=str(video))
    with pytest.raises(ConfigError, match=r"nowhere: data set folder does not exist"):
        VOSDataModule(root=str(tmp_path / "nowhere"))


@pytest.mark.parametrize("name", ["camvid_dev", "video_dev"])
def test_a_root_of_another_layout_is_refused_without_a_format_vos_does_not_take(
    shared_data: Path, name: str
) -> None:
    """CamVid was told "--format camvid" and a folder of videos "--format video": vos takes neither."""
    root = shared_data / name
    like = "; it looks like camvid: a set of class labels" if name == "camvid_dev" else ""
    expected = (
        f"data.root: {root}: no JPEGImages/ folder: vos trains on DAVIS- or MOSE-layout sets of object masks "
        f"(JPEGImages/<clip>/, Annotations/<clip>/){like}"
    )
    with pytest.raises(ConfigError) as refused:
        VOSDataModule(root=str(root)).setup("fit")
    assert str(refused.value) == expected


@pytest.mark.parametrize("student", ["stm_r81", "tmanet_r18"])
def test_a_student_other_than_an_stm_is_refused_naming_the_stms(student: str) -> None:
    """A misspelled STM had been told "student: unknown model …" and every model of the zoo, semantic ones
    too; TMANet was built before it was refused."""
    with pytest.raises(ConfigError) as refused:
        VOSModule(student=student).configure_models()
    assert (
        str(refused.value)
        == f"model.student: VOSModule trains STM students (stm_r18, stm_r50), got {student!r}"
    )


def test_a_misspelled_semantic_student_is_named_by_its_option() -> None:
    from frugalseg.lightning_modules.segmentation import VideoSegmentationModule

    with pytest.raises(ConfigError, match=r"^model\.student: unknown model 'tmanet_r81'; available models: "):
        VideoSegmentationModule(student="tmanet_r81", num_classes=3).configure_models()


def test_a_crop_larger_than_the_training_frames_is_warned_of(davis: Path) -> None:
    """A 600×600 crop of 427×240 frames had trained on padding, at six times the time, without a word."""
    frame = sorted((davis / "JPEGImages" / "480p").glob("*/*.jpg"))[0]
    width, height = image_size(frame)
    with pytest.warns(UserWarning, match=rf"data.crop_size {height + 1}×{width} \(height×width\) is larger"):
        _datamodule(davis, crop_size=(height + 1, width), scale_range=(1.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _datamodule(davis, crop_size=(height, width), scale_range=(1.0, 1.0))  # the frames' own size: fine
