"""BaseTask: the template every frugalseg LightningModule follows.

``__init__`` saves the constructor arguments as hyper-parameters and calls three hooks in order:
:meth:`~BaseTask.configure_models` (the ``student``, and a teacher where there is one),
:meth:`~BaseTask.configure_losses` and :meth:`~BaseTask.configure_metrics`. A subclass declares its
arguments in its own ``__init__``, calls ``super().__init__()`` and overrides hooks only. The class
attributes ``monitor`` and ``mode`` name the validation metric that picks the best checkpoint; the
command line reads them (``frugalseg.cli.lightning``).

Shared here: the speed options every task takes (``channels_last`` and ``compile``, applied to the
models once they are built), SGD/Adam with the polynomial decay of the papers
(:meth:`~BaseTask.build_optimizer` picks the optimiser), the datamodule check before fitting
(:meth:`~BaseTask.check_data_options`) and images drawn on whatever logger can show them
(:meth:`~BaseTask.log_image`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor, nn

from frugalseg.errors import ConfigError
from frugalseg.options import keep_plain_hyperparameters


def poly_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, power: float, floor: float = 0.0
) -> OptimizerLRSchedulerConfig:
    """``optimizer`` with its rate decayed by a polynomial each step, as ``configure_optimizers`` returns.

    The rate is ``(1 - floor)(1 - step/total)^power + floor`` times the initial rate.
    """
    total = max(1, total_steps)

    def poly(step: int) -> float:
        return (1 - floor) * (1 - min(step, total) / total) ** power + floor

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def compile_options(value: bool | dict[str, Any] | None) -> dict[str, Any] | None:
    """Keyword arguments of ``torch.compile`` for a task's ``compile`` option, None when it is off."""
    if not value:
        return None
    return {} if value is True else dict(value)


@contextlib.contextmanager
def quiet_trainers() -> Iterator[None]:
    """Hold Lightning's info lines back (accelerators found, tips, why fitting stopped).

    For trainers a command starts on its own (the annotation loop's, a small network's): their
    progress and results are what a user reads.
    """
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "You defined a `validation_step` but have no `val_dataloader`")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


#: The checkpoint key of the random generators' states (`BaseTask.on_save_checkpoint`).
RANDOM_STATES = "frugalseg_random_states"
#: The checkpoint key of the steps the run's learning-rate decay was planned over (`BaseTask.on_train_start`).
PLANNED_STEPS = "frugalseg_planned_steps"


def random_states() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU, CUDA) generators, as plain values and tensors.

    NumPy's state is stored as lists, so that the checkpoint still loads with ``weights_only=True``.
    """
    name, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": [name, np.asarray(keys).tolist(), int(position), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_random_states(states: dict[str, Any]) -> None:
    """Set the generators to ``states`` (`random_states`); CUDA's only where the devices match."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"].cpu())
    cuda = states.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([state.cpu() for state in cuda])


