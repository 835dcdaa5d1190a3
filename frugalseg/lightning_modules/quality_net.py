"""Training EVA-VOS's quality network: `QualityNetModule` classifies a mask's J into quality bins.

The samples are (frame, object mask, J) triples from the masks of simulated annotation loops
(`frugalseg.active.objects.simulation.training_samples.QualitySamples`); the label of a sample is
the bin of its J (`frugalseg.zoo.quality_net.quality_bins`, 20 bins of width 0.05 in the paper) and the
loss is cross-entropy over the bins. The paper trains two ImageNet ResNet-18 branches with SGD (lr 1e-5,
momentum 0.9, batch 64) for 30 epochs. Besides the loss, training and validation report how often
the predicted bin is the true one (``bin_accuracy``) and the mean absolute error of the predicted
quality, the centre of the predicted bin, against the true J (``quality_mae``, the one that picks
a checkpoint). `fit_quality_net` trains through `lightning.Trainer` on the CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics import Metric, MetricCollection

from frugalseg.errors import ConfigError
from frugalseg.lightning_modules.base import BaseTask, quiet_trainers
from frugalseg.zoo.quality_net import (
    DEFAULT_BINS,
    DEFAULT_ENCODER,
    DEFAULT_INPUT_SIZE,
    QualityNet,
    batch_inputs,
    bin_centres,
    load_encoder_weights,
    quality_bins,
)

log = logging.getLogger(__name__)

#: A batch: normalised frames B×3×S×S, masks B×1×S×S, bins B (int64), J B (float32).
Batch = tuple[Tensor, Tensor, Tensor, Tensor]
#: One sample: frame S×S×3 uint8, mask S×S uint8, bin, J.
Item = tuple[np.ndarray, np.ndarray, int, float]


class QualitySampleSet(Protocol):
    """What training reads of a sample set (`active.objects.training_samples.QualitySamples` offers it).

    Attributes:
        frames: F×S×S×3 uint8 resized frames.
        frame_index: N, the row of ``frames`` of each sample.
        j: N, the J of each sample's mask.
    """

    frames: np.ndarray
    frame_index: np.ndarray
    j: np.ndarray

    def __len__(self) -> int:
        """Number of samples."""
        ...

    def masks(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The 0/1 masks of ``rows`` as N×S×S uint8."""
        ...


class QualityBinAccuracy(Metric):
    """Share of samples whose predicted bin (argmax of the logits) is the bin of their J.

    Args:
        bins: quality bins.
    """

    correct: Tensor
    total: Tensor
    full_state_update = False

    def __init__(self, bins: int = DEFAULT_BINS) -> None:
        super().__init__()
        self.bins = bins
        self.add_state("correct", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, logits: Tensor, j: Tensor) -> None:
        """Count the samples of one batch.

        Args:
            logits: B×bins.
            j: B, the true J of each sample.
        """
        hit = logits.argmax(1) == quality_bins(j, self.bins).to(logits.device)
        self.correct += hit.sum()
        self.total += hit.numel()

    def compute(self) -> Tensor:
        """The share of correct bins."""
        return self.correct / self.total.clamp(min=1)


class QualityMAE(Metric):
    """Mean absolute error of the predicted quality (the centre of the predicted bin) against J.

    Args:
        bins: quality bins.
    """

    error: Tensor
    total: Tensor
    full_state_update = False

    def __init__(self, bins: int = DEFAULT_BINS) -> None:
        super().__init__()
        self.bins = bins
        self.add_state("error", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, logits: Tensor, j: Tensor) -> None:
        """Add the errors of one batch.

        Args:
            logits: B×bins.
            j: B, the true J of each sample.
        """
        predicted = bin_centres(self.bins).to(logits.device)[logits.argmax(1)]
        self.error += (predicted.double() - j.double().to(logits.device)).abs().sum()
        self.total += j.numel()

    def compute(self) -> Tensor:
        """The mean absolute error."""
        return self.error / self.total.clamp(min=1)


def quality_metrics(bins: int = DEFAULT_BINS) -> MetricCollection:
    """``bin_accuracy`` and ``quality_mae``, updated with a batch's ``(logits, j)``.

    Args:
        bins: quality bins.
    """
    return MetricCollection({"bin_accuracy": QualityBinAccuracy(bins), "quality_mae": QualityMAE(bins)})


