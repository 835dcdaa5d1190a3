"""Test-time fine-tuning on one video (paper 000): the loss by hand, flows once, labels of every frame."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from frugalseg.datamodules.one_video import OneVideoDataModule
from frugalseg.errors import ConfigError
from frugalseg.flow import DISFlow
from frugalseg.lightning_modules.test_time import VideoFineTuningModule, fine_tune
from frugalseg.zoo import ImageStudent, ModelConfig, register_model, unregister_model


class _PixelStudent(ImageStudent):
    """A 1×1 convolution: the tiniest student, whose loss is easy to write out by hand."""

    def __init__(self, num_classes: int, num_frames: int = 1) -> None:
        super().__init__(num_classes, num_frames)
        self.head = nn.Conv2d(3, num_classes, 1)

    def segment(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(image)


def pixel_student(num_classes: int, num_frames: int = 1) -> _PixelStudent:
    return _PixelStudent(num_classes, num_frames)


@pytest.fixture
def tiny_student():
    register_model(pixel_student, config=ModelConfig())
    yield "pixel_student"
    unregister_model("pixel_student")


def _ce_by_hand(logits: torch.Tensor, target: torch.Tensor) -> float:
    total, count = 0.0, 0
    for b, y, x in torch.nonzero(target != 255).tolist():
        z = logits[b, :, y, x].double()
        total += float(torch.logsumexp(z, 0) - z[target[b, y, x]])
        count += 1
    return total / count


def _temporal_by_hand(probs: torch.Tensor, neighbour: torch.Tensor) -> float:
    """The flow to the neighbour is one pixel right: pixel x reads the neighbour at x + 1, and the
    forward-backward check passes everywhere but the last column, whose flow leaves the frame."""
    total, count = 0.0, 0
    batch, classes, height, width = probs.shape
    for b in range(batch):
        for y in range(height):
            for x in range(width - 1):
                total += float(((probs[b, :, y, x] - neighbour[b, :, y, x + 1]).double() ** 2).sum())
                count += 1
    return total / count


def test_the_training_loss_is_ce_on_labelled_pixels_plus_lambda_times_temporal(tiny_student, monkeypatch):
    module = VideoFineTuningModule(student=tiny_student, num_classes=3, temporal_weight=1.0)
    generator = torch.Generator().manual_seed(0)
    label = torch.full((2, 6, 7), 255, dtype=torch.long)
    label[0, 1:4, 2:5] = 1
    label[1, 0, :] = 2
    shift = torch.zeros(2, 2, 6, 7)
    shift[:, 0] = 1.0
    batch = {
        "frames": torch.randn(2, 1, 3, 6, 7, generator=generator),
        "neighbour_frames": torch.randn(2, 1, 3, 6, 7, generator=generator),
        "label": label,
        "flow_to_neighbour": shift,
        "flow_from_neighbour": -shift,
        "index": torch.tensor([0, 1]),
    }
    logged: dict[str, float] = {}
    monkeypatch.setattr(
        module, "log", lambda name, value, **kw: logged.__setitem__(name, float(value.detach()))
    )
    loss = module.training_step(batch, 0)
    with torch.no_grad():
        logits = module.student(batch["frames"])
        neighbour = module.student(batch["neighbour_frames"])
    ce = _ce_by_hand(logits, label)
    temporal = _temporal_by_hand(logits.softmax(1), neighbour.softmax(1))
    assert logged["train/loss_label"] == pytest.approx(ce, rel=1e-5)
    assert logged["train/loss_temporal"] == pytest.approx(temporal, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(ce + temporal, rel=1e-5)
    loss.backward()
    assert module.student.head.weight.grad is not None


def test_lambda_scales_the_temporal_term_and_zero_switches_it_off(tiny_student, monkeypatch):
    logged: dict[str, float] = {}
    batch = {
        "frames": torch.randn(1, 1, 3, 5, 5),
        "neighbour_frames": torch.randn(1, 1, 3, 5, 5),
        "label": torch.zeros(1, 5, 5, dtype=torch.long),
        "flow_to_neighbour": torch.zeros(1, 2, 5, 5),
        "flow_from_neighbour": torch.zeros(1, 2, 5, 5),
    }
    half = VideoFineTuningModule(student=tiny_student, num_classes=3, temporal_weight=0.5)
    monkeypatch.setattr(
        half, "log", lambda name, value, **kw: logged.__setitem__(name, float(value.detach()))
    )
    loss = float(half.training_step(batch, 0).detach())
    assert loss == pytest.approx(logged["train/loss_label"] + 0.5 * logged["train/loss_temporal"], rel=1e-6)
    logged.clear()
    off = VideoFineTuningModule(student=tiny_student, num_classes=3, temporal_weight=0.0)
    monkeypatch.setattr(off, "log", lambda name, value, **kw: logged.__setitem__(name, float(value.detach())))
    assert float(off.training_step(batch, 0).detach()) == pytest.approx(logged["train/loss_label"])
    assert "train/loss_temporal" not in logged


def _video(count: int = 3, size: int = 32) -> list[np.ndarray]:
    frames = []
    for t in range(count):
        frame = np.full((size, size, 3), 40, np.uint8)
        frame[8:20, 6 + 2 * t : 18 + 2 * t] = 220  # a bright square moving right
        frames.append(frame)
    return frames


class _CountingDIS(DISFlow):
    calls = 0

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        type(self).calls += 1
        return super().__call__(first, second)


def test_fine_tune_computes_the_flows_once_and_labels_every_frame(tiny_student, tmp_path):
    torch.manual_seed(0)
    frames = _video()
    label = np.full((32, 32), 255, np.uint8)
    label[8:20, 6:18] = 1
    label[24:, :] = 0
    data = OneVideoDataModule(
        frames, [label, None, None], batch_size=3, flow_engine=_CountingDIS(), flow_cache=tmp_path
    )
    module = VideoFineTuningModule(student=tiny_student, num_classes=2, lr=0.5)
    result = fine_tune(module, data, epochs=30, accelerator="cpu")
    assert _CountingDIS.calls == 4  # two consecutive pairs, both ways, over 30 epochs
    assert len(result.labels) == 3 and all(lab.shape == (32, 32) for lab in result.labels)
    assert result.probabilities[0].shape == (2, 32, 32)
    assert np.allclose(result.probabilities[1].sum(0), 1.0, atol=1e-5)
    labelled = label != 255
    assert (result.labels[0][labelled] == label[labelled]).mean() > 0.95
    # the next iteration's datamodule reads the flows from the cache (kept as float16)
    again = OneVideoDataModule(frames, flow_engine=_CountingDIS(), flow_cache=tmp_path)
    again.setup("fit")
    assert _CountingDIS.calls == 4
    assert data.flows is not None and again.flows is not None
    assert all(torch.allclose(data.flows[k], again.flows[k], rtol=1e-3, atol=1e-3) for k in data.flows)


def test_a_video_shorter_than_two_frames_or_mismatched_labels_are_refused():
    with pytest.raises(ConfigError, match="frames: fine-tuning on a video needs at least 2 frames"):
        OneVideoDataModule(_video(1))
    with pytest.raises(ConfigError, match="labels: 1 labels for a video of 2 frames"):
        OneVideoDataModule(_video(2), [None])
    with pytest.raises(ConfigError, match="labels: the label of frame 1 is 8×8, its frame 32×32"):
        OneVideoDataModule(_video(2), [None, np.zeros((8, 8), np.uint8)])
    with pytest.raises(ConfigError, match="frames: frame 1 is uint8 of shape"):
        OneVideoDataModule([_video(1)[0], np.zeros((16, 16, 3), np.uint8)])
    with pytest.raises(ConfigError, match=r"^labels: the label of frame 0 holds 0…300: class ids and the "):
        OneVideoDataModule(
            _video(2), [np.full((32, 32), 300).clip(max=np.arange(32) * 10), None]
        )  # had been 44
    with pytest.raises(
        ConfigError, match=r"^ignore_index: must lie in 0…255 \(labels are uint8 maps\), got -1"
    ):
        OneVideoDataModule(_video(2), ignore_index=-1)  # numpy's OverflowError


def test_a_restored_checkpoint_does_not_read_init_weights(tiny_student, tmp_path):
    torch.manual_seed(0)
    start = tmp_path / "start.safetensors"
    save_file({k: v.contiguous() for k, v in pixel_student(3).state_dict().items()}, str(start))
    module = VideoFineTuningModule(student=tiny_student, num_classes=3, init_weights=str(start))
    with torch.no_grad():
        module.student.head.weight.add_(1.0)  # as a run's steps would
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    start.unlink()
    restored = VideoFineTuningModule.load_from_checkpoint(tmp_path / "run.ckpt", weights_only=True)
    assert restored.hparams["init_weights"] is None and module.hparams["init_weights"] == str(start)
    frames = torch.randn(2, 1, 3, 4, 5)
    assert torch.equal(restored(frames), module(frames))
