"""VOSModule: STM trained on object-mask clips and evaluated by J&F over whole sequences."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MetricCollection

from frugalseg.data.clips import IGNORE_INDEX
from frugalseg.data.files import write_bytes_atomic
from frugalseg.datamodules.options import NonNegativeFloat, PositiveFloat, PositiveInt
from frugalseg.errors import ConfigError
from frugalseg.lightning_modules.base import BaseTask
from frugalseg.losses import get_loss
from frugalseg.metrics import JF
from frugalseg.zoo import STM, get_model, list_models, masks_from_ids


class VOSModule(BaseTask):
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
        loss: loss name (``ce``, ``phuber_ce``, …, ``frugalseg.losses.LOSSES``).
        loss_args: keyword arguments of the loss (``{tau: 3}``).
        lr: initial learning rate of Adam (1e-5 in the STM reproduction).
        weight_decay: Adam weight decay.
        poly_power: the rate decays each step as ``(1 - step/total)^poly_power`` (0.9).
        freeze_bn: keep BatchNorm statistics fixed while training, as the STM reproduction does
            (useful from pretrained weights; leave off when training from scratch).
        channels_last: keep the model's 4-D weights in channels-last memory format.
        compile: ``torch.compile`` the student: ``true``, or the arguments of ``torch.compile``.
    """

    monitor = "val/JF"
    mode = "max"
    val_metrics_logged = ("val/J", "val/F", "val/JF")

    def __init__(
        self,
        student: str = "stm_r18",
        student_args: dict | None = None,
        max_objects: PositiveInt = 10,
        loss: str = "ce",
        loss_args: dict | None = None,
        lr: PositiveFloat = 1e-5,
        weight_decay: NonNegativeFloat = 0.0,
        poly_power: NonNegativeFloat = 0.9,
        freeze_bn: bool = False,
        channels_last: bool = False,
        compile: bool | dict[str, Any] = False,
    ) -> None:
        super().__init__()
        #: J, F and J&F of each sequence of the current validation or test run, by sequence name.
        self.sequence_scores: dict[str, dict[str, float]] = {}

    def configure_models(self) -> None:
        """The STM student with ``max_objects + 1`` output channels (background and objects)."""
        hp = self.hparams
        students = list_models(task="vos")
        if hp["student"] not in students:  # the zoo's error had listed every model, semantic ones too
            raise ConfigError(
                "model.student",
                f"VOSModule trains STM students ({', '.join(students)}), got {hp['student']!r}",
            )
        model = get_model(hp["student"], num_classes=hp["max_objects"] + 1, **(hp["student_args"] or {}))
        self.student: STM = cast(STM, model)

    def configure_losses(self) -> None:
        """The loss of every frame after the first (``ignore_index`` = void)."""
        self.loss = get_loss(
            self.hparams["loss"], ignore_index=IGNORE_INDEX, **(self.hparams["loss_args"] or {})
        )

    def configure_metrics(self) -> None:
        """J, F and J&F (one `JF` metric, whose ``compute`` gives all three) per stage."""
        metrics = MetricCollection({"JF": JF()})
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def build_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """Adam with ``lr`` and ``weight_decay``."""
        return torch.optim.Adam(params, lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        """Loss of every frame after the first, the student reading its clip from the first frame's masks."""
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

    def evaluate(self, batch: dict, metrics: MetricCollection) -> None:
        """Segment the batch's sequence, add it to ``metrics`` and keep its scores."""
        labels, num_objects = batch["labels"][0], int(batch["num_objects"][0])
        preds = self.segment_sequence(batch["frames"], labels[0], num_objects)
        metric = cast(JF, metrics["JF"])
        metric.update(preds, labels, num_objects)
        assert metric.last_sequence is not None  # the update above set it
        j, f = (float(score.mean()) for score in metric.last_sequence)
        self.sequence_scores[batch["meta"]["sequence"][0]] = {"J": j, "F": f, "JF": (j + f) / 2}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Segment a validation sequence and score it."""
        self.evaluate(batch, self.val_metrics)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        """Segment a test sequence and score it."""
        self.evaluate(batch, self.test_metrics)

    def log_epoch(self, metrics: MetricCollection) -> None:
        """Log J, F and J&F over every sequence (already summed over processes) and start afresh.

        Every process holds the same values: their maximum is each (and Lightning then does not advise
        ``sync_dist`` once per metric, as it does for an epoch value logged unsynced).
        """
        self.log_dict(metrics.compute(), sync_dist=True, reduce_fx="max")
        metrics.reset()

    def on_validation_epoch_start(self) -> None:
        """Start the validation's per-sequence scores."""
        self.sequence_scores = {}

    def on_test_epoch_start(self) -> None:
        """Start the test's per-sequence scores."""
        self.sequence_scores = {}

    def on_validation_epoch_end(self) -> None:
        """Log the validation J&F; write each sequence's (`write_sequence_scores`)."""
        self.log_epoch(self.val_metrics)
        self.write_sequence_scores("val")

    def on_test_epoch_end(self) -> None:
        """Log the test J&F; write each sequence's (`write_sequence_scores`)."""
        self.log_epoch(self.test_metrics)
        self.write_sequence_scores("test")

    def write_sequence_scores(self, stage: str) -> None:
        """Write every process's sequences' J, F and J&F to ``{stage}_sequences.csv`` beside the logs.

        As the DAVIS toolkit's per-sequence table: one row per sequence, by name; rewritten by each
        validation (the latest); not during Lightning's sanity check, nor without a logger or under
        ``fast_dev_run``, which write no logs.
        """
        trainer = self._trainer
        # `fast_dev_run` is set on the Trainer by its debugging flags, not declared by its class
        if trainer is None or not trainer.loggers or trainer.sanity_checking:
            return
        if getattr(trainer, "fast_dev_run", False):
            return
        log_dir = trainer.log_dir  # every rank asks: rank 0 broadcasts it
        if log_dir is None:
            return
        scores = dict(self.sequence_scores)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            parts: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(parts, scores)
            for part in parts:
                scores.update(part)
        if not trainer.is_global_zero or not scores:
            return
        rows = ["sequence,J,F,JF"] + [
            f"{name},{s['J']:.4f},{s['F']:.4f},{s['JF']:.4f}" for name, s in sorted(scores.items())
        ]
        path = Path(log_dir) / f"{stage}_sequences.csv"
        write_bytes_atomic(path, ("\n".join(rows) + "\n").encode("utf-8"))
        if stage == "test" or trainer.state.fn == "validate":
            rank_zero_info(f"J, F and J&F of each of the {len(scores)} sequences: {path}")

    def train(self, mode: bool = True) -> VOSModule:
        """Switch train/eval mode; with ``freeze_bn`` the BatchNorm layers always stay in eval mode."""
        super().train(mode)
        if mode:
            self._freeze_batch_norm()
        return self

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """With ``freeze_bn``, put the BatchNorm layers back in eval mode before every training step.

        Lightning never calls `train` during fit: it starts in the module's own mode and, after each
        validation, sets every submodule's ``training`` flag back to the one it captured.
        """
        self._freeze_batch_norm()

    def _freeze_batch_norm(self) -> None:
        """Put the student's BatchNorm layers in eval mode when ``freeze_bn`` is set."""
        if self.hparams["freeze_bn"]:
            for module in self.student.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
