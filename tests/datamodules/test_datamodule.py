"""VideoSegDataModule: batches follow the contract, recipes decide the labels, bad input fails early."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import lightning as L
import numpy as np
import pytest
import torch

from frugalseg.data.clips import LabelKind
from frugalseg.data.io import read_frame, read_label
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.options import (
    AugmentOptions,
    LabelOptions,
    LoaderOptions,
    RecipeOptions,
    SplitOptions,
    TemporalOptions,
)
from frugalseg.errors import ConfigError, DataError


def _module(
    root, recipe=RecipeOptions("B3", budget=6), num_frames=3, temporal=TemporalOptions()
) -> VideoSegDataModule:
    loader = LoaderOptions(batch_size=2, num_workers=0)
    return VideoSegDataModule(
        root=str(root), num_frames=num_frames, recipe=recipe, loader=loader, temporal=temporal
    )


def test_training_batch_holds_past_frames_label_and_kind(tiny_streets):
    data = _module(tiny_streets)
    data.prepare_data()
    data.setup("fit")
    assert [(s.offset, s.kind) for s in data.samples[:3]] == [
        (-10, LabelKind.PSEUDO),
        (0, LabelKind.FINE),
        (10, LabelKind.PSEUDO),
    ]
    dataset = data.datasets["train"]
    item = dataset[1]  # offset 0 of the first chosen clip: frames −2, −1, 0 and the manual label
    clip = dataset.clips[item["meta"]["clip_id"]]
    expected = [read_frame(clip.frame_path(offset)) for offset in (-2, -1, 0)]
    assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (3, 3, 64, 128)
    assert np.array_equal(item["frames"].permute(0, 2, 3, 1).numpy(), np.stack(expected))
    assert np.array_equal(item["label"].numpy(), read_label(clip.label(0, LabelKind.FINE).path))
    assert item["kind"] == LabelKind.FINE.code
    batch = next(iter(data.train_dataloader()))
    assert batch["frames"].shape == (2, 3, 3, 64, 128) and batch["label"].dtype == torch.long


def test_first_frames_of_a_clip_repeat_when_the_past_is_missing(tiny_streets):
    data = _module(tiny_streets, RecipeOptions("P11"), num_frames=4)
    data.prepare_data()
    data.setup("fit")
    dataset = data.datasets["train"]
    index = next(i for i, s in enumerate(dataset.samples) if s.offset == -10)
    frames = dataset[index]["frames"]
    clip = dataset.clips[dataset.samples[index].clip_id]
    # Offset −10 is frame 9: its three past frames 6, 7, 8 exist; none repeats here.
    assert np.array_equal(frames[0].permute(1, 2, 0).numpy(), read_frame(clip.frame_path(-13)))
    sample = dataset.samples[index]
    dataset.samples[index] = type(sample)(sample.clip_id, -19, LabelKind.FINE)
    clip.add_label(-19, clip.label(0, LabelKind.FINE))
    early = dataset[index]["frames"]
    assert all(torch.equal(early[0], early[t]) for t in range(4))


def test_testing_without_a_test_split_says_it_reads_the_validation_split(tiny_streets, caplog):
    caplog.set_level(logging.INFO)
    data = _module(tiny_streets)
    data.setup("test")
    assert len(data.datasets["test"]) == 3
    assert "testing on split 'val', the validation split (data.splits.test is not set)" in caplog.text


def test_validation_uses_manual_labels_with_a_temporal_pair(tiny_streets):
    data = _module(tiny_streets)
    data.setup("validate")
    dataset = data.datasets["val"]
    assert len(dataset) == 3 and {s.kind for s in dataset.samples} == {LabelKind.FINE}
    item = dataset[0]
    assert item["frames"].shape[0] == 4  # frames −3 … 0: the windows of t−1 and t
    assert item["flow_to_prev"].shape == item["flow_from_prev"].shape == (2, 64, 128)


def test_the_parsers_restricted_numbers_are_held_as_plain_ones_a_checkpoint_loads(tiny_streets, tmp_path):
    """A resumed tdnet run had written ``labels.min_confidence`` as jsonargparse's ClosedUnitInterval, so its
    checkpoint could not be resumed (torch.load with weights_only refuses the class)."""
    from jsonargparse.typing import ClosedUnitInterval, PositiveInt

    data = VideoSegDataModule(
        root=str(tiny_streets), recipe=RecipeOptions("B3", budget=PositiveInt(6)),
        loader=LoaderOptions(batch_size=PositiveInt(2), num_workers=0),
        labels=LabelOptions(min_confidence=ClosedUnitInterval(0.25)),
    )  # fmt: skip
    torch.save({"datamodule_hyper_parameters": dict(data.hparams)}, tmp_path / "run.ckpt")
    loaded = torch.load(tmp_path / "run.ckpt", weights_only=True)["datamodule_hyper_parameters"]
    assert loaded["labels"]["min_confidence"] == 0.25 and type(loaded["labels"]["min_confidence"]) is float
    assert type(loaded["recipe"]["budget"]) is int and type(loaded["loader"]["batch_size"]) is int


def test_samples_and_cost_are_written_next_to_the_logs(tiny_streets, tmp_path):
    data = _module(tiny_streets)
    data.prepare_data()  # no trainer yet: counts as fitting, so the pseudo-labels are made
    data.trainer = L.Trainer(default_root_dir=tmp_path, logger=False, accelerator="cpu")
    data.setup("fit")
    written = json.loads((tmp_path / "samples.json").read_text(encoding="utf-8"))
    assert written["recipe"] == "B3" and len(written["samples"]) == 6
    assert written["seed"] == data.hparams.recipe["seed"]  # the draw can be repeated from the file alone
    assert written["cost"]["manual_frames"] == 2 and written["cost"]["total_hours"] == pytest.approx(3.0)


def test_hyper_parameters_hold_each_group_as_plain_values_a_checkpoint_loads(tiny_streets, tmp_path):
    data = _module(tiny_streets, temporal=TemporalOptions(neighbours=2))
    assert data.hparams["recipe"] == {"name": "B3", "budget": 6, "seed": 0}
    assert data.hparams["loader"] == {
        "batch_size": 2,
        "val_batch_size": None,
        "num_workers": 0,
        "load_scale": 1.0,
        "cache_frames": True,
        "cache_flows": True,
        "check_memory": True,
    }
    assert data.hparams["temporal"]["neighbours"] == 2 and data.hparams["labels"] == {"min_confidence": 0.0}
    torch.save({"datamodule_hyper_parameters": dict(data.hparams)}, tmp_path / "run.ckpt")
    loaded = torch.load(tmp_path / "run.ckpt", weights_only=True)["datamodule_hyper_parameters"]
    assert loaded["recipe"]["budget"] == 6 and loaded["splits"] == {
        "train": "train",
        "val": "val",
        "test": None,
    }


def test_label_of_the_wrong_size_names_both_files(tiny_streets, tmp_path):
    root = tmp_path / "bad"
    shutil.copytree(tiny_streets, root)
    label = next((root / "gtFine" / "val").rglob("*_gtFine_labelTrainIds.png"))
    cv2.imwrite(str(label), np.zeros((32, 64), np.uint8))
    data = _module(root, temporal=TemporalOptions(consistency=False))
    data.setup("validate")
    index = next(i for i, s in enumerate(data.datasets["val"].samples) if label.name.startswith(s.clip_id))
    with pytest.raises(
        DataError,
        match=r"label size 64×32 does not fit its frame .*leftImg8bit\.png \(128×64 at load scale 1\)",
    ):
        data.datasets["val"][index]


def test_recipe_offset_outside_a_clip_fails_before_training(shared_data):
    data = VideoSegDataModule(
        root=str(shared_data / "cityscapes_tiny"),
        splits=SplitOptions(train="val"),
        loader=LoaderOptions(num_workers=0),
    )
    with pytest.raises(
        ValueError,
        match=r"^data.recipe.name: recipe B3: no clip has a frame at offset -10 \(clips span offsets \+0…\+0",
    ):
        data.setup("fit")


def test_unknown_recipe_is_refused_at_construction(tiny_streets):
    with pytest.raises(ValueError, match="B4"):
        _module(tiny_streets, RecipeOptions("B4"))


@pytest.mark.timeout(180)
def test_a_loader_worker_starts_after_the_parent_used_opencv_threads(tiny_streets):
    """A forked worker must not resize the OpenCV thread pool it inherits (that deadlocked)."""
    cv2.setNumThreads(2)
    cv2.resize(np.zeros((1024, 2048, 3), np.uint8), (512, 256))  # the parent's pool is running
    loader = LoaderOptions(batch_size=1, num_workers=1)
    module = VideoSegDataModule(
        root=str(tiny_streets), format="synthetic", recipe=RecipeOptions("N1"), loader=loader
    )
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["frames"].shape[0] == 1
    assert cv2.getNumThreads() == 1


def test_only_a_click_recipe_moves_labels_point_by_point(tiny_streets):
    def geometry(recipe):
        root = str(tiny_streets)
        augment = AugmentOptions(crop_size=(32, 64))
        return VideoSegDataModule(
            root=root, format="synthetic", recipe=RecipeOptions(recipe), augment=augment
        )

    assert geometry("clicks").geometry.sparse_kind == LabelKind.CLICKS.code
    assert geometry("B3").geometry.sparse_kind is None


def test_an_evaluation_split_smaller_than_the_process_count_is_a_config_error(tiny_streets):
    data = _module(tiny_streets)
    data.setup("validate")  # 3 validation samples
    data.trainer = SimpleNamespace(world_size=3, global_rank=2)  # the processes of DDP, none spawned
    assert list(data.val_dataloader().sampler) == [2]  # one sample each, none repeated
    expected = (
        r"^trainer.devices: the val split holds 3 samples for 4 processes, and every process needs one: "
        r"run at most 3 processes \(trainer.devices × trainer.num_nodes\) or give the val split more samples$"
    )
    for rank in range(4):  # every process stops, not only the one left without a sample
        data.trainer = SimpleNamespace(world_size=4, global_rank=rank)
        with pytest.raises(ConfigError, match=expected):
            data.val_dataloader()


def test_a_batch_larger_than_a_processs_share_of_the_training_samples_is_kept(tiny_streets):
    """6 samples over 2 processes are 3 each: a batch of 4 keeps its short last batch (else no batch)."""
    data = VideoSegDataModule(
        root=str(tiny_streets),
        num_frames=1,
        recipe=RecipeOptions("B3", budget=6),
        loader=LoaderOptions(batch_size=4, num_workers=0),
    )
    data.prepare_data()
    data.setup("fit")
    assert len(data.datasets["train"]) == 6
    data.trainer = SimpleNamespace(world_size=2, global_rank=0)
    assert data.train_dataloader().drop_last is False
    data.trainer = SimpleNamespace(world_size=1, global_rank=0)  # one process: 6 samples, a batch of 4
    assert data.train_dataloader().drop_last is True


def test_a_recipe_on_camvid_stills_warns_that_its_offsets_are_stills_apart(tmp_path, caplog, monkeypatch):
    """CamVid's clips are its labelled stills, 1 s apart: B3's ±10 propagated a label 10 s away, onto
    stills with manual labels of their own, without a word."""
    from data.fake_camvid import write_segnet

    from frugalseg.autolabel.sources import FlowLabels

    root = write_segnet(tmp_path / "camvid")
    monkeypatch.setattr(FlowLabels, "prepare", lambda self, fmt, split, offsets: "")  # what is made: not here
    data = VideoSegDataModule(
        root=str(root), format="camvid", num_frames=1, recipe=RecipeOptions("B3s", budget=3),
        splits=SplitOptions(train="train", val="val"), loader=LoaderOptions(batch_size=1, num_workers=0),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="frugalseg.datamodules.datamodule"):
        data.prepare_data()
    assert [r.getMessage() for r in caplog.records if r.name == "frugalseg.datamodules.datamodule"] == [
        "recipe B3s on camvid: an offset of 1 is the next labelled still (1 s later; 1/15 s in part of "
        "0016E5): no video frame lies between, so its pseudo-labels are propagated to stills up to 1 away, "
        "which hold manual labels of their own"
    ]


def test_a_label_store_of_a_kind_the_recipe_does_not_train_on_is_warned_of(tmp_path, caplog, monkeypatch):
    """A clicks store given to a recipe of manual and pseudo labels had trained without a word (and without
    being read), where `min_confidence` and `loss_args` say they go unused."""
    from data.fake_camvid import write_segnet

    from frugalseg.autolabel.sources import FlowLabels, SimulatedClicks

    root = write_segnet(tmp_path / "camvid")
    monkeypatch.setattr(FlowLabels, "prepare", lambda self, fmt, split, offsets: "")  # what is made: not here
    data = VideoSegDataModule(
        root=str(root), format="camvid", num_frames=1, recipe=RecipeOptions("B3s", budget=3),
        splits=SplitOptions(train="train", val="val"), loader=LoaderOptions(batch_size=1, num_workers=0),
        labels=LabelOptions(clicks=SimulatedClicks(), refined=str(tmp_path / "refined")),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="frugalseg.datamodules.datamodule"):
        data.prepare_data()
    messages = [r.getMessage() for r in caplog.records if r.name == "frugalseg.datamodules.datamodule"]
    assert messages[:2] == [
        "data.labels.clicks: recipe B3s trains on no clicks labels, so it is not read",
        "data.labels.refined: recipe B3s trains on no refined_coarse labels, so it is not read",
    ]


def test_from_python_its_options_may_be_dicts_and_any_logger_writes_its_hparams(tiny_streets, tmp_path):
    """A plain Trainer's logger failed on the frozen option dataclasses (``A frozen dataclass was passed
    to apply_to_collection``), dicts were refused (``'dict' object has no attribute 'name'``), and so a
    checkpoint saved from Python did not load."""
    from lightning.pytorch.loggers import CSVLogger

    from frugalseg.lightning_modules import VideoSegmentationModule

    data = VideoSegDataModule(
        root=str(tiny_streets), num_frames=1, recipe={"name": "B3", "budget": 3},
        augment={"crop_size": (32, 64)}, loader={"batch_size": 3, "num_workers": 0},
    )  # fmt: skip
    assert data.recipe_options == RecipeOptions("B3", budget=3) and data.batch_size == 3
    model = VideoSegmentationModule(
        student="deeplabv3plus_mbv2", student_args={"decoder_channels": 16}, num_classes=data.num_classes,
        num_frames=1,
    )  # fmt: skip
    trainer = L.Trainer(
        accelerator="cpu", max_steps=1, limit_val_batches=1, logger=CSVLogger(tmp_path),
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )  # fmt: skip
    trainer.fit(model, data)
    hparams = (Path(trainer.logger.log_dir) / "hparams.yaml").read_text(encoding="utf-8")
    assert "budget: 3" in hparams and "batch_size: 3" in hparams
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    loaded = VideoSegDataModule.load_from_checkpoint(tmp_path / "run.ckpt", weights_only=True)
    assert loaded.recipe_options == data.recipe_options and loaded.augment == data.augment
    with pytest.raises(ConfigError, match=r"^data.loader: not options of LoaderOptions \("):
        VideoSegDataModule(root=str(tiny_streets), loader={"batchsize": 3})


def test_a_format_without_a_root_is_refused_not_replaced_by_the_synthetic_set() -> None:
    """``--data.format cityscape`` (a typo) with the demo's null root trained on the synthetic streets."""
    for format, more in (("cityscapes", ""), ("cityscape", " (and 'cityscape' is no format; known: ")):
        with pytest.raises(ConfigError) as error:
            VideoSegDataModule(format=format)
        assert str(error.value).startswith(
            f"data.root: data.format {format} reads a data set folder: give it as --data.root{more}"
        )


