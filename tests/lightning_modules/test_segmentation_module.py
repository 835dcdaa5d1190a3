"""VideoSegmentationModule: the temporal-consistency term, the schedule, the overlays, the metrics."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import segmentation_models_pytorch as smp
import torch
from lightning.pytorch.loggers import CSVLogger
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from frugalseg.data.clips import LabelKind
from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.options import TemporalOptions
from frugalseg.errors import ConfigError
from frugalseg.lightning_modules import VideoSegmentationModule, poly_schedule
from frugalseg.lightning_modules.segmentation import overlay_grid
from frugalseg.losses import temporal_consistency_loss

FINE = LabelKind("fine").code


def _ce_by_hand(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Mean of −log softmax at the label over the labelled pixels, written out pixel by pixel."""
    total, count = 0.0, 0
    for b, y, x in torch.nonzero(target != 255).tolist():
        z = logits[b, :, y, x].double()
        total += float(torch.logsumexp(z, 0) - z[target[b, y, x]])
        count += 1
    return total / count


TEMPORAL_MISSING = (
    r"model.temporal_weight is 2.0 but the training batches carry no frame pair with flows: "
    r"set data.temporal.train_pair: true"
)


def test_a_training_batch_of_one_clip_for_a_student_that_needs_two_names_the_batch_size() -> None:
    """DeepLabV3+'s ASPP pools each map to 1×1 and normalises it over the batch: torch's ValueError then
    was a traceback; a batch of 2 trains."""
    module = VideoSegmentationModule(student="deeplabv3plus_mbv2", num_classes=3, num_frames=1)
    module.train()
    frames = torch.randn(2, 1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert module.train_outputs(frames)["out"].shape == (2, 3, 32, 32)
    with pytest.raises(ConfigError, match=r"^data.loader.batch_size: a training batch of 1 clip reached "):
        module.train_outputs(frames[:1])


def test_temporal_weight_without_a_frame_pair_is_an_error_not_a_silent_skip():
    module = VideoSegmentationModule(
        student="deeplabv3plus_mbv2", num_classes=3, num_frames=1, losses={"fine": "ce"}, temporal_weight=2.0
    )
    generator = torch.Generator().manual_seed(0)
    batch = {
        "frames": torch.randn(1, 1, 3, 32, 32, generator=generator),
        "label": torch.zeros(1, 32, 32, dtype=torch.long),
        "kind": torch.tensor([FINE]),
        "meta": {"kind": ["fine"]},
    }
    with pytest.raises(ValueError, match=TEMPORAL_MISSING):
        module.training_step(batch, 0)
    # Before the first batch: setup("fit") reads the real datamodule's options.
    module._trainer = SimpleNamespace(datamodule=VideoSegDataModule(num_frames=1))
    with pytest.raises(ValueError, match=TEMPORAL_MISSING):
        module.setup("fit")
    module.setup("validate")
    module._trainer = SimpleNamespace(
        datamodule=VideoSegDataModule(num_frames=1, temporal=TemporalOptions(train_pair=True))
    )
    module.setup("fit")


def test_a_recipe_with_a_label_kind_no_loss_takes_is_refused_before_the_first_step():
    module = VideoSegmentationModule(
        student="deeplabv3plus_mbv2",
        num_classes=3,
        num_frames=1,
        losses={"fine": "ce", "pseudo": "phuber_ce"},
    )
    kinds = [LabelKind.FINE, LabelKind.COARSE, LabelKind.PSEUDO]
    data = SimpleNamespace(samples=[SimpleNamespace(kind=kind) for kind in kinds])
    module._trainer = SimpleNamespace(datamodule=data)
    expected = (
        r"^model.losses: the recipe's samples hold coarse labels, which no loss is given for \(model.losses "
        r"names fine, pseudo\); add one, e.g. coarse: ce$"
    )
    with pytest.raises(ConfigError, match=expected):
        module.on_fit_start()
    data.samples = data.samples[::2]  # fine and pseudo only
    module.on_fit_start()


def test_temporal_pair_adds_lambda_times_consistency_and_label_weight_scales_the_labels(
    monkeypatch, tmp_path
):
    source = VideoSegmentationModule(
        student="deeplabv3plus_mbv2", student_args={"decoder_channels": 16}, num_classes=3, num_frames=1
    )
    torch.save({"state_dict": source.state_dict()}, tmp_path / "run.ckpt")
    module = VideoSegmentationModule(
        student="deeplabv3plus_mbv2",
        student_args={"decoder_channels": 16},
        num_classes=3,
        num_frames=1,
        losses={"fine": "ce"},
        init_weights=str(tmp_path / "run.ckpt"),
        label_weight=0.5,
        temporal_weight=2.0,
    )
    for key, value in source.student.state_dict().items():
        assert torch.equal(module.student.state_dict()[key], value), key
    logged: dict[str, float] = {}
    monkeypatch.setattr(
        module, "log", lambda name, value, **kw: logged.__setitem__(name, float(value.detach()))
    )
    module.eval()  # deterministic dropout and BN, so the sums below can be recomputed
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(2, 2, 3, 32, 32, generator=generator)
    flow = torch.zeros(2, 2, 32, 32)
    flow[:, 0] = 1.5
    batch = {
        "frames": frames,
        "label": torch.randint(0, 3, (2, 32, 32), generator=generator),
        "kind": torch.tensor([FINE, FINE]),
        "meta": {"kind": ["fine", "fine"]},
        "flow_to_prev": flow,
        "flow_from_prev": -flow,
    }
    total = module.training_step(batch, 0)
    with torch.no_grad():
        current, previous = module.student(frames[:, 1:]), module.student(frames[:, :1])
    label = _ce_by_hand(current, batch["label"])
    consistency = temporal_consistency_loss(current.softmax(1), previous.softmax(1), flow, -flow)
    assert float(consistency) > 0
    assert float(total.detach()) == pytest.approx(0.5 * label + 2.0 * float(consistency), rel=1e-5)
    assert logged["train/loss_temporal"] == pytest.approx(float(consistency), rel=1e-5)
    module.hparams.label_weight = 0.0
    assert float(module.training_step(batch, 0).detach()) == pytest.approx(2.0 * float(consistency), rel=1e-5)


def test_poly_schedule_decays_to_the_floor_and_stays_there():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    scheduler = poly_schedule(optimizer, total_steps=10, power=0.9, floor=0.1)["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(12):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.01)
    assert rates[5] == pytest.approx(0.01 * (0.9 * 0.5**0.9 + 0.1))
    assert rates[10] == rates[11] == pytest.approx(0.001)  # min_lr = floor × lr after the last step


def test_overlay_grid_rows_are_frame_label_prediction_in_the_palette():
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    frame = ((torch.full((3, 2, 3), 0.5) - mean) / std)[None]  # mid grey once un-normalised
    label = torch.tensor([[[0, 1, 255], [1, 1, 0]]])
    pred = torch.tensor([[[1, 1, 1], [0, 0, 0]]])
    grid = overlay_grid(frame, label, pred, [[255, 0, 0], [0, 0, 255]])
    assert grid.shape == (3, 2 + 2 + 2, 2 + 3 * (3 + 2))  # one row of three 2×3 tiles, 2 px apart
    tiles = [grid[:, 2:4, 2 + j * 5 : 5 + j * 5] for j in range(3)]
    torch.testing.assert_close(tiles[0], torch.full((3, 2, 3), 0.5))
    red, blue, black = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0]), torch.zeros(3)
    assert torch.equal(tiles[1][:, 0, 0], red) and torch.equal(tiles[1][:, 0, 1], blue)
    assert torch.equal(tiles[1][:, 0, 2], black)  # the ignore index
    assert torch.equal(tiles[2][:, 0, 0], blue) and torch.equal(tiles[2][:, 1, 2], red)


