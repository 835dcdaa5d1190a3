"""VideoSegmentationModule: a zoo student trained with a loss chosen per label kind."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torchvision.utils import make_grid

from frugalseg.datamodules.clips import IGNORE_INDEX, LabelKind
from frugalseg.datamodules.formats.cityscapes import CityscapesFormat
from frugalseg.datamodules.transforms import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.losses import build_loss
from frugalseg.metrics import BoundaryIoU, MeanAccuracy, MeanIoU, TemporalConsistency
from frugalseg.zoo import get_model

DEFAULT_LOSSES = {"fine": "ce", "pseudo": "ce", "coarse": "ce", "refined_coarse": "ce"}


class VideoSegmentationModule(L.LightningModule):
    """Trains a student on batches whose labels come from several sources.

    Each sample's ``kind`` routes it to the loss configured for that label source; auxiliary
    heads of the student add their weighted loss. SGD with polynomial decay as in the papers.
    Validation and test report mIoU, mean accuracy, boundary IoU (d px) and temporal consistency.

    Args:
        student: zoo name (``frugalseg.zoo.list_models()``).
        student_args: extra arguments of the student factory (widths, backbone weights file, …).
        num_classes, ignore_index, num_frames, class_names: linked from the datamodule by the CLI.
        losses: label kind → loss name (``ce``, ``ohem_ce``, …); kinds not listed cannot be trained on.
        loss_args: label kind → keyword arguments of its loss.
        lr, momentum, weight_decay: SGD; the rate decays as ``(1 - step/total)^poly_power`` to ``min_lr``.
        boundary_width: band width d of the boundary IoU, in pixels.
        log_images: validation samples drawn as frame | label | prediction on the logger.
    """

    def __init__(
        self,
        student: str = "tmanet_r18",
        student_args: dict | None = None,
        num_classes: int = 19,
        ignore_index: int = IGNORE_INDEX,
        num_frames: int = 3,
        class_names: list[str] | None = None,
        losses: dict[str, str] | None = None,
        loss_args: dict[str, dict] | None = None,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        poly_power: float = 0.9,
        min_lr: float = 1e-4,
        boundary_width: int = 2,
        log_images: int = 4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.student = get_model(
            student, num_classes=num_classes, num_frames=num_frames, **(student_args or {})
        )
        losses = losses or DEFAULT_LOSSES
        loss_args = loss_args or {}
        unknown = (set(losses) | set(loss_args)) - {kind.value for kind in LabelKind}
        if unknown:
            raise ValueError(
                f"unknown label kinds {sorted(unknown)}; kinds are {[k.value for k in LabelKind]}"
            )
        self.losses = nn.ModuleDict(
            {
                kind: build_loss(name, ignore_index=ignore_index, **loss_args.get(kind, {}))
                for kind, name in losses.items()
            }
        )
        for stage in ("val", "test"):
            setattr(self, f"{stage}_miou", MeanIoU(num_classes, ignore_index))
            setattr(self, f"{stage}_macc", MeanAccuracy(num_classes, ignore_index))
            setattr(self, f"{stage}_biou", BoundaryIoU(num_classes, ignore_index, width=boundary_width))
            setattr(self, f"{stage}_tc", TemporalConsistency(num_classes, ignore_index))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.student(frames)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        outputs = self.student.forward_train(batch["frames"])
        label, kinds = batch["label"], batch["kind"]
        total = outputs["out"].new_zeros(())
        for kind_index in kinds.unique().tolist():
            kind = LabelKind.from_index(kind_index).value
            if kind not in self.losses:
                raise ValueError(
                    f"batch has {kind!r} labels but the model has no loss for them (model.losses)"
                )
            chosen = kinds == kind_index
            loss = self.losses[kind](outputs["out"][chosen], label[chosen], batch)
            for name, weight in self.student.aux_weights.items():
                loss = loss + weight * self.losses[kind](outputs[name][chosen], label[chosen], batch)
            self.log(f"train/loss_{kind}", loss, batch_size=int(chosen.sum()))
            total = total + loss * chosen.float().mean()
        self.log("train/loss", total, prog_bar=True, batch_size=len(kinds))
        return total

    def _evaluate(self, batch: dict, stage: str) -> torch.Tensor:
        frames, label = batch["frames"], batch["label"]
        temporal = "flow_to_prev" in batch
        logits = self.student(frames[:, 1:] if temporal else frames)
        pred = logits.argmax(1)
        size = len(label)
        for name in ("miou", "macc", "biou"):
            metric = getattr(self, f"{stage}_{name}")
            metric.update(pred, label)
        self.log(f"{stage}/mIoU", getattr(self, f"{stage}_miou"), prog_bar=True, batch_size=size)
        self.log(f"{stage}/mAcc", getattr(self, f"{stage}_macc"), batch_size=size)
        self.log(f"{stage}/bIoU", getattr(self, f"{stage}_biou"), batch_size=size)
        if temporal:
            previous = self.student(frames[:, :-1]).argmax(1)
            tc = getattr(self, f"{stage}_tc")
            tc.update(previous, pred, batch["flow_to_prev"], batch["flow_from_prev"])
            self.log(f"{stage}/TC", tc, batch_size=size)
        return pred

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        pred = self._evaluate(batch, "val")
        if batch_idx == 0:
            self._log_overlays(batch, pred)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {"pred": self.student(batch["frames"]).argmax(1), "meta": batch["meta"]}

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.SGD(
            self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        floor = hp.min_lr / hp.lr

        def poly(step: int) -> float:
            return (1 - floor) * (1 - min(step, total) / total) ** hp.poly_power + floor

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _log_overlays(self, batch: dict, pred: torch.Tensor) -> None:
        """Frame | label | prediction for the first validation samples, on TensorBoard."""
        count = min(self.hparams.log_images, len(pred))
        if count == 0 or not isinstance(self.logger, TensorBoardLogger) or self.trainer.sanity_checking:
            return
        mean = torch.tensor(IMAGENET_MEAN, device=pred.device).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=pred.device).view(3, 1, 1)
        palette = _palette(self.hparams.num_classes, pred.device)
        tiles = []
        for i in range(count):
            frame = (batch["frames"][i, -1] * std + mean).clamp(0, 1)
            tiles += [frame, _colorize(batch["label"][i], palette), _colorize(pred[i], palette)]
        grid = make_grid(torch.stack(tiles), nrow=3, padding=2)
        self.logger.experiment.add_image("val/frame_label_prediction", grid, self.global_step)


def _palette(num_classes: int, device: torch.device) -> torch.Tensor:
    """Cityscapes colours for 19 classes, a fixed pseudo-random palette otherwise; ignore is black."""
    if num_classes == len(CityscapesFormat.palette):
        colours = torch.tensor(CityscapesFormat.palette, dtype=torch.float32) / 255
    else:
        colours = torch.rand(num_classes, 3, generator=torch.Generator().manual_seed(0))
    table = torch.zeros(256, 3)
    table[:num_classes] = colours
    return table.to(device)


def _colorize(label: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    return palette[label.clamp(0, 255)].permute(2, 0, 1)
