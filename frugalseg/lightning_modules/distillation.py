"""DistillationModule: a compact student taught by a frozen teacher (WeClick, paper 004; TDNet's KD).

The student's loss is ``label_weight · routed label loss + kd_weight · KD + mfd_weight · MFD``:

* the routed label loss is :meth:`VideoSegmentationModule.routed_loss` (for WeClick, ``clicks``
  labels with partial CE + λ·Gated CRF, paper 004 eq. 2);
* KD (eq. 4) is the per-pixel KL between the teacher's and the student's class probabilities
  (:func:`frugalseg.losses.kd_loss`), on the target frame and on every neighbour frame of the
  batch, summed over frames as in eq. 5; more terms pair other outputs (TDNet: the sub-network
  path with the teacher's PSP group);
* MFD (eq. 3) warps the student's class probabilities on the batch's unlabelled neighbour frames to the
  target frame with the loader's DIS flows and pulls them toward the student's target prediction,
  each pixel weighted by ``W = exp(−|warped − teacher|)`` (:func:`frugalseg.losses.mfd_loss`;
  the paper prints ``exp(+|·|)``, which would weight disagreement up — taken as a misprint).

The teacher is built from the zoo, frozen and kept in eval mode; its weights are read from the
file the user names (a Lightning checkpoint of a :class:`VideoSegmentationModule` run, or a
safetensors / torch state dict of the model) when fitting starts (``setup("fit")``), as only
training uses it. Checkpoints of this module hold the student only, so validating, predicting or
publishing a trained student needs no teacher file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from lightning.pytorch.utilities import rank_zero_warn

from frugalseg.datamodules.options import NonNegativeFloat, PositiveFloat, PositiveInt
from frugalseg.errors import ConfigError
from frugalseg.flow import backward_warp
from frugalseg.lightning_modules.segmentation import VideoSegmentationModule
from frugalseg.losses import kd_loss, mfd_loss
from frugalseg.zoo import get_model, load_weights_into, paired_group

TEACHER_PREFIX = "teacher."


class _GroupedStudent(Protocol):
    """A student whose sub-networks each compute one group of the PSP feature (TDNet)."""

    last_path: int
    psp_groups: int

    def group_of(self, path: int) -> int: ...


@dataclass
class KDTerm:
    """One KD term: the student's output ``student`` pulled toward the teacher's output ``teacher``.

    ``teacher: group`` names the teacher's logits of the PSP group that the student's current
    sub-network computes (``group{g}`` with ``g = student.group_of(student.last_path)``, TDNet; with
    a grouped :class:`~frugalseg.zoo.pspnet.PSPNet` teacher, ``g`` is
    :func:`~frugalseg.zoo.pspnet.paired_group` of that path).

    Args:
        student: the student's output (a key of its ``forward_train``: ``out``, ``sub``, ``aux``).
        teacher: the teacher's output (a key of its ``forward_train``), or ``group`` for the PSP
            group of the student's current sub-network.
        weight: weight of this term in the KD loss.
    """

    student: str = "out"
    teacher: str = "out"
    weight: float = 1.0


class DistillationModule(VideoSegmentationModule):
    """A student trained on its labels, a frozen teacher's soft predictions and memory flow.

    Args:
        teacher: zoo name of the teacher (DeepLabV3+-R101 in paper 004).
        teacher_args: extra arguments of the teacher factory (widths, …).
        teacher_weights: the trained teacher: a ``.ckpt`` of a ``frugalseg fit`` run, a
            ``.safetensors`` / torch state dict, a published name or a URL (as ``get_model`` reads
            them), read when fitting starts. ``None`` keeps random weights (tests).
        teacher_frames: frames the teacher reads (default: its zoo default; 1 for image models).
        kd_weight: γ of paper 004 eq. 5, the weight of KD (1 there; α is ``label_weight``).
        mfd_weight: β of paper 004 eq. 5, the weight of memory-flow distillation (1 there); MFD
            needs neighbour frames in the training batches (``data.temporal.neighbours``, 2 in WeClick).
        kd_temperature: softmax temperature of KD (1 in paper 004 and TDNet).
        kd_terms: which outputs KD pairs (default: ``out`` with ``out``, weight 1).
        mfd_detach_warped: stop gradients through the warped neighbour predictions.
        **kwargs: the arguments of :class:`VideoSegmentationModule` (student, losses, label_weight, …).
    """

    def __init__(
        self,
        teacher: str = "deeplabv3plus_r101",
        teacher_args: dict[str, Any] | None = None,
        teacher_weights: str | None = None,
        teacher_frames: PositiveInt | None = None,
        kd_weight: NonNegativeFloat = 1.0,
        mfd_weight: NonNegativeFloat = 1.0,
        kd_temperature: PositiveFloat = 1.0,
        kd_terms: list[KDTerm] | None = None,
        mfd_detach_warped: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        """The student (`VideoSegmentationModule`) and the teacher, frozen in eval mode."""
        super().configure_models()
        hp = self.hparams
        self.teacher = get_model(
            hp["teacher"],
            num_classes=hp["num_classes"],
            num_frames=hp["teacher_frames"],
            **(hp["teacher_args"] or {}),
        )
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        if hp["mfd_weight"] and self.student.num_frames != 1:
            raise ConfigError(
                "model.mfd_weight",
                f"memory-flow distillation runs the student on single neighbour frames; student "
                f"{hp['student']!r} reads {self.student.num_frames} frames (set mfd_weight: 0)",
            )

    def configure_losses(self) -> None:
        """The routed label loss and the KD terms; the temporal-consistency loss is refused."""
        super().configure_losses()
        # The CLI saves the configured terms as dicts (the config's words), a direct call as KDTerms.
        terms = self.hparams["kd_terms"] or [KDTerm()]
        self.kd_terms = [term if isinstance(term, KDTerm) else KDTerm(**term) for term in terms]
        if self.hparams["temporal_weight"]:
            raise ConfigError(
                "model.temporal_weight",
                "DistillationModule does not train the temporal-consistency loss: set "
                "model.temporal_weight: 0 (or train with VideoSegmentationModule)",
            )

    def setup(self, stage: str) -> None:
        """When fitting, check the datamodule's options and read the teacher's weights into it."""
        super().setup(stage)
        if stage == "fit" and self.hparams["teacher_weights"] is not None:
            load_weights_into(self.teacher, self.hparams["teacher_weights"], self.hparams["teacher"])
            self.teacher.requires_grad_(False)

    def check_data_options(self, options: Any) -> None:
        """Also raise when MFD is on and the datamodule gives no neighbour frames; warn on CamVid's stills."""
        super().check_data_options(options)
        if self.hparams["mfd_weight"] and options.get("temporal", {}).get("neighbours", 1) == 0:
            raise ConfigError("data.temporal.neighbours", self._missing_neighbours_message())
        if self.hparams["mfd_weight"] and options.get("format") == "camvid":
            rank_zero_warn(
                "model.mfd_weight is on, but CamVid's frames are labelled stills 1 s apart with no frame "
                "between them: memory-flow distillation warps predictions across 30 video frames (the "
                "CamVid configs set model.mfd_weight 0 and data.temporal.neighbours 0)"
            )

    def _missing_neighbours_message(self) -> str:
        return (
            f"model.mfd_weight is {self.hparams['mfd_weight']} but the training batches carry no neighbour "
            "frames: set data.temporal.neighbours (2 in WeClick), or model.mfd_weight: 0"
        )

    def on_fit_start(self) -> None:
        """Lightning's warning of modules in eval mode counts the frozen teacher's, as meant: not told.

        Only that exact count is let pass; a student's module left in eval mode is still warned of.
        """
        super().on_fit_start()
        frozen = sum(1 for _ in self.teacher.modules())
        warnings.filterwarnings(
            "ignore", message=rf"Found {frozen} module\(s\) in eval mode at the start of training"
        )

    def train(self, mode: bool = True) -> DistillationModule:
        """Switch the student's mode; the teacher stays in eval mode (frozen BN and dropout)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _teacher_outputs(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """The frozen teacher's outputs on the last ``teacher.num_frames`` frames of ``frames``."""
        needed = self.teacher.num_frames
        if frames.shape[1] < needed:
            raise ValueError(
                f"the teacher reads {needed} frames per clip but the batch has {frames.shape[1]}"
            )
        with torch.no_grad():
            return self.teacher.forward_train(frames[:, -needed:])

    def _teacher_key(self, name: str, available: dict[str, torch.Tensor]) -> str:
        if name == "group" and hasattr(self.student, "group_of"):
            student = cast(_GroupedStudent, self.student)
            path, teacher_groups = student.last_path, getattr(self.teacher, "groups", None)
            if teacher_groups is None:
                name = f"group{student.group_of(path)}"
            else:  # a grouped PSPNet teacher: TDNet's pairing (TD4 with a 4-group teacher included)
                name = f"group{paired_group(path, student.psp_groups, teacher_groups)}"
        if name not in available:
            raise ValueError(
                f"KD term needs the teacher's {name!r} output; teacher {self.hparams['teacher']!r} "
                f"gives {sorted(available)}"
            )
        return name

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Label loss, KD of the teacher's outputs and MFD over the neighbour frames, weighted."""
        hp = self.hparams
        frames = batch["frames"]
        if hp["mfd_weight"] and batch.get("neighbours", frames[:, :0]).shape[1] == 0:
            raise ValueError(self._missing_neighbours_message())
        outputs = self.train_outputs(frames)
        valid = batch.get("valid")
        total = outputs["out"].new_zeros(())
        if hp["label_weight"]:
            label_loss = self.routed_loss(outputs, batch)
            self.log("train/loss_label", label_loss, on_epoch=True, sync_dist=True, batch_size=len(frames))
            total = total + hp["label_weight"] * label_loss
        need_teacher = hp["kd_weight"] or ("neighbours" in batch and hp["mfd_weight"])
        teacher = self._teacher_outputs(frames) if need_teacher else {}
        if hp["kd_weight"]:
            kd = total.new_zeros(())
            for term in self.kd_terms:
                key = self._teacher_key(term.teacher, teacher)
                kd = kd + term.weight * kd_loss(
                    outputs[term.student], teacher[key], hp["kd_temperature"], valid
                )
        if "neighbours" in batch and (hp["kd_weight"] or hp["mfd_weight"]):
            neighbours = batch["neighbours"]
            count = neighbours.shape[1]
            single = neighbours.flatten(0, 1).unsqueeze(1)
            student_nb = self.student(single)
            nb_valid = None if valid is None else valid.repeat_interleave(count, dim=0)
            if hp["kd_weight"]:
                teacher_nb = self._teacher_outputs(single)["out"]
                # Eq. 5 sums KD over frames: the neighbour mean times their number.
                kd = kd + count * kd_loss(student_nb, teacher_nb, hp["kd_temperature"], nb_valid)
            if hp["mfd_weight"]:
                mfd = self._mfd(outputs["out"], student_nb, teacher["out"], batch["neighbour_flows"], valid)
                self.log("train/loss_mfd", mfd, on_epoch=True, sync_dist=True, batch_size=len(frames))
                total = total + hp["mfd_weight"] * mfd
        if hp["kd_weight"]:
            self.log("train/loss_kd", kd, on_epoch=True, sync_dist=True, batch_size=len(frames))
            total = total + hp["kd_weight"] * kd
        self.log("train/loss", total, prog_bar=True, batch_size=len(frames))
        return total

    def _mfd(
        self,
        student_target: torch.Tensor,
        student_neighbours: torch.Tensor,
        teacher_target: torch.Tensor,
        flows: torch.Tensor,
        valid: torch.Tensor | None,
    ) -> torch.Tensor:
        """MFD of B target predictions and B·K neighbour predictions with flows B×K×2×H×W (target → f)."""
        batch, count = flows.shape[:2]
        if flows.shape[-2:] != student_target.shape[-2:]:
            raise ValueError(
                f"neighbour flows of shape {tuple(flows.shape)} do not fit predictions of shape "
                f"{tuple(student_target.shape)}"
            )
        flat = flows.flatten(0, 1).float()  # not the logits' half precision: it cannot hold wide pixel grids
        warped, inside = backward_warp(student_neighbours.softmax(1), flat)  # eq. 3 resamples probabilities
        if valid is not None:
            # Trust a pixel when it and the point it reads in the neighbour both lie in the crop.
            frame_valid = valid.repeat_interleave(count, dim=0)
            read_valid, _ = backward_warp(frame_valid.unsqueeze(1).to(flat.dtype), flat, mode="nearest")
            inside = inside & frame_valid & (read_valid.squeeze(1) > 0.5)
        shape = (batch, count, *student_target.shape[1:])
        return mfd_loss(
            student_target,
            warped.view(shape),
            teacher_target,
            inside.view(batch, count, *student_target.shape[-2:]),
            detach_warped=self.hparams["mfd_detach_warped"],
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the student only: the teacher is rebuilt from ``teacher_weights``."""
        super().on_save_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith(TEACHER_PREFIX)]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put the current (frozen) teacher back so that a strict load of the student works."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        for key, value in self.teacher.state_dict().items():
            state.setdefault(TEACHER_PREFIX + key, value)