def test_a_restored_checkpoint_reads_none_of_the_starting_weights_files(tmp_path):
    """``init_weights`` and the encoder's weights file are gone: the checkpoint's state dict is enough."""
    torch.manual_seed(0)
    small = {"decoder_channels": 16, "decoder_aspp_dropout": 0.0}
    args = dict(student="deeplabv3plus_mbv2", num_classes=3, num_frames=1, losses={"fine": "ce"}, lr=0.5)
    stage1, encoder = tmp_path / "stage1.safetensors", tmp_path / "encoder.safetensors"
    stage1_state = VideoSegmentationModule(student_args=small, **args).student.state_dict()
    save_file({k: v.contiguous() for k, v in stage1_state.items()}, str(stage1))
    smp_encoder = smp.DeepLabV3Plus("mobilenet_v2", encoder_weights=None, classes=3).encoder
    save_file({k: v.contiguous() for k, v in smp_encoder.state_dict().items()}, str(encoder))
    module = VideoSegmentationModule(
        init_weights=str(stage1), student_args={**small, "encoder_weights": str(encoder)}, **args
    )
    label = torch.full((32, 32), 255)
    label[4:9, 4:9], label[20:25, 10:15] = 1, 2
    sample = {"frames": torch.randn(1, 3, 32, 32), "label": label, "meta": {"kind": "fine"}}
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader([sample, sample], batch_size=2))
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    stage1.unlink()
    encoder.unlink()
    assert module.hparams["init_weights"] == str(stage1)  # the run itself keeps what it started from
    assert module.hparams["student_args"]["encoder_weights"] == str(encoder)
    restored = VideoSegmentationModule.load_from_checkpoint(tmp_path / "run.ckpt", weights_only=True)
    assert restored.hparams["init_weights"] is None and restored.hparams["student_args"] == small
    module.eval()
    restored.eval()
    frames = torch.randn(2, 1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(restored(frames), module(frames))
    trained = module.student.state_dict()
    assert any(not torch.equal(trained[k], v) for k, v in stage1_state.items())  # the step moved it
    assert all(torch.equal(restored.student.state_dict()[k], v) for k, v in trained.items())


def test_the_gated_crf_warm_up_follows_the_optimizer_steps_with_an_aux_head():
    torch.manual_seed(0)
    module = VideoSegmentationModule(
        student="pspnet_r18_os8_small",  # an auxiliary head: the loss is called twice a batch
        num_classes=3,
        num_frames=1,
        losses={"clicks": {"partial_ce": 1.0, "gated_crf": 0.1}},
        loss_args={"clicks": {"gated_crf": {"radius": 1, "ramp_steps": 10}}},
    )
    assert module.student.aux_weights == {"aux": 0.4}
    label = torch.full((32, 32), 255)
    label[4, 4], label[20, 10] = 1, 2
    sample = {"frames": torch.randn(1, 3, 32, 32), "label": label, "meta": {"kind": "clicks"}}
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=3,
        accumulate_grad_batches=2,  # 6 batches, 3 optimizer steps
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    gated = module.label_loss.losses["clicks"]["gated_crf"]
    factors: list[float] = []
    ramp = gated.ramp
    gated.ramp = lambda *step: factors.append(ramp(*step)) or factors[-1]
    trainer.fit(module, DataLoader([sample] * 12, batch_size=2))
    assert trainer.global_step == 3 and int(gated.calls) == 3
    # min(1, k / 10) at optimizer step k, for both heads of both accumulated batches
    assert factors == [0.0] * 4 + [0.1] * 4 + [0.2] * 4


def test_a_kinds_loss_is_logged_as_its_epoch_mean_over_the_batches_that_hold_it(tmp_path):
    """A step value of a kind missing from a batch repeated the last one (Lightning keeps it): the
    per-kind losses are epoch means, each batch weighted by its samples of the kind."""
    torch.manual_seed(0)
    module = VideoSegmentationModule(
        student="deeplabv3plus_mbv2",
        student_args={"decoder_channels": 16},
        num_classes=3,
        num_frames=1,
        losses={"fine": "ce", "pseudo": "ce"},
        lr=0.0,  # the weights stay put, so each batch's loss can be recomputed
        min_lr=0.0,
    )
    module.eval()
    kinds = ["fine", "fine", "pseudo", "fine", "pseudo", "pseudo"]  # batches of 2: [f f] [p f] [p p]
    samples = [
        {"frames": torch.randn(1, 3, 32, 32), "label": torch.randint(0, 3, (32, 32)), "meta": {"kind": kind}}
        for kind in kinds
    ]
    seen: dict[str, float] = {}

    class EpochLine(L.Callback):  # as frugalseg's epoch line reads them, before the module's epoch end
        def on_train_epoch_end(self, trainer, pl_module):
            seen.update({k: float(v) for k, v in trainer.callback_metrics.items() if "_" in k})

    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=CSVLogger(tmp_path),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EpochLine()],
    )
    module.train = lambda mode=True: module  # keep eval mode (BN statistics) through fit
    trainer.fit(module, DataLoader(samples, batch_size=2))
    with torch.no_grad():
        losses = [_ce_by_hand(module.student(s["frames"][None]), s["label"][None]) for s in samples]
    rows = list(csv.DictReader((Path(trainer.logger.log_dir) / "metrics.csv").open()))
    for kind in ("fine", "pseudo"):
        logged = [row[f"train/loss_{kind}"] for row in rows if row[f"train/loss_{kind}"]]
        mean = sum(loss for loss, k in zip(losses, kinds, strict=True) if k == kind) / 3
        assert len(logged) == 1 and float(logged[0]) == pytest.approx(mean, rel=1e-4), kind
        assert seen[f"train/loss_{kind}"] == pytest.approx(mean, rel=1e-4)
    assert [row["step"] for row in rows if row["train/loss"]] == ["0", "1", "2"]