def test_setup_of_the_synthetic_set_before_prepare_data_says_to_call_it(tmp_path, monkeypatch) -> None:
    """A Python user's ``setup()`` alone had said only that synthetic.json is no generated set."""
    from frugalseg.datamodules.options import RecipeOptions
    from frugalseg.errors import DataError

    monkeypatch.setenv("FRUGALSEG_CACHE", str(tmp_path))
    data = VideoSegDataModule(synthetic_clips={"train": 2, "val": 1}, recipe=RecipeOptions(name="N1"))
    with pytest.raises(
        DataError, match=r"not a generated synthetic data set \(.*as a data module's prepare_data\(\) does\)$"
    ):
        data.setup("fit")
    data.prepare_data()
    data.setup("fit")
    assert len(data.train_dataloader().dataset) > 0


def test_a_relative_root_that_does_not_exist_says_where_it_was_looked_for(tmp_path, monkeypatch) -> None:
    """A config's ``root: data/cityscapes_dev`` is taken from the folder the command runs in."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as error:
        VideoSegDataModule(root="data/cityscapes_dev")
    assert str(error.value) == (
        "data.root: data/cityscapes_dev: data set folder (or video file) does not exist (taken from the "
        f"current folder, {tmp_path})"
    )
    with pytest.raises(ConfigError, match=r"does not exist$"):
        VideoSegDataModule(root=str(tmp_path / "nowhere"))


def test_each_process_of_a_distributed_run_draws_its_own_geometry(tiny_streets):
    """Seeded alike by seed_everything, every rank had scaled, cropped and flipped its batch alike."""
    from types import SimpleNamespace

    from lightning.pytorch.plugins.precision import Precision

    def matrices(rank: int, world_size: int, draws: int = 2) -> list[torch.Tensor]:
        torch.manual_seed(7)  # as seed_everything seeds every rank
        loader = LoaderOptions(batch_size=2, num_workers=0)
        data = VideoSegDataModule(
            root=str(tiny_streets), loader=loader, augment=AugmentOptions(crop_size=(32, 64))
        )
        data.prepare_data()
        data.setup("fit")
        plugin = Precision()  # 32-true: the frames stay float32
        data.trainer = SimpleNamespace(
            training=True, world_size=world_size, global_rank=rank, precision_plugin=plugin
        )
        batch = next(iter(data.train_dataloader()))
        drawn = []
        for _ in range(draws):
            copied = {
                key: value.clone() if isinstance(value, torch.Tensor) else value
                for key, value in batch.items()
            }
            data.on_after_batch_transfer(copied, 0)
            drawn.append(data.geometry.last_matrices.clone())
        return drawn

    first, second = matrices(0, 2), matrices(1, 2)
    assert all(not torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(first, matrices(0, 2), strict=True))  # reproducible
    alone = matrices(0, 1)
    assert torch.equal(alone[0], matrices(1, 1)[0])  # one process: torch's own generator, as before


def test_training_frames_of_two_sizes_in_batches_are_refused_before_any_label_is_made(tmp_path):
    """MOSE or one's own videos: the first batch had failed in torch's collate ("stack expects each tensor
    to be equal size") after the labels were made; batches of one train."""
    from data.fake_davis import write_davis

    masks = {"wide": [np.zeros((48, 64), np.uint8)] * 3, "small": [np.zeros((40, 56), np.uint8)] * 3}
    for sequence in masks.values():
        sequence[0] = sequence[0].copy()
        sequence[0][10:20, 10:20] = 1
    root = write_davis(tmp_path / "mixed", masks)
    splits = SplitOptions(train="all", val="all")

    def module(batch_size: int) -> VideoSegDataModule:
        loader = LoaderOptions(batch_size=batch_size, num_workers=0, check_memory=False)
        recipe = RecipeOptions("C0", budget=2)  # each clip's manual label
        return VideoSegDataModule(root=str(root), format="davis", num_frames=1, recipe=recipe, loader=loader,
                                  splits=splits, augment=AugmentOptions(crop_size=(32, 32)))  # fmt: skip

    with pytest.raises(
        ConfigError, match=r"data.loader.batch_size: 2, and the training frames are of two sizes"
    ):
        module(2).setup("fit")
    one = module(1)
    one.setup("fit")
    assert len(list(one.train_dataloader())) == 2


def test_frames_take_a_true_precision_s_dtype(tiny_streets):
    """``--trainer.precision bf16-true``: Lightning converts a batch before it reaches the device, and leaves
    the uint8 frames alone; the float32 frames made from them had met bfloat16 weights (a traceback)."""
    from lightning.pytorch.plugins.precision import HalfPrecision

    data = _module(tiny_streets)
    data.prepare_data()
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    data.trainer = SimpleNamespace(training=False, precision_plugin=HalfPrecision("bf16-true"), world_size=1)
    frames = data.on_after_batch_transfer(batch, 0)["frames"]
    assert frames.dtype == torch.bfloat16
    data.trainer = SimpleNamespace(training=False, precision_plugin=HalfPrecision("16-true"), world_size=1)
    assert data.on_after_batch_transfer(next(iter(data.val_dataloader())), 0)["frames"].dtype == torch.float16
