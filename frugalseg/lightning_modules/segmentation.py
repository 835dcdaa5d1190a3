"""VideoSegmentationModule: a zoo student trained with a loss chosen per label kind."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Literal, cast

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchvision.utils import make_grid

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from frugalseg.datamodules.options import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from frugalseg.errors import ConfigError, option_paths
from frugalseg.lightning_modules.base import BaseTask
from frugalseg.losses import RoutedLoss, temporal_consistency_loss
from frugalseg.metrics import BoundaryIoU, DatasetMeanAccuracy, DatasetMeanIoU, TemporalConsistency
from frugalseg.zoo import (
    StreamingStudent,
    Student,
    get_model,
    load_weights_into,
    model_config,
    palette_for,
    sliding_window,
)

#: Student factory arguments that only load starting weights (as the zoo's checkpoint reader drops them).
INIT_ONLY_STUDENT_ARGS = ("weights", "encoder_weights", "backbone_weights")


def blank_starting_weights(options: Any) -> None:
    """Set the starting weights in a model's options (a mapping) to None: a state dict replaces them.

    ``init_weights`` and the `INIT_ONLY_STUDENT_ARGS` of ``student_args`` that the options give.
    """
    if options is None:
        return
    if options.get("init_weights") is not None:
        options["init_weights"] = None
    args = options.get("student_args")
    if isinstance(args, dict):
        options["student_args"] = {k: None if k in INIT_ONLY_STUDENT_ARGS else v for k, v in args.items()}


def drop_starting_weights(checkpoint: dict[str, Any]) -> None:
    """Blank the starting weights in a checkpoint's hyper-parameters: its state dict replaces them.

    ``init_weights`` becomes None and `INIT_ONLY_STUDENT_ARGS` leave ``student_args``, so that a restore
    (``load_from_checkpoint``, ``--ckpt_path``) never reads a moved file nor downloads.
    """
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict):
        return
    if "init_weights" in hparams:
        hparams["init_weights"] = None
    args = hparams.get("student_args")
    if isinstance(args, dict):  # a copy: the module's own hyper-parameters keep them
        hparams["student_args"] = {k: v for k, v in args.items() if k not in INIT_ONLY_STUDENT_ARGS}


class VideoSegmentationModule(BaseTask):
    """Trains a student on batches whose labels come from several sources.

    Each sample's ``kind`` routes it to the loss configured for that label source; auxiliary
    heads of the student add their weighted loss. SGD with polynomial decay as in the papers.
    Validation and test report mIoU, mean accuracy, boundary IoU (d px) and, on batches that carry
    the previous frame with its flows, temporal consistency.

    Args:
        student: zoo name (``frugalseg.zoo.list_models()``).
        student_args: extra arguments of the student factory (widths, backbone weights file, …).
        num_classes: classes of the labels (linked from ``data.num_classes`` by the CLI).
        ignore_index: label value that gets no loss and no score (linked from the datamodule).
        num_frames: frames per clip the student reads (linked from ``data.num_frames``).
        class_names: class names in train-id order, for figures and the published card (linked from
            the datamodule).
        losses: label kind → loss name (``fine: ce``) or loss name → weight
            (``clicks: {partial_ce: 1.0, gated_crf: 0.1}``); kinds not listed cannot be trained on.
        loss_args: label kind → keyword arguments of its loss (``pseudo: {tau: 3}``), or loss name →
            keyword arguments for a kind with several losses (``clicks: {gated_crf: {radius: 5}}``).
        lr: initial learning rate of SGD.
        momentum: SGD momentum.
        weight_decay: SGD weight decay (L2 penalty).
        poly_power: the rate decays each step as ``(1 - step/total)^poly_power`` down to ``min_lr``.
        min_lr: the rate at the last step (the floor of the polynomial decay).
        boundary_width: band width d of the boundary IoU, in pixels.
        log_images: validation samples drawn as frame | label | prediction on the logger.
        init_weights: a trained student to start from, e.g. TDNet's second stage or a fine-tuning run:
            a ``frugalseg fit`` checkpoint, a safetensors / torch state dict, a published name or a
            URL (as ``zoo.get_model(weights=…)`` reads them).
        label_weight: weight of the routed label loss (0: train without labels).
        temporal_weight: λ of the temporal-consistency loss (paper 000) on training batches that
            carry a frame pair with its flows (``data.temporal.train_pair``, required when λ > 0:
            fitting stops with an error otherwise); 0 switches it off.
        channels_last: keep the models' 4-D weights in channels-last memory format (faster
            convolutions on recent GPUs, with ``trainer.precision: bf16-mixed`` especially).
        compile: ``torch.compile`` the student: ``true``, or the arguments of ``torch.compile``
            (``{mode: max-autotune}``); the first steps are slow while it compiles.
        inference: how validation, test and predict segment a frame, alike so that the scores describe
            the maps predict writes: ``whole`` (default) in one forward; ``slide`` in overlapping windows of
            the training crop (``data.augment.crop_size``) whose logits are averaged, where the frame is
            larger (the official TMANet protocol, `frugalseg.zoo.sliding_window`): slower by the windows.
    """

    monitor = "val/mIoU"
    mode = "max"
    val_metrics_logged = ("val/mIoU", "val/mAcc", "val/bIoU", "val/TC")

    student: Student

    def __init__(
        self,
        student: str = "tmanet_r18",
        student_args: dict | None = None,
        num_classes: int = 19,
        ignore_index: int = IGNORE_INDEX,
        num_frames: PositiveInt = 3,
        class_names: list[str] | None = None,
        losses: dict[str, str | dict[str, float]] | None = None,
        loss_args: dict[str, dict[str, Any]] | None = None,
        lr: PositiveFloat = 0.01,
        momentum: NonNegativeFloat = 0.9,
        weight_decay: NonNegativeFloat = 5e-4,
        poly_power: NonNegativeFloat = 0.9,
        min_lr: NonNegativeFloat = 1e-4,
        boundary_width: PositiveInt = 2,
        log_images: NonNegativeInt = 4,
        init_weights: str | None = None,
        label_weight: NonNegativeFloat = 1.0,
        temporal_weight: NonNegativeFloat = 0.0,
        channels_last: bool = False,
        compile: bool | dict[str, Any] = False,
        inference: Literal["whole", "slide"] = "whole",
    ) -> None:
        super().__init__()
        self._kind_totals: Tensor | None = None  # the epoch's sums of each kind's loss (`routed_loss`)
        if model_config(student).task == "vos":  # refused before the data is read, not at its first step
            raise ConfigError(
                "model.student",
                f"{student!r} is a video object segmentation model (object masks, not classes): train it "
                "with `frugalseg vos fit --config stm_davis`; it segments a video from an object's mask on "
                "one frame with `frugalseg annotate add … --engine stm` (`predict` takes frames alone)",
            )

    # ------------------------------------------------------------------------------ the hooks

    def configure_models(self) -> None:
        """The student from the zoo, with ``init_weights`` loaded into it."""
        hp = self.hparams
        with option_paths(num_frames="data.num_frames", student="model.student"):
            self.student = get_model(
                hp["student"],
                num_classes=hp["num_classes"],
                num_frames=hp["num_frames"],
                **(hp["student_args"] or {}),
            )
        if hp["init_weights"] is not None:
            load_weights_into(self.student, hp["init_weights"], hp["student"])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save no starting weights to read on restore (`drop_starting_weights`)."""
        super().on_save_checkpoint(checkpoint)
        drop_starting_weights(checkpoint)

    def configure_losses(self) -> None:
        """The routed label loss (`RoutedLoss`: each label kind its losses)."""
        hp = self.hparams
        with option_paths(losses="model.losses", loss_args="model.loss_args", tau="model.loss_args"):
            self.label_loss = RoutedLoss(hp["losses"], hp["loss_args"], hp["ignore_index"])

    def configure_metrics(self) -> None:
        """mIoU, mAcc and bIoU of each frame, TC of each frame pair; one collection of each per stage.

        The inputs need no checking by the metrics: predictions are arg-maxes, and every label was
        checked against the class count when it was read (``frugalseg.data.io.read_label``).
        mIoU and mAcc are read off one confusion matrix, counted once per batch (a compute group).
        TC sits in a collection of its own: its update reads two predictions and two flows.
        """
        hp = self.hparams
        classes, ignore = hp["num_classes"], hp["ignore_index"]
        frame = MetricCollection(
            {
                "mIoU": DatasetMeanIoU(classes, ignore, validate_args=False),
                "mAcc": DatasetMeanAccuracy(classes, ignore, validate_args=False),
                "bIoU": BoundaryIoU(classes, ignore, width=hp["boundary_width"], validate_args=False),
            },
            compute_groups=[["mIoU", "mAcc"], ["bIoU"]],
        )
        pair = MetricCollection({"TC": TemporalConsistency(classes, ignore, validate_args=False)})
        self.val_metrics = frame.clone(prefix="val/")
        self.test_metrics = frame.clone(prefix="test/")
        self.val_temporal = pair.clone(prefix="val/")
        self.test_temporal = pair.clone(prefix="test/")

    def build_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """SGD with ``lr``, ``momentum`` and ``weight_decay``."""
        hp = self.hparams
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])

    def check_data_options(self, options: Any) -> None:
        """Raise if a configured loss needs batch entries that the datamodule ``options`` leave out."""
        if self.hparams["temporal_weight"] and not options.get("temporal", {}).get("train_pair", True):
            raise ConfigError("data.temporal.train_pair", self._missing_pair_message())

    def on_fit_start(self) -> None:
        """Refuse, before the first step, a recipe whose samples hold label kinds no loss is given for.

        Else the first batch holding such a sample stops the run, which may come many steps in.
        """
        samples = getattr(getattr(self.trainer, "datamodule", None), "samples", None)
        if not samples or not self.hparams["label_weight"]:
            return
        missing = sorted({sample.kind.value for sample in samples} - set(self.label_loss.losses))
        if missing:
            raise ConfigError(
                "model.losses",
                f"the recipe's samples hold {', '.join(missing)} labels, which no loss is given for "
                f"(model.losses names {', '.join(self.label_loss.losses)}); add one, e.g. {missing[0]}: ce",
            )

    def _missing_pair_message(self) -> str:
        return (
            f"model.temporal_weight is {self.hparams['temporal_weight']} but the training batches carry no "
            "frame pair with flows: set data.temporal.train_pair: true (or model.temporal_weight: 0)"
        )

    # --------------------------------------------------------------------------------- training

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        """Routed label loss plus, with ``temporal_weight``, the temporal-consistency loss."""
        frames = batch["frames"]
        pair = "flow_to_prev" in batch
        if self.hparams["temporal_weight"] and not pair:
            raise ValueError(self._missing_pair_message())
        if pair:
            batch = {**batch, "frames": frames[:, 1:]}
        outputs = self.train_outputs(batch["frames"])
        size = len(frames)
        total = outputs["out"].new_zeros(())
        if self.hparams["label_weight"]:
            total = total + self.hparams["label_weight"] * self.routed_loss(outputs, batch)
        if self.hparams["temporal_weight"]:
            previous = self.student(frames[:, :-1])
            consistency = temporal_consistency_loss(
                outputs["out"].softmax(1),
                previous.softmax(1),
                batch["flow_to_prev"],
                batch["flow_from_prev"],
                valid=batch.get("valid"),
            )
            self.log("train/loss_temporal", consistency, on_epoch=True, sync_dist=True, batch_size=size)
            total = total + self.hparams["temporal_weight"] * consistency
        self.log("train/loss", total, prog_bar=True, batch_size=size)
        return total

    def train_outputs(self, frames: Tensor) -> dict[str, Tensor]:
        """The student's training outputs (`forward_train`) of a batch of clips.

        Raises:
            ConfigError: a batch of one clip reached a student that normalises pooled 1×1 features over
                the batch (DeepLabV3+'s BatchNorm after global pooling), which cannot train on it.
        """
        try:
            return self.student.forward_train(frames)
        except ValueError as err:
            if len(frames) > 1 or "Expected more than 1 value per channel" not in str(err):
                raise
            raise ConfigError(
                "data.loader.batch_size",
                f"a training batch of 1 clip reached {self.hparams['student']}, whose BatchNorm after "
                "global pooling needs at least 2 a batch: set data.loader.batch_size 2 or more and give the "
                "recipe at least 2 samples a process (data.recipe.budget), or use a student without it, "
                "e.g. hrnetv2_w18_small",
            ) from err

    def routed_loss(self, outputs: dict[str, Tensor], batch: dict) -> Tensor:
        """Label loss of a batch, each sample's kind picking its losses (`RoutedLoss`).

        Each kind's loss and each of its terms is summed over the epoch's samples of the kind, and logged
        at the epoch's end as ``train/loss_{kind}`` and ``train/loss_{kind}_{loss}`` (`on_train_epoch_end`).
        """
        total, terms = self.label_loss(
            outputs,
            batch["label"],
            batch["meta"]["kind"],
            image=batch["frames"][:, -1],
            valid=batch.get("valid"),
            aux_weights=self.student.aux_weights,
            step=None if self._trainer is None else self.global_step,  # bare calls: the losses count them
        )
        sums = self._kind_sums()
        for name, (value, count) in terms.items():
            index = self._kind_columns[name]
            sums[0, index] += value.detach().double() * count
            sums[1, index] += count
        return total

    def _kind_sums(self) -> Tensor:
        """The epoch's sums of each kind's loss (row 0) and samples (row 1), one column per `_kind_names`."""
        if self._kind_totals is None:
            self._kind_totals = torch.zeros(2, len(self._kind_names), dtype=torch.float64, device=self.device)
        return self._kind_totals

    @functools.cached_property
    def _kind_names(self) -> list[str]:
        """Every kind's loss and its terms, in the order of ``model.losses`` (the same on every process)."""
        weights = self.label_loss.weights
        return [name for kind in weights for name in (kind, *(f"{kind}_{loss}" for loss in weights[kind]))]

    @functools.cached_property
    def _kind_columns(self) -> dict[str, int]:
        """The column of each of `_kind_names` in the epoch's sums (read at every training step)."""
        return {name: column for column, name in enumerate(self._kind_names)}

    def on_train_epoch_start(self) -> None:
        """Start the epoch's sums of each kind's loss."""
        self._kind_totals = None

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """After the last batch of the epoch or of the run (``max_steps``), log each kind's loss.

        Then, not at the epoch's end: the epoch line and the progress bar read the metrics before the
        module's ``on_train_epoch_end`` runs (an epoch cut by ``max_steps`` had printed none of them).
        """
        trainer = self.trainer
        if trainer.is_last_batch or 0 <= trainer.max_steps <= trainer.global_step:
            self._log_kind_losses()

    def on_train_epoch_end(self) -> None:
        """Log each kind's loss of an epoch stopped before its last batch (``max_steps``)."""
        self._log_kind_losses()

    def _log_kind_losses(self) -> None:
        """Log each kind's loss: its mean over the epoch's samples of the kind, summed over the processes.

        A step value of a kind missing from a batch would repeat the last one (Lightning keeps it), and an
        epoch value logged on one process alone is that process's mean; every process logs the same keys.
        """
        if self._kind_totals is None:
            return
        sums = self.trainer.strategy.reduce(self._kind_totals, reduce_op="sum")
        for name, (total, count) in zip(self._kind_names, sums.T.tolist(), strict=True):
            if count > 0:  # the same value on every process
                self.log(
                    f"train/loss_{name}",
                    total / count,
                    on_step=False,
                    on_epoch=True,
                    sync_dist=True,
                    batch_size=1,
                )
        self._kind_totals = None

    # ------------------------------------------------------------------------------- evaluation

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Update the validation metrics; draw the first batch's overlays."""
        pred = self.evaluate(batch, self.val_metrics, self.val_temporal)
        if batch_idx == 0:
            self._log_overlays(batch, pred)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        """Update the test metrics."""
        self.evaluate(batch, self.test_metrics, self.test_temporal)

    def evaluate(self, batch: dict, metrics: MetricCollection, temporal: MetricCollection) -> Tensor:
        """Update and log the metrics of a batch; returns its class maps B×H×W.

        ``metrics`` take the class maps, ``temporal`` (TC) too when the batch carries the previous
        frame and its flows.
        """
        frames, label = batch["frames"], batch["label"]
        size = len(label)
        if "flow_to_prev" in batch:
            logits, previous = self.pair_logits(frames)
            pred = logits.argmax(1)
            temporal.update(
                previous.argmax(1),
                pred,
                batch["flow_to_prev"],
                batch["flow_from_prev"],
                batch.get("flow_reliable"),
            )
            self.log_dict(temporal, batch_size=size)
        else:
            pred = self.segment(frames).argmax(1)
        metrics.update(pred, label)
        self.log_dict(metrics, prog_bar=True, batch_size=size)
        return pred

    def pair_logits(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """Logits of the last frame of ``frames[:, 1:]`` and of ``frames[:, :-1]`` (B×(T+1)×3×H×W).

        With ``inference: slide`` on frames larger than the crop, each of the two is segmented in windows
        (`segment`); else each frame is encoded once where that is exact:

        * an image student (T = 1) segments both frames in one batch;
        * a video student whose stream reproduces its clip forward (the zoo's
          ``ModelConfig.stream_matches_clip``: TMANet) streams the T + 1 frames, whose last two
          outputs are the two predictions; any other (TDNet turns its sub-networks with the stream)
          keeps the two clip forwards.
        """
        if self._window(frames) is not None:
            return self.segment(frames[:, 1:]), self.segment(frames[:, :-1])
        if frames.shape[1] == 2 and self.student.num_frames == 1:
            current, previous = self.student(torch.cat((frames[:, 1:], frames[:, :1]))).chunk(2)
            return current, previous
        if model_config(self.hparams["student"]).stream_matches_clip:
            return self._streamed_pair(frames)
        return self.student(frames[:, 1:]), self.student(frames[:, :-1])

    def segment(self, frames: Tensor) -> Tensor:
        """Logits B×C×H×W of the clips ``frames``: one forward, or sliding windows (``inference: slide``)."""
        window = self._window(frames)
        return self.student(frames) if window is None else sliding_window(self.student, frames, window)

    def _window(self, frames: Tensor) -> tuple[int, int] | None:
        """The training crop when ``inference`` is ``slide`` and the frames are larger, else None."""
        if self.hparams.get("inference", "whole") != "slide":
            return None
        datamodule = getattr(self._trainer, "datamodule", None)
        crop = getattr(datamodule, "hparams", {}).get("augment", {}).get("crop_size")
        if crop is None or (frames.shape[-2] <= crop[0] and frames.shape[-1] <= crop[1]):
            return None
        return int(crop[0]), int(crop[1])

    def _streamed_pair(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """The student's stream over every frame of ``frames``: the last output, and the one before."""
        student = cast(StreamingStudent, self.student)  # its config says it streams (stream_matches_clip)
        student.reset()
        outputs = [student.step(frames[:, t]) for t in range(frames.shape[1])]
        student.reset()
        return outputs[-1], outputs[-2]

    def _log_overlays(self, batch: dict, pred: Tensor) -> None:
        """Frame | label | prediction for the first validation samples, on the loggers that show images."""
        count = min(self.hparams["log_images"], len(pred))
        if count == 0 or not self.loggers or self.trainer.sanity_checking:
            return
        frames, labels = batch["frames"][:count, -1], batch["label"][:count]
        grid = overlay_grid(frames.float(), labels, pred[:count], module_palette(self))
        self.log_image("val/frame_label_prediction", grid)

    # ------------------------------------------------------------------------------- prediction

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Class map of the last frame of each clip (or of each streamed frame), at its size on disk.

        A clip is segmented as validation segments it (`segment`, ``inference``); after a
        ``data.loader.load_scale`` the logits are resized back to the original frame size.
        """
        frames, meta = batch["frames"], batch["meta"]
        if "first" in meta:
            logits = self._stream(frames[:, -1], bool(meta["first"][0]))
        else:
            logits = self.segment(frames)
        size = (int(meta["height"][0]), int(meta["width"][0])) if "height" in meta else None
        if size is not None and tuple(logits.shape[-2:]) != size:
            logits = nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return {"pred": logits.argmax(1), "meta": meta}

    def _stream(self, frame: Tensor, first: bool) -> Tensor:
        """Logits of one frame of a streamed video: the student's ``step()``, reset at a new video.

        Image students have no memory and segment the frame alone.
        """
        student = self.student
        if not isinstance(student, StreamingStudent):
            return student(frame[:, None])
        if first:
            student.reset()
        return student.step(frame)


def module_palette(module: L.LightningModule) -> list[list[int]]:
    """RGB per class: the datamodule's palette when it has one, else :func:`palette_for` its class names."""
    palette = getattr(getattr(module._trainer, "datamodule", None), "palette", None)
    if palette is not None:
        return [list(colour) for colour in palette]
    names = list(module.hparams.get("class_names") or [])
    return palette_for(names or [f"class_{i}" for i in range(module.hparams["num_classes"])])


def overlay_grid(frames: Tensor, labels: Tensor, preds: Tensor, palette: list[list[int]]) -> Tensor:
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
