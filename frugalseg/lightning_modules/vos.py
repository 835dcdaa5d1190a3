"""VOSModule: STM trained on object-mask clips and evaluated by J&F over whole sequences."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from frugalseg.datamodules.clips import IGNORE_INDEX
from frugalseg.lightning_modules.segmentation import poly_schedule
from frugalseg.losses import build_loss
from frugalseg.metrics import JF
from frugalseg.zoo import get_model
from frugalseg.zoo.stm import STM, masks_from_ids


class VOSModule(L.LightningModule):
    """Semi-supervised VOS: given the first frame's object masks, segment the following frames.

    Training (the reproduced STM main training): a clip of T frames, frame 0's masks in memory, each
    later frame segmented with the soft estimate of the previous one in memory; cross-entropy over
    background + objects on frames 1…T−1 (``loss="phuber_ce"`` gives the robust loss that paper 003
    uses for noisy pseudo-labels). Validation/test stream every sequence from its first mask with the
    official memory schedule and report J, F and J&F (DAVIS protocol: means over objects).

    Args:
        student: zoo name of an STM (``stm_r50`` paper size, ``stm_r18`` small).
        student_args: extra arguments of the student factory (widths, ``memory_every``, …).
        max_objects: objects one sequence may hold (linked from the datamodule); the model has
            ``max_objects + 1`` output channels.
        loss, loss_args: loss name (``ce``, ``phuber_ce``, …) and its keyword arguments.
        lr, weight_decay, poly_power: Adam with polynomial decay (1e-5 and 0.9 in the STM reproduction).
        freeze_bn: keep BatchNorm statistics fixed while training, as the STM reproduction does
            (useful from pretrained weights; leave off when training from scratch).
    """

    def __init__(
        self,
        student: str = "stm_r18",
        student_args: dict | None = None,
        max_objects: int = 10,
        loss: str = "ce",
        loss_args: dict | None = None,
        lr: float = 1e-5,
        weight_decay: float = 0.0,
        poly_power: float = 0.9,
        freeze_bn: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        model = get_model(student, num_classes=max_objects + 1, **(student_args or {}))
        if not isinstance(model, STM):
            raise ValueError(f"VOSModule trains STM students (stm_r50, stm_r18), got {student!r}")
        self.student: STM = model
        self.loss = build_loss(loss, ignore_index=IGNORE_INDEX, **(loss_args or {}))
        self.val_jf = JF()
        self.test_jf = JF()
        self.sequence_scores: dict[str, dict[str, float]] = {}

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        frames, labels, num_objects = batch["frames"], batch["labels"], batch["num_objects"]
        slots = max(1, int(num_objects.max()))
        logits = self.student(frames, masks_from_ids(labels[:, 0], slots), num_objects)
        loss = self.loss(logits.flatten(0, 1), labels[:, 1:].flatten(0, 1))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(frames))
        return loss

    @torch.no_grad()
    def segment_sequence(self, frames: Tensor, first_ids: Tensor, num_objects: int) -> Tensor:
        """Object ids T×H×W of a whole sequence (frames 1×T×3×H×W) from its first frame's id map H×W."""
        masks = masks_from_ids(first_ids[None], num_objects)
        self.student.reset(frames[:, 0], masks)
        preds = [first_ids.where(first_ids != IGNORE_INDEX, 0)]
        for t in range(1, frames.shape[1]):
            preds.append(self.student.step(frames[:, t])[0].argmax(0))
        return torch.stack(preds)

    def _evaluate(self, batch: dict, stage: str) -> None:
        labels, num_objects = batch["labels"][0], int(batch["num_objects"][0])
        preds = self.segment_sequence(batch["frames"], labels[0], num_objects)
        metric: JF = getattr(self, f"{stage}_jf")
        metric.update(preds, labels, num_objects)
        j, f = (float(score.mean()) for score in metric.last_sequence)
        self.sequence_scores[batch["meta"]["sequence"][0]] = {"J": j, "F": f, "JF": (j + f) / 2}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _log_epoch(self, stage: str) -> None:
        metric: JF = getattr(self, f"{stage}_jf")
        for name, value in metric.compute().items():
            self.log(f"{stage}/{name}", value, prog_bar=name == "JF", sync_dist=False)
        metric.reset()

    def on_validation_epoch_start(self) -> None:
        self.sequence_scores = {}

    def on_test_epoch_start(self) -> None:
        self.sequence_scores = {}

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def train(self, mode: bool = True) -> VOSModule:
        """Switch train/eval mode; with ``freeze_bn`` the BatchNorm layers always stay in eval mode."""
        super().train(mode)
        if mode and self.hparams.freeze_bn:
            for module in self.student.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        return poly_schedule(optimizer, int(self.trainer.estimated_stepping_batches), hp.poly_power)
