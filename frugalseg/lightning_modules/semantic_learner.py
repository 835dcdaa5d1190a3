"""The student of the semantic annotation loop (paper 000), fine-tuned on one video iteration after iteration.

`FineTuningLearner` is what `frugalseg.active.semantic.loop.SemanticLoop` trains on each iteration
(the loop takes any object of the same shape, so the ``active`` room never imports Lightning): it
holds a `VideoFineTuningModule`, fine-tunes it on the video's labels so far with `fine_tune` —
continuing from the previous iteration's weights, with a fresh optimiser at the initial rate, as
the paper does — and returns the softmax of every frame and the backbone features the next
iteration's diversity selection reads (eq. 7 of paper 000).

The features are the input of the student's classifier: for HRNetV2 the input of ``last_layer``,
the concatenation of the four branches (720 channels for HRNet-W48, the paper's); for any other
student the input of its last convolution. They are average-pooled to at most ``feature_size``
cells per frame, which is all a sample's mean needs, so a long video's features stay small.

Each iteration is seeded from ``seed`` and the iteration number, and the weights are saved and
loaded exactly (safetensors), so a loop resumed from its saved state trains what an uninterrupted
one would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor, nn

from frugalseg.data.io import write_bytes_atomic
from frugalseg.datamodules.one_video import OneVideoDataModule
from frugalseg.errors import WeightsError
from frugalseg.lightning_modules.base import quiet_trainers
from frugalseg.lightning_modules.test_time import VideoFineTuningModule, fine_tune


@dataclass(frozen=True)
class StudentOutputs:
    """What the student says about every frame of a video.

    Attributes:
        probabilities: the C×H×W softmax of each frame (float32).
        features: the D×h×w classifier-input features of each frame (float32, h×w ≤ ``feature_size``).
    """

    probabilities: list[np.ndarray]
    features: list[np.ndarray]


def feature_layer(student: nn.Module) -> nn.Module:
    """The module whose input is the student's features: HRNetV2's ``last_layer``, else its last conv."""
    layer = getattr(student, "last_layer", None)
    if isinstance(layer, nn.Module):
        return layer
    convolutions = [m for m in student.modules() if isinstance(m, nn.Conv2d)]
    if not convolutions:
        raise ValueError(f"{type(student).__name__} has no convolution whose input could serve as features")
    return convolutions[-1]


@dataclass
class FineTuningLearner:
    """A zoo student fine-tuned on one video's sparse labels, iteration after iteration.

    Attributes:
        student: zoo name of the student (the paper's is ``hrnetv2_w48``).
        num_classes: classes of the labels.
        student_args: extra arguments of the student factory.
        init_weights: the weights to start every video from (a published name, a file or a URL, as
            ``zoo.get_model(weights=…)``); None starts from the factory's initialisation.
        epochs: fine-tuning epochs per iteration (the paper: 15).
        lr: initial SGD rate of each iteration (the paper: 0.004).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        poly_power: exponent of the poly schedule within an iteration.
        temporal_weight: λ of the temporal-consistency loss (the paper: 1).
        batch_size: frames per batch (the paper: 2 on VEIS).
        seed: seeds each iteration's initialisation and shuffling (with the iteration number).
        feature_size: at most this many (rows, columns) of feature cells per frame.
        trainer_args: more ``lightning.Trainer`` arguments (``accelerator``, ``precision`` …).
    """

    student: str = "hrnetv2_w48"
    num_classes: int = 19
    student_args: dict[str, Any] | None = None
    init_weights: str | None = None
    epochs: int = 15
    lr: float = 0.004
    momentum: float = 0.9
    weight_decay: float = 0.0
    poly_power: float = 0.9
    temporal_weight: float = 1.0
    batch_size: int = 2
    seed: int = 0
    feature_size: tuple[int, int] = (16, 32)
    trainer_args: dict[str, Any] = field(default_factory=dict)
    module: VideoFineTuningModule | None = field(default=None, init=False, repr=False)

    @property
    def settings(self) -> dict[str, Any]:
        """What decides the learner's results, recorded in the loop's state (a resumed loop must match)."""
        return {
            "student": self.student,
            "num_classes": self.num_classes,
            "student_args": self.student_args,
            "init_weights": self.init_weights,
            "epochs": self.epochs,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "poly_power": self.poly_power,
            "temporal_weight": self.temporal_weight,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "feature_size": list(self.feature_size),
        }

    def reset(self) -> None:
        """Start from ``init_weights`` again (a new video)."""
        torch.manual_seed(self.seed)
        self.module = VideoFineTuningModule(
            student=self.student,
            student_args=self.student_args,
            num_classes=self.num_classes,
            init_weights=self.init_weights,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            poly_power=self.poly_power,
            temporal_weight=self.temporal_weight,
        )

    def _module(self) -> VideoFineTuningModule:
        if self.module is None:
            self.reset()
        assert self.module is not None  # reset made it
        return self.module

    def fit(
        self,
        frames: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        iteration: int,
        flow_cache: str | Path | None = None,
    ) -> StudentOutputs:
        """Fine-tune on ``labels`` (H×W, 255 unlabelled) for ``epochs`` epochs, then read every frame.

        Args:
            frames: the video, H×W×3 uint8 RGB.
            labels: every frame's label so far.
            iteration: the loop's iteration (seeds this one's shuffling).
            flow_cache: folder of the video's cached flows (every iteration reads the same ones).
        """
        module = self._module()
        L.seed_everything(self.seed * 1000 + iteration, verbose=False)
        data = self._data(frames, labels, flow_cache)
        with self._features(module) as captured, quiet_trainers():
            result = fine_tune(module, data, epochs=self.epochs, **self._trainer_args())
        return StudentOutputs(result.probabilities, captured)

    def predict(self, frames: Sequence[np.ndarray]) -> StudentOutputs:
        """The softmax and features of every frame with the current weights (no training)."""
        module = self._module()
        data = self._data(frames, None, None)
        with self._features(module) as captured, quiet_trainers():
            trainer = L.Trainer(**{"logger": False, "enable_checkpointing": False, **self._trainer_args()})
            outputs = trainer.predict(module, datamodule=data) or []
        probabilities: list[np.ndarray] = [np.empty(0, np.float32)] * len(frames)
        for output in outputs:
            assert isinstance(output, dict)  # predict_step's
            for index, probs in zip(output["index"].tolist(), output["probabilities"], strict=True):
                probabilities[index] = probs.float().cpu().numpy()
        return StudentOutputs(probabilities, captured)

    def save(self, path: str | Path) -> None:
        """Write the student's weights atomically (safetensors)."""
        state = {k: v.detach().cpu().contiguous() for k, v in self._module().student.state_dict().items()}
        write_bytes_atomic(path, save_safetensors(state))

    def load(self, path: str | Path) -> None:
        """Load weights written by `save` (the state a loop resumes from).

        Raises:
            WeightsError: the file is missing, damaged or of another student.
        """
        try:
            state = load_safetensors(Path(path).read_bytes())
            self._module().student.load_state_dict(state, strict=True)
        except FileNotFoundError as err:
            raise WeightsError(path, "the loop's saved student weights are missing") from err
        except (RuntimeError, ValueError) as err:
            raise WeightsError(path, f"not the weights of a {self.student} student ({err})") from err

    def _data(
        self, frames: Sequence[np.ndarray], labels: Sequence[np.ndarray] | None, flow_cache: str | Path | None
    ) -> OneVideoDataModule:
        return OneVideoDataModule(
            frames,
            labels,
            num_frames=self._module().student.num_frames,
            batch_size=self.batch_size,
            flow_cache=flow_cache,
        )

    def _trainer_args(self) -> dict[str, Any]:
        return {"enable_progress_bar": False, "enable_model_summary": False, **self.trainer_args}

    @contextlib.contextmanager
    def _features(self, module: VideoFineTuningModule) -> Iterator[list[np.ndarray]]:
        """Collect the pooled features of each frame the student reads in eval mode (prediction), in order."""
        captured: list[np.ndarray] = []
        size = self.feature_size

        def hook(_: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            if module.student.training:
                return
            features = inputs[0].detach().float()
            cells = (min(size[0], features.shape[-2]), min(size[1], features.shape[-1]))
            pooled = torch.nn.functional.adaptive_avg_pool2d(features, cells)
            captured.extend(pooled.cpu().numpy())

        handle = feature_layer(module.student).register_forward_pre_hook(hook)
        try:
            yield captured
        finally:
            handle.remove()