class BaseTask(L.LightningModule, ABC):
    """A LightningModule built by hooks: models, then losses, then metrics.

    Subclasses set ``self.student`` in :meth:`configure_models` (its state dict keys keep the
    ``student.`` prefix that ``frugalseg.zoo`` and publishing read) and may read two optional
    hyper-parameters: ``channels_last`` (the models' 4-D weights in channels-last memory format)
    and ``compile`` (``torch.compile`` the student: ``true``, or a dict of ``torch.compile``
    arguments such as ``{mode: max-autotune}``).
    """

    #: The validation metric whose best value picks the checkpoint to keep.
    monitor: ClassVar[str] = "val/loss"
    #: Whether ``monitor`` is better when larger (``max``) or smaller (``min``).
    mode: ClassVar[str] = "min"
    #: The validation metrics the task logs, which ``--checkpoint.monitor`` may name (empty: not checked).
    val_metrics_logged: ClassVar[tuple[str, ...]] = ()

    student: nn.Module

    def __init__(self) -> None:
        super().__init__()
        self._resumed_states: dict[str, Any] | None = None  # `on_load_checkpoint`
        self._planned_before: int | None = None  # the resumed checkpoint's `PLANNED_STEPS`
        self.save_hyperparameters()
        keep_plain_hyperparameters(self)
        self.configure_models()
        self.prepare_models()
        self.configure_losses()
        self.configure_metrics()

    @abstractmethod
    def configure_models(self) -> None:
        """Build ``self.student`` (and any other model) from the hyper-parameters."""

    def configure_losses(self) -> None:
        """Build the loss modules (none by default)."""

    def configure_metrics(self) -> None:
        """Build the metrics, e.g. one ``MetricCollection`` cloned per stage (none by default)."""

    def prepare_models(self) -> None:
        """Apply the speed options to the built models: channels-last weights, a compiled student."""
        if self.hparams.get("channels_last"):
            self.to(memory_format=torch.channels_last)
        options = compile_options(self.hparams.get("compile"))
        if options is not None:
            # In place, so the state dict keeps its `student.` keys (no `_orig_mod.`); forward_train
            # is called directly by the training steps, so it is compiled on its own.
            self.student.compile(**options)
            forward_train = getattr(self.student, "forward_train", None)
            if forward_train is not None:
                # setattr: nn.Module's __setattr__ is typed for tensors and modules only.
                setattr(self.student, "forward_train", torch.compile(forward_train, **options))  # noqa: B010

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The student's forward."""
        return self.student(*args, **kwargs)

    def setup(self, stage: str) -> None:
        """Before fitting, check the datamodule's options (:meth:`check_data_options`)."""
        if stage == "fit" and self._trainer is not None:
            options = getattr(getattr(self._trainer, "datamodule", None), "hparams", None)
            if options is not None:
                self.check_data_options(options)

    def check_data_options(self, options: Any) -> None:
        """Raise if the datamodule ``options`` cannot give what training needs (nothing checked here)."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimiser updates (frozen models, such as a teacher, stay out)."""
        return [p for p in self.parameters() if p.requires_grad]

    @abstractmethod
    def build_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimiser of ``params`` at the initial rate ``hparams.lr``."""

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        """:meth:`build_optimizer`, its rate decayed per step by ``poly_power`` down to ``min_lr``.

        Raises `ConfigError` when ``min_lr`` is above ``lr`` (the rate would rise), or when the run has
        no end (``max_epochs`` and ``max_steps`` -1): the decay is spread over the run's steps.
        """
        hp = self.hparams
        lr, min_lr = hp["lr"], hp.get("min_lr", 0.0)
        if min_lr > lr:
            raise ConfigError(
                "model.min_lr",
                f"{min_lr:g} is above model.lr {lr:g}: the rate would rise from lr to min_lr over the run; "
                "set model.min_lr at most model.lr (e.g. 0) or a larger model.lr",
            )
        total = self.trainer.estimated_stepping_batches
        if math.isinf(total):
            raise ConfigError(
                "trainer.max_steps",
                "the run has no end (trainer.max_epochs -1 and trainer.max_steps -1), and the rate "
                "decays from model.lr to model.min_lr over the run's steps: set trainer.max_steps or "
                "trainer.max_epochs",
            )
        optimizer = self.build_optimizer(self.trainable_parameters())
        floor = min_lr / lr if lr else 0.0
        return poly_schedule(optimizer, int(total), hp.get("poly_power", 0.9), floor=floor)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the random generators' states (a resume draws what the run would have drawn) and the plan.

        The plan: the steps the learning-rate decay is spread over (`on_train_start` compares them).
        """
        checkpoint[RANDOM_STATES] = random_states()
        if self._trainer is not None and self._trainer.state.fn == "fit":
            checkpoint[PLANNED_STEPS] = int(self._trainer.estimated_stepping_batches)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put the random generators back where the checkpoint's run left them (`on_save_checkpoint`).

        Without it a resume reseeded them (``seed_everything``): the augmentation, the shuffle and the
        dropout of the epochs after it differed from those of the run that was not stopped. A sanity
        check's validation draws its loader's seed: they are put back again at its end.
        """
        states = checkpoint.get(RANDOM_STATES)
        if states is not None and self._trainer is not None and self._trainer.state.fn == "fit":
            set_random_states(states)
            self._resumed_states = states
            self._planned_before = checkpoint.get(PLANNED_STEPS)

    def on_validation_end(self) -> None:
        """After a resume's sanity check, put the random generators back once more (`on_load_checkpoint`)."""
        if self._resumed_states is not None and self.trainer.sanity_checking:
            set_random_states(self._resumed_states)

    def on_train_start(self) -> None:
        """Training has begun: a later validation leaves the random generators as they are.

        A resume whose run plans another number of steps than the checkpoint's (a larger max_steps, fewer
        batches an epoch) is warned of: the rate decay is spread over the new total, so the rate jumps back up
        from where the checkpoint left it, and the run is not the one that was not stopped.
        """
        self._resumed_states = None
        before, self._planned_before = self._planned_before, None
        planned = int(self.trainer.estimated_stepping_batches)
        if before is not None and before != planned:
            step = self.trainer.global_step
            rate = self.hparams.get("min_lr", 0.0)
            ending = f"{rate:g}" if rate else "0: the weights no longer change"
            past = f"; step {step} is past the plan's end: the rest trains at model.min_lr, {ending}"
            past = past if step >= planned else ""
            rank_zero_warn(
                f"the checkpoint's run planned its learning-rate decay over {before} steps and this one "
                f"over {planned} (another --trainer.max_steps, max_epochs, limit_train_batches or "
                f"accumulate_grad_batches, or other training data): the rate goes on from step {step} of the "
                f"new plan, not the run that was not stopped{past}"
            )

    def log_image(self, tag: str, image: Tensor) -> bool:
        """Show a 3×H×W image in [0, 1] on every logger that can; False if none could.

        A logger can through ``add_image`` (TensorBoard), ``add_figure``, or a ``log_image`` method
        (Weights & Biases).
        """
        shown = False
        for logger in self.loggers:
            experiment: Any = getattr(logger, "experiment", None)  # each logger's own object
            if callable(getattr(experiment, "add_image", None)):
                experiment.add_image(tag, image, self.global_step)
            elif callable(getattr(experiment, "add_figure", None)):
                experiment.add_figure(tag, _figure(image), self.global_step)
            elif callable(log_image := getattr(logger, "log_image", None)):
                log_image(key=tag, images=[_hwc(image)], step=self.global_step)
            else:
                continue
            shown = True
        return shown


def _hwc(image: Tensor) -> np.ndarray:
    """A 3×H×W float image in [0, 1] as an H×W×3 uint8 array."""
    return (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def _figure(image: Tensor) -> Any:
    """A matplotlib figure showing ``image`` at one screen pixel per image pixel."""
    from matplotlib.figure import Figure

    array = _hwc(image)
    figure = Figure(figsize=(array.shape[1] / 100, array.shape[0] / 100), dpi=100)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(array)
    axes.set_axis_off()
    return figure
