"""Training QNet: its metrics against hand sums, the optimiser of the paper, learning a separable set,
the same weights from the same seed."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from frugalseg.active.objects.simulation.training_samples import QualitySamples
from frugalseg.errors import ConfigError
from frugalseg.lightning_modules.quality_net import (
    QualityNetModule,
    _trainer_options,
    evaluate_quality_net,
    fit_quality_net,
    quality_metrics,
)
from frugalseg.zoo import QualityNet

SIZE = 32


def separable_samples(n: int, seed: int, size: int = SIZE) -> QualitySamples:
    """Random frames; even samples a square mask with J = 1, odd ones a horizontal bar with J = 0."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    masks[0::2, 8:24, 8:24] = 1
    masks[1::2, 14:18, :] = 1
    j = np.where(np.arange(n) % 2 == 0, 1.0, 0.0)
    ints = np.arange(n, dtype=np.int64)
    return QualitySamples(
        frames=frames,
        frame_index=ints,
        packed_masks=np.packbits(masks, axis=-1),
        j=j,
        video=np.full(n, f"toy{seed}"),
        frame=ints,
        object=np.ones(n, np.int64),
        iteration=np.zeros(n, np.int64),
    )


class Record(L.Callback):
    """Keeps the trainer's logged metrics at the end of fitting."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_metrics_equal_the_hand_sums_and_add_up_over_batches() -> None:
    logits = torch.full((4, 20), -1.0)
    logits[[0, 1, 2, 3], [19, 0, 10, 5]] = 1.0  # predicted bins
    j = torch.tensor([1.0, 0.02, 0.3, 0.27])  # true bins 19, 0, 6, 5
    metrics = quality_metrics(20)
    metrics.update(logits[:3], j[:3])
    metrics.update(logits[3:], j[3:])
    scores = {k: float(v) for k, v in metrics.compute().items()}
    assert scores["bin_accuracy"] == pytest.approx(3 / 4)
    # |0.975 − 1| + |0.025 − 0.02| + |0.525 − 0.3| + |0.275 − 0.27|, over 4
    assert scores["quality_mae"] == pytest.approx((0.025 + 0.005 + 0.225 + 0.005) / 4)


def test_the_module_has_the_papers_optimiser_and_picks_checkpoints_by_quality_error() -> None:
    module = QualityNetModule(input_size=SIZE)
    optimizer = module.build_optimizer(module.parameters())
    assert isinstance(optimizer, torch.optim.SGD)
    assert (optimizer.defaults["lr"], optimizer.defaults["momentum"], optimizer.defaults["weight_decay"]) == (
        1e-5,
        0.9,
        0.0,
    )
    assert (module.monitor, module.mode) == ("val/quality_mae", "min")
    assert isinstance(module.student, QualityNet) and module.student.bins == 20


def test_training_learns_a_separable_set_and_logs_loss_accuracy_and_error() -> None:
    samples, held_out = separable_samples(16, seed=0), separable_samples(8, seed=1)
    torch.manual_seed(0)
    before = evaluate_quality_net(QualityNet(input_size=SIZE), held_out)
    record = Record()
    net = fit_quality_net(
        samples,
        epochs=8,
        batch_size=8,
        lr=0.005,
        seed=0,
        val_samples=held_out,
        trainer_options={"callbacks": [record]},
    )
    after = evaluate_quality_net(net, held_out)
    assert after["bin_accuracy"] == 1.0 and before["bin_accuracy"] < 0.6
    assert after["quality_mae"] == pytest.approx(0.025)  # bin centres 0.025 and 0.975 for J 0 and 1
    assert after["loss"] < before["loss"] / 10
    assert {"train/loss", "val/loss", "val/bin_accuracy", "val/quality_mae", "train/bin_accuracy"} <= set(
        record.metrics
    )
    assert record.metrics["val/bin_accuracy"] == 1.0
    assert record.metrics["val/quality_mae"] == pytest.approx(0.025)
    assert not net.training


def test_the_same_seed_gives_the_same_weights_with_or_without_held_out_samples() -> None:
    samples, held_out = separable_samples(8, seed=0), separable_samples(4, seed=1)
    runs = [fit_quality_net(samples, epochs=2, batch_size=4, lr=0.01, seed=s) for s in (5, 5, 6)]
    runs.append(fit_quality_net(samples, epochs=2, batch_size=4, lr=0.01, seed=5, val_samples=held_out))
    states = [r.state_dict() for r in runs]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])
    # validating after every epoch draws nothing from the generator the dropout uses
    assert all(torch.equal(states[0][k], states[3][k]) for k in states[0])


def test_no_samples_or_validation_of_another_size_is_refused() -> None:
    with pytest.raises(ConfigError, match="samples: no quality samples"):
        fit_quality_net(QualitySamples.empty(SIZE), epochs=1)
    with pytest.raises(ConfigError, match="val_samples: are 64 px square, the training samples 32 px"):
        fit_quality_net(separable_samples(4, 0), epochs=1, val_samples=separable_samples(4, 1, size=64))


def test_the_trainer_runs_quietly_on_the_cpu_unless_told_otherwise() -> None:
    assert _trainer_options(3, None) == {
        "max_epochs": 3,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "deterministic": True,
    }
    options = _trainer_options(3, {"accelerator": "gpu", "max_epochs": 5})
    assert options["accelerator"] == "gpu" and options["max_epochs"] == 5 and options["devices"] == 1