def test_validation_and_predict_segment_alike_whole_or_in_the_crops_windows():
    """Validation scored a whole-frame forward while predict wrote sliding windows' maps: both go through
    `segment`, which slides with ``inference: slide`` on frames larger than the training crop only."""
    from frugalseg.zoo import sliding_window

    torch.manual_seed(0)
    module = VideoSegmentationModule(
        student="deeplabv3plus_mbv2", student_args={"decoder_channels": 16}, num_classes=3, num_frames=1
    )
    module.eval()
    crop = {"augment": {"crop_size": [32, 32]}}
    module._trainer = SimpleNamespace(datamodule=SimpleNamespace(hparams=crop))
    frames = torch.randn(2, 2, 3, 32, 64)  # a frame pair, wider than the crop
    meta = {"name": ["a", "b"]}
    with torch.no_grad():
        whole, windows = (
            module.student(frames[:, 1:]),
            sliding_window(module.student, frames[:, 1:], (32, 32)),
        )
        assert not torch.allclose(whole, windows, atol=1e-3)  # the windows see less context
        torch.testing.assert_close(module.segment(frames[:, 1:]), whole)
        torch.testing.assert_close(module.pair_logits(frames)[0], whole)
        assert torch.equal(
            module.predict_step({"frames": frames[:, 1:], "meta": meta}, 0)["pred"], whole.argmax(1)
        )
        module.hparams.inference = "slide"
        torch.testing.assert_close(module.segment(frames[:, 1:]), windows)
        current, previous = module.pair_logits(frames)
        torch.testing.assert_close(current, windows)
        torch.testing.assert_close(previous, sliding_window(module.student, frames[:, :1], (32, 32)))
        assert torch.equal(
            module.predict_step({"frames": frames[:, 1:], "meta": meta}, 0)["pred"], windows.argmax(1)
        )
        torch.testing.assert_close(
            module.segment(frames[:, 1:, :, :, :32]), module.student(frames[:, 1:, :, :, :32])
        )
