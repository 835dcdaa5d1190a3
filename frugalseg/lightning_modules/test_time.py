"""Test-time fine-tuning on one video (paper 000, HVSA): a few labelled samples become labels of every frame.

`VideoFineTuningModule` fine-tunes a zoo student on the frames of one video
(`frugalseg.datamodules.one_video.OneVideoDataModule`): cross-entropy on the pixels a person labelled
plus λ times the temporal-consistency loss between each frame's prediction and its consecutive
neighbour's, warped by the optical flow (`frugalseg.losses.temporal_consistency_loss`). The paper's
settings are the defaults: λ = 1, SGD at 0.004 with momentum 0.9 and the poly schedule; it trains
15 epochs per loop iteration (`fine_tune`'s ``epochs``). Its predictions of every frame are the
video's new labels. The paper names no weight decay; none is the default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.datamodules.one_video import OneVideoDataModule
from frugalseg.lightning_modules.base import BaseTask
from frugalseg.lightning_modules.segmentation import VideoSegmentationModule, drop_starting_weights
from frugalseg.losses import CrossEntropy, temporal_consistency_loss
from frugalseg.zoo import Student


class VideoFineTuningModule(BaseTask):
    """Fine-tunes a student on one video's sparse labels with a temporal-consistency loss.

    Args:
        student: zoo name (``frugalseg.zoo.list_models(task="semantic")``); the paper's is
            ``hrnetv2_w48``.
        student_args: extra arguments of the student factory (widths, backbone weights file, …).
        num_classes: classes of the labels.
        num_frames: frames per clip the student reads (1 for image students).
        ignore_index: label value of unlabelled pixels, which get no cross-entropy.
        init_weights: the trained student to start from: a ``frugalseg fit`` checkpoint, a
            safetensors / torch state dict, a published name or a URL (as ``zoo.get_model(weights=…)``).
        lr: initial learning rate of SGD.
        momentum: SGD momentum.
        weight_decay: SGD weight decay (L2 penalty).
        poly_power: the rate decays each step as ``(1 - step/total)^poly_power`` down to ``min_lr``.
        min_lr: the rate at the last step.
        temporal_weight: λ of the temporal-consistency loss; 0 trains on the labels alone.
    """

    monitor = "train/loss"
    mode = "min"

    student: Student

    def __init__(
        self,
        student: str = "hrnetv2_w48",
        student_args: dict | None = None,
        num_classes: int = 19,
        num_frames: int = 1,
        ignore_index: int = IGNORE_INDEX,
        init_weights: str | None = None,
        lr: float = 0.004,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        poly_power: float = 0.9,
        min_lr: float = 0.0,
        temporal_weight: float = 1.0,
    ) -> None:
        super().__init__()

    # the student from the zoo, with ``init_weights`` loaded into it: the segmentation task's own hook
    configure_models = VideoSegmentationModule.configure_models

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save no starting weights to read on restore (`drop_starting_weights`)."""
        super().on_save_checkpoint(checkpoint)
        drop_starting_weights(checkpoint)

    def configure_losses(self) -> None:
        """Cross-entropy over the labelled pixels (0 for a batch without any)."""
        self.label_loss = CrossEntropy(ignore_index=self.hparams["ignore_index"])

    def build_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """SGD with ``lr``, ``momentum`` and ``weight_decay``."""
        hp = self.hparams
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        """CE on the labelled pixels of each frame + λ · consistency with its neighbour's warped prediction.

        The frames and their neighbours go through the student as one batch.
        """
        size = len(batch["frames"])
        logits, neighbour = self.student(torch.cat((batch["frames"], batch["neighbour_frames"]))).split(size)
        label_loss = self.label_loss(logits, batch["label"])
        total = label_loss
        self.log("train/loss_label", label_loss, on_epoch=True, sync_dist=True, batch_size=size)
        if self.hparams["temporal_weight"]:
            consistency = temporal_consistency_loss(
                logits.softmax(1),
                neighbour.softmax(1),
                batch["flow_to_neighbour"],
                batch["flow_from_neighbour"],
            )
            self.log("train/loss_temporal", consistency, on_epoch=True, sync_dist=True, batch_size=size)
            total = total + self.hparams["temporal_weight"] * consistency
        self.log("train/loss", total, prog_bar=True, batch_size=size)
        return total

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        """The class probabilities B×C×H×W of each frame, with its index."""
        return {"index": batch["index"], "probabilities": self.student(batch["frames"]).softmax(1)}


@dataclass(frozen=True)
class VideoLabels:
    """What fine-tuning on one video produced.

    Attributes:
        labels: the predicted class map of every frame (H×W uint8), the video's new labels.
        probabilities: the softmax of every frame (C×H×W float32), for uncertainty selection.
    """

    labels: list[np.ndarray]
    probabilities: list[np.ndarray]


def fine_tune(
    module: VideoFineTuningModule, data: OneVideoDataModule, epochs: int = 15, **trainer_args: Any
) -> VideoLabels:
    """Fine-tune ``module`` on ``data``'s video for ``epochs`` epochs, then predict every frame.

    Args:
        module: the student and its fine-tuning settings.
        data: the video's frames, sparse labels and flows.
        epochs: passes over the video's frames (the paper: 15 per loop iteration).
        **trainer_args: more arguments of ``lightning.Trainer`` (``accelerator``, ``devices``, …);
            by default nothing is logged or checkpointed.
    """
    options: dict[str, Any] = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **trainer_args,
    }
    trainer = L.Trainer(max_epochs=epochs, **options)
    trainer.fit(module, datamodule=data)
    outputs = trainer.predict(module, datamodule=data) or []
    probabilities: list[np.ndarray] = [np.empty(0, np.float32)] * len(data.video)
    for output in outputs:
        assert isinstance(output, dict)  # predict_step's
        for index, probs in zip(output["index"].tolist(), output["probabilities"], strict=True):
            probabilities[index] = probs.float().cpu().numpy()
    labels = [probs.argmax(0).astype(np.uint8) for probs in probabilities]
    return VideoLabels(labels=labels, probabilities=probabilities)