class QualityNetModule(BaseTask):
    """Cross-entropy over the quality bins of the masks' J (paper 002, section 2.2).

    Args:
        encoder: timm model name of both branches (``resnet18`` in the paper).
        bins: quality bins (20 in the paper).
        input_size: side of the square frames and masks (224 in the paper).
        lr: SGD's initial rate (1e-5 in the paper, with ImageNet-pretrained encoders).
        momentum: SGD's momentum (0.9 in the paper).
        weight_decay: SGD's weight decay (none in the paper).
        dropout: dropout before the linear head (0.5 in the official code).
        poly_power: power of the polynomial decay of the rate per step; 0 keeps it constant.
        encoder_weights: a timm weights file both branches start from (e.g. ImageNet ResNet-18);
            None: random initial weights.
    """

    monitor = "val/quality_mae"
    mode = "min"

    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        bins: int = DEFAULT_BINS,
        input_size: int = DEFAULT_INPUT_SIZE,
        lr: float = 1e-5,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        dropout: float = 0.5,
        poly_power: float = 0.0,
        encoder_weights: str | None = None,
    ) -> None:
        super().__init__()

    def configure_models(self) -> None:
        """The `QualityNet`, its encoders from ``encoder_weights`` when given."""
        hp = self.hparams
        self.student = QualityNet(hp["encoder"], hp["bins"], hp["input_size"], hp["dropout"])
        if hp["encoder_weights"] is not None:
            load_encoder_weights(self.student, hp["encoder_weights"])

    def configure_losses(self) -> None:
        """Cross-entropy over the bins."""
        self.loss = nn.CrossEntropyLoss()

    def configure_metrics(self) -> None:
        """Bin accuracy and quality MAE, one collection per stage."""
        metrics = quality_metrics(self.hparams["bins"])
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")

    def _step(self, batch: Batch, stage: str, metrics: MetricCollection) -> Tensor:
        frames, masks, labels, j = batch
        logits = self.student(frames, masks)
        loss = self.loss(logits, labels)
        metrics.update(logits.detach(), j)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(labels))
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=len(labels))
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """The loss of one batch of (frames, masks, bins, J)."""
        return self._step(batch, "train", self.train_metrics)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Log the loss, bin accuracy and quality MAE on held-out samples."""
        self._step(batch, "val", self.val_metrics)

    def build_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """SGD at ``lr`` with ``momentum`` and ``weight_decay``."""
        hp = self.hparams
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])


class QualitySampleDataset(Dataset[Item]):
    """The samples of a set as (frame S×S×3 uint8, mask S×S uint8, bin, J); `collate_quality` batches them.

    Args:
        samples: the sample set.
        bins: quality bins the labels are counted in.
    """

    def __init__(self, samples: QualitySampleSet, bins: int = DEFAULT_BINS) -> None:
        self.samples = samples
        self.labels = quality_bins(torch.as_tensor(np.asarray(samples.j, np.float64)), bins).tolist()

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.samples)

    def __getitem__(self, i: int) -> Item:
        """Sample ``i``."""
        s = self.samples
        return s.frames[s.frame_index[i]], s.masks([i])[0], self.labels[i], float(s.j[i])


def collate_quality(items: list[Item]) -> Batch:
    """The `Batch` of some samples: frames normalised, masks and J as float tensors.

    Args:
        items: samples as `QualitySampleDataset` gives them.
    """
    frames, masks, labels, j = zip(*items, strict=True)
    x, m = batch_inputs(np.stack(frames), np.stack(masks))
    return x, m, torch.tensor(labels, dtype=torch.int64), torch.tensor(j, dtype=torch.float32)


def _loader(
    samples: QualitySampleSet, bins: int, batch_size: int, seed: int | None, workers: int
) -> DataLoader:
    """Batches of ``samples``, shuffled by ``seed`` (None: in order).

    In training (a seed), a last batch of one sample is dropped: BatchNorm cannot train on it. Each
    loader has its own generator, so that iterating it draws nothing from torch's global one (which
    the dropout uses): held-out samples do not change the trained weights.
    """
    train = seed is not None
    return DataLoader(
        QualitySampleDataset(samples, bins),
        batch_size=batch_size,
        shuffle=train,
        generator=torch.Generator().manual_seed(0 if seed is None else seed),
        drop_last=train and len(samples) > batch_size and len(samples) % batch_size == 1,
        collate_fn=collate_quality,
        num_workers=workers,
    )


def _input_size(samples: QualitySampleSet, val_samples: QualitySampleSet | None) -> int:
    """The network's input size: the side of the training frames, which validation frames must share.

    Args:
        samples: the training samples.
        val_samples: held-out samples, or None.

    Raises:
        ConfigError: no samples, or validation samples of another size.
    """
    if len(samples) == 0:
        raise ConfigError("samples", "no quality samples to train on")
    size = int(samples.frames.shape[1])
    if val_samples is not None and int(val_samples.frames.shape[1]) != size:
        raise ConfigError(
            "val_samples", f"are {val_samples.frames.shape[1]} px square, the training samples {size} px"
        )
    return size


def _trainer_options(epochs: int, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """``lightning.Trainer`` arguments: a quiet, deterministic CPU run of ``epochs``, then ``overrides``.

    Args:
        epochs: the run's ``max_epochs``.
        overrides: arguments that replace these defaults, or None.
    """
    return {
        "max_epochs": epochs,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "deterministic": True,
        **(overrides or {}),
    }


def fit_quality_net(
    samples: QualitySampleSet,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-5,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
    encoder: str = DEFAULT_ENCODER,
    bins: int = DEFAULT_BINS,
    encoder_weights: str | None = None,
    val_samples: QualitySampleSet | None = None,
    num_workers: int = 0,
    trainer_options: dict[str, Any] | None = None,
) -> QualityNet:
    """A `QualityNet` trained through Lightning on ``samples`` (CPU by default), deterministic given ``seed``.

    Args:
        samples: the training samples; their frames' size is the network's input size.
        epochs: passes over the samples (30 in the paper).
        batch_size: samples per step (64 in the paper).
        lr: SGD's rate (1e-5 in the paper, from ImageNet weights; far more from random weights).
        momentum: SGD's momentum.
        weight_decay: SGD's weight decay.
        seed: seed of the initial weights, the dropout and the shuffling.
        encoder: timm model name of both branches.
        bins: quality bins.
        encoder_weights: a timm weights file both branches start from (None: random weights).
        val_samples: held-out samples, evaluated after every epoch (``val/loss``, ``val/bin_accuracy``,
            ``val/quality_mae`` in the trainer's ``callback_metrics``, also logged here).
        num_workers: data loader processes.
        trainer_options: ``lightning.Trainer`` arguments that replace the defaults (CPU, one device,
            no logger, no checkpoints, no progress bar).

    Raises:
        ConfigError: no samples, or validation samples of another input size.
    """
    size = _input_size(samples, val_samples)
    L.seed_everything(seed, verbose=False)
    module = QualityNetModule(
        encoder, bins, size, lr, momentum, weight_decay, encoder_weights=encoder_weights
    )
    train = _loader(samples, bins, batch_size, seed, num_workers)
    val = None if val_samples is None else _loader(val_samples, bins, batch_size, None, num_workers)
    with quiet_trainers():
        trainer = L.Trainer(**_trainer_options(epochs, trainer_options))
        trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    scores = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()}
    log.info("QNet after %d epochs on %d samples: %s", epochs, len(samples), scores)
    net = module.student
    assert isinstance(net, QualityNet)  # configure_models built it
    return net.eval()


def evaluate_quality_net(
    net: QualityNet, samples: QualitySampleSet, *, batch_size: int = 64
) -> dict[str, float]:
    """Loss, bin accuracy and quality MAE of ``net`` (in eval mode) on ``samples``.

    Args:
        net: the network.
        samples: the samples to score it on.
        batch_size: samples per forward pass.
    """
    metrics = quality_metrics(net.bins)
    device = next(net.parameters()).device
    training = net.training
    net.eval()
    loss, count = 0.0, 0
    try:
        with torch.no_grad():
            for frames, masks, labels, j in _loader(samples, net.bins, batch_size, None, 0):
                logits = net(frames.to(device), masks.to(device)).cpu()
                loss += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
                count += len(labels)
                metrics.update(logits, j)
    finally:
        net.train(training)
    scores = {k: float(v) for k, v in metrics.compute().items()}
    return {"loss": loss / max(count, 1), **scores}


__all__ = [
    "QualityBinAccuracy",
    "QualityMAE",
    "QualityNetModule",
    "evaluate_quality_net",
    "fit_quality_net",
    "quality_metrics",
]
