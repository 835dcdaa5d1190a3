"""VideoSegmentationModule: a zoo student trained with a loss chosen per label kind."""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torchvision.utils import make_grid

from frugalseg.datamodules.clips import IGNORE_INDEX, LabelKind
from frugalseg.datamodules.transforms import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.losses import LOSSES, build_loss, temporal_consistency_loss
from frugalseg.metrics import BoundaryIoU, MeanAccuracy, MeanIoU, TemporalConsistency
from frugalseg.zoo import get_model
from frugalseg.zoo.inference import sliding_window
from frugalseg.zoo.weights import load_weights_into, palette_for

#: Partially Huberised CE (τ = 3) for pseudo-labels: a wrong one costs at most a bounded amount (issue 5).
DEFAULT_LOSSES = {"fine": "ce", "pseudo": "phuber_ce", "coarse": "ce", "refined_coarse": "ce"}

#: One label kind's losses: a loss name (weight 1) or loss name → weight.
LossSpec = str | dict[str, float]


def parse_loss_spec(kind: str, spec: LossSpec) -> dict[str, float]:
    """``"ce"`` → ``{"ce": 1.0}``; ``{"partial_ce": 1.0, "gated_crf": 0.1}`` is kept (weights as floats)."""
    weights = {spec: 1.0} if isinstance(spec, str) else {str(k): float(v) for k, v in dict(spec).items()}
    if not weights:
        raise ValueError(f"model.losses.{kind}: give at least one loss (e.g. `{kind}: ce`)")
    return weights


def split_loss_args(kind: str, names: list[str], args: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Keyword arguments per loss of one kind.

    ``loss_args.{kind}`` is either loss name → kwargs (``clicks: {gated_crf: {radius: 5}}``) or,
    for a kind with a single loss, that loss's kwargs directly (``pseudo: {tau: 3}``).
    """
    args = dict(args or {})
    if args and all(key in names and isinstance(value, dict) for key, value in args.items()):
        return {name: dict(args.get(name, {})) for name in names}
    if args and len(names) > 1:
        raise ValueError(
            f"model.loss_args.{kind}: the kind has several losses ({', '.join(names)}); "
            f"key its arguments by loss name, e.g. {{{names[-1]}: {{…}}}}"
        )
    return {name: args for name in names}


def _build(name: str, ignore_index: int, kwargs: dict[str, Any]) -> nn.Module:
    """``build_loss`` with ``ignore_index`` passed to the losses that take one."""
    factory = LOSSES.get(name)
    if factory is not None and "ignore_index" not in kwargs:
        params = inspect.signature(factory).parameters.values()
        if any(p.name == "ignore_index" or p.kind is p.VAR_KEYWORD for p in params):
            kwargs = {**kwargs, "ignore_index": ignore_index}
    return build_loss(name, **kwargs)


def poly_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, power: float, floor: float = 0.0
) -> dict[str, Any]:
    """``optimizer`` with its rate decayed each step as ``(1 - floor)(1 - step/total)^power + floor``
    times the initial rate, in the form ``configure_optimizers`` returns."""
    total = max(1, total_steps)

    def poly(step: int) -> float:
        return (1 - floor) * (1 - min(step, total) / total) ** power + floor

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def select_batch(batch: Any, chosen: torch.Tensor) -> Any:
    """The samples of ``batch`` where the B-element bool mask ``chosen`` holds.

    Every tensor, list and tuple with B entries along its first dimension is indexed (frames,
    labels, flows, neighbours, ``meta`` lists); dicts are walked; anything else is kept as is.
    """
    size = chosen.shape[0]
    if isinstance(batch, dict):
        return {key: select_batch(value, chosen) for key, value in batch.items()}
    if isinstance(batch, torch.Tensor) and batch.dim() > 0 and batch.shape[0] == size:
        return batch[chosen.to(batch.device)]
    if isinstance(batch, (list, tuple)) and len(batch) == size:
        return type(batch)(item for item, keep in zip(batch, chosen.tolist(), strict=True) if keep)
    return batch


class VideoSegmentationModule(L.LightningModule):
    """Trains a student on batches whose labels come from several sources.

    Each sample's ``kind`` routes it to the loss configured for that label source; auxiliary
    heads of the student add their weighted loss. SGD with polynomial decay as in the papers.
    Validation and test report mIoU, mean accuracy, boundary IoU (d px) and temporal consistency.

    Args:
        student: zoo name (``frugalseg.zoo.list_models()``).
        student_args: extra arguments of the student factory (widths, backbone weights file, …).
        num_classes, ignore_index, num_frames, class_names: linked from the datamodule by the CLI.
        losses: label kind → loss name (``fine: ce``) or loss name → weight
            (``clicks: {partial_ce: 1.0, gated_crf: 0.1}``); kinds not listed cannot be trained on.
        loss_args: label kind → keyword arguments of its loss (``pseudo: {tau: 3}``), or loss name →
            keyword arguments for a kind with several losses (``clicks: {gated_crf: {radius: 5}}``).
        lr, momentum, weight_decay: SGD; the rate decays as ``(1 - step/total)^poly_power`` to ``min_lr``.
        boundary_width: band width d of the boundary IoU, in pixels.
        log_images: validation samples drawn as frame | label | prediction on the logger.
        init_weights: a trained student to start from, e.g. TDNet's second stage or a fine-tuning run:
            a ``frugalseg fit`` checkpoint, a safetensors / torch state dict, a published name or a
            URL (as ``zoo.get_model(weights=…)`` reads them).
        label_weight: weight of the routed label loss (0: train without labels).
        temporal_weight: λ of the temporal-consistency loss (paper 000) on training batches that
            carry a frame pair with its flows (``data.train_temporal_pair``, required when λ > 0:
            fitting stops with an error otherwise); 0 switches it off.
    """

    def __init__(
        self,
        student: str = "tmanet_r18",
        student_args: dict | None = None,
        num_classes: int = 19,
        ignore_index: int = IGNORE_INDEX,
        num_frames: int = 3,
        class_names: list[str] | None = None,
        losses: dict[str, LossSpec] | None = None,
        loss_args: dict[str, dict[str, Any]] | None = None,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        poly_power: float = 0.9,
        min_lr: float = 1e-4,
        boundary_width: int = 2,
        log_images: int = 4,
        init_weights: str | None = None,
        label_weight: float = 1.0,
        temporal_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.student = get_model(
            student, num_classes=num_classes, num_frames=num_frames, **(student_args or {})
        )
        if init_weights is not None:
            load_weights_into(self.student, init_weights, student)
        losses = losses or DEFAULT_LOSSES
        loss_args = loss_args or {}
        unknown = (set(losses) | set(loss_args)) - {kind.value for kind in LabelKind}
        if unknown:
            raise ValueError(
                f"unknown label kinds {sorted(unknown)}; kinds are {[k.value for k in LabelKind]}"
            )
        self.loss_weights = {kind: parse_loss_spec(kind, spec) for kind, spec in losses.items()}
        self.losses = nn.ModuleDict()
        for kind, weights in self.loss_weights.items():
            kwargs = split_loss_args(kind, list(weights), loss_args.get(kind))
            self.losses[kind] = nn.ModuleDict(
                {name: _build(name, ignore_index, kwargs[name]) for name in weights}
            )
        for stage in ("val", "test"):
            setattr(self, f"{stage}_miou", MeanIoU(num_classes, ignore_index))
            setattr(self, f"{stage}_macc", MeanAccuracy(num_classes, ignore_index))
            setattr(self, f"{stage}_biou", BoundaryIoU(num_classes, ignore_index, width=boundary_width))
            setattr(self, f"{stage}_tc", TemporalConsistency(num_classes, ignore_index))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.student(frames)

    def setup(self, stage: str) -> None:
        """Before fitting, check that the datamodule's options give the batches the losses read."""
        if stage == "fit":
            datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
            options = getattr(datamodule, "hparams", None)
            if options is not None:
                self.check_data_options(options)

    def check_data_options(self, options: Any) -> None:
        """Raise if a configured loss needs batch entries that the datamodule ``options`` leave out."""
        if self.hparams.temporal_weight and not options.get("train_temporal_pair", True):
            raise ValueError(self._missing_pair_message())

    def _missing_pair_message(self) -> str:
        return (
            f"model.temporal_weight is {self.hparams.temporal_weight} but the training batches carry no "
            "frame pair with flows: set data.train_temporal_pair: true (or model.temporal_weight: 0)"
        )

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        frames = batch["frames"]
        pair = "flow_to_prev" in batch
        if self.hparams.temporal_weight and not pair:
            raise ValueError(self._missing_pair_message())
        if pair:
            batch = {**batch, "frames": frames[:, 1:]}
        outputs = self.student.forward_train(batch["frames"])
        size = len(frames)
        total = outputs["out"].new_zeros(())
        if self.hparams.label_weight:
            total = total + self.hparams.label_weight * self.routed_loss(outputs, batch)
        if self.hparams.temporal_weight:
            previous = self.student(frames[:, :-1])
            consistency = temporal_consistency_loss(
                outputs["out"].softmax(1), previous.softmax(1), batch["flow_to_prev"], batch["flow_from_prev"]
            )
            self.log("train/loss_temporal", consistency, batch_size=size)
            total = total + self.hparams.temporal_weight * consistency
        self.log("train/loss", total, prog_bar=True, batch_size=size)
        return total

    def routed_loss(
        self, outputs: dict[str, torch.Tensor], batch: dict, prefix: str = "train"
    ) -> torch.Tensor:
        """Label loss of a batch: each sample's kind picks its losses, weighted as configured.

        Each loss sees only the samples of its kind: their logits, labels and the same rows of every
        other batch entry (frames, flows, neighbours), so a loss that reads ``batch`` stays aligned
        with its logits. A kind's loss is the mean over its samples; kinds are combined by their
        share of the batch. Auxiliary outputs get the kind's losses times ``student.aux_weights``.
        Logs ``{prefix}/loss_{kind}`` and ``{prefix}/loss_{kind}_{loss}``.
        """
        kinds = batch["kind"]
        total = outputs["out"].new_zeros(())
        for kind_index in kinds.unique().tolist():
            kind = LabelKind.from_index(kind_index).value
            if kind not in self.losses:
                raise ValueError(
                    f"batch has {kind!r} labels but the model has no loss for them (model.losses)"
                )
            chosen = kinds == kind_index
            count = int(chosen.sum())
            part = select_batch(batch, chosen)
            kind_loss = total.new_zeros(())
            for name, weight in self.loss_weights[kind].items():
                loss_fn = self.losses[kind][name]
                term = loss_fn(outputs["out"][chosen], part["label"], part)
                for aux, aux_weight in self.student.aux_weights.items():
                    term = term + aux_weight * loss_fn(outputs[aux][chosen], part["label"], part)
                self.log(f"{prefix}/loss_{kind}_{name}", term, batch_size=count)
                kind_loss = kind_loss + weight * term
            self.log(f"{prefix}/loss_{kind}", kind_loss, batch_size=count)
            total = total + kind_loss * chosen.float().mean()
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
        """Class map of the last frame of each clip (or of each streamed frame), at its size on disk.

        Frames larger than the training crop (``data.crop_size``) are segmented in overlapping
        windows of the crop's size whose logits are averaged (``zoo.inference.sliding_window``);
        after a ``data.load_scale`` the logits are resized back to the original frame size.
        """
        frames, meta = batch["frames"], batch["meta"]
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        crop = getattr(getattr(datamodule, "hparams", None), "crop_size", None)
        if "first" in meta:
            logits = self._stream(frames[:, -1], bool(meta["first"][0]))
        elif crop is not None and (frames.shape[-2] > crop[0] or frames.shape[-1] > crop[1]):
            logits = sliding_window(self.student, frames, crop)
        else:
            logits = self.student(frames)
        size = (int(meta["height"][0]), int(meta["width"][0])) if "height" in meta else None
        if size is not None and tuple(logits.shape[-2:]) != size:
            logits = nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return {"pred": logits.argmax(1), "meta": meta}

    def _stream(self, frame: torch.Tensor, first: bool) -> torch.Tensor:
        """Logits of one frame of a streamed video: the student's ``step()``, reset at a new video.

        Image students have no memory and segment the frame alone.
        """
        if not hasattr(self.student, "step"):
            return self.student(frame[:, None])
        if first:
            self.student.reset()
        return self.student.step(frame)

    def configure_optimizers(self):
        hp = self.hparams
        trained = [p for p in self.parameters() if p.requires_grad]  # frozen teachers stay out
        optimizer = torch.optim.SGD(trained, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        total = int(self.trainer.estimated_stepping_batches)
        return poly_schedule(optimizer, total, hp.poly_power, floor=hp.min_lr / hp.lr)

    def _log_overlays(self, batch: dict, pred: torch.Tensor) -> None:
        """Frame | label | prediction for the first validation samples, on TensorBoard."""
        count = min(self.hparams.log_images, len(pred))
        if count == 0 or not isinstance(self.logger, TensorBoardLogger) or self.trainer.sanity_checking:
            return
        frames, labels = batch["frames"][:count, -1], batch["label"][:count]
        grid = overlay_grid(frames, labels, pred[:count], module_palette(self))
        self.logger.experiment.add_image("val/frame_label_prediction", grid, self.global_step)


def module_palette(module: L.LightningModule) -> list[list[int]]:
    """RGB per class: the datamodule's palette when it has one, else :func:`palette_for` its class names."""
    trainer = module._trainer
    palette = getattr(trainer.datamodule, "palette", None) if trainer is not None else None
    if palette is not None:
        return [list(colour) for colour in palette]
    names = list(module.hparams.get("class_names") or [])
    return palette_for(names or [f"class_{i}" for i in range(module.hparams["num_classes"])])


def overlay_grid(
    frames: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor, palette: list[list[int]]
) -> torch.Tensor:
    """One row frame | label | prediction per sample (ImageNet-normalised frames B×3×H×W; ignore black)."""
    table = torch.zeros(256, 3, device=frames.device)
    table[: len(palette)] = torch.tensor(palette, dtype=torch.float32, device=frames.device) / 255
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=frames.device).view(3, 1, 1)
    tiles = []
    for frame, label, pred in zip(frames, labels, preds, strict=True):
        colours = [table[ids.clamp(0, 255)].permute(2, 0, 1) for ids in (label, pred)]
        tiles += [(frame * std + mean).clamp(0, 1), *colours]
    return make_grid(torch.stack(tiles), nrow=3, padding=2)
