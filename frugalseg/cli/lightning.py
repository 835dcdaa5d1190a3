"""LightningCLI for ``frugalseg fit|validate|test|predict`` and ``frugalseg vos fit|validate|test``.

Both command lines add the callbacks every run shares, each with its own options, so that a config
holds only what differs from them:

* ``checkpoint`` (``--checkpoint.*``, a `BestAndLastCheckpoint`): keeps the best checkpoint and
  ``last.ckpt``, the latest state (saved at every validation, best or not). Its ``monitor`` and
  ``mode`` default to the task's (``val/mIoU`` and ``max`` for the semantic modules, ``val/JF`` and
  ``max`` for VOS; :class:`~frugalseg.lightning_modules.BaseTask`) and its ``filename`` to
  ``epoch{epoch}-step{step}-<metric>{<monitor>:.3f}``; a config that monitors another metric names
  it (``checkpoint: {monitor: val/TC}``).
* ``lr_monitor`` (``--lr_monitor.*``, a ``LearningRateMonitor``): the learning rate on the logger;
  left out when the trainer has no logger.
* ``print_metrics`` (:class:`~frugalseg.cli.callbacks.PrintMetrics`): the last validation metrics as
  a table when fitting ends, and the metrics of ``validate`` and ``test`` (Lightning's table is off).
* ``epoch_lines`` (:class:`~frugalseg.cli.callbacks.EpochLines`): one plain line per epoch when the
  output is no terminal (a pipe, a file, CI), where Lightning's bar shows nothing until the end.
* ``progress_bar`` and ``model_summary`` (:mod:`frugalseg.cli.callbacks`): Lightning's rich ones, with
  ``v_num`` shown as an integer and without the FLOPs that are 0 for modules without an example input;
  left out with ``enable_progress_bar: false`` or ``enable_model_summary: false``.

Lightning's own noise is kept off the terminal: the ``LeafSpec`` FutureWarning its ``_pytree`` gives
in every run (`frugalseg.cli.quiet_warnings`, for every command), and its tip to install litlogger
(`quiet_lightning`).

A checkpoint given with ``--ckpt_path`` is never unpickled: it is read with ``weights_only=True``
(``--weights_only false`` is refused), a URL is downloaded into the cache first (Lightning would
unpickle it), ``last`` means the newest ``last.ckpt`` of this run's checkpoint folders and ``best`` the
best-scored checkpoint those files name (Lightning's ``best`` needs a fit in the same process), or an
error that says where it looked.
"""

from __future__ import annotations

import importlib
import logging
import re
import shutil
import sys
import urllib.error
import urllib.parse
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers.logger import DummyLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from frugalseg.cli.callbacks import (
    EpochLines,
    ModelSummary,
    MonitoredHpMetric,
    PrintMetrics,
    ProgressBar,
    SignalsStopTheRun,
)
from frugalseg.cli.command_line import check_config_files, command_words, config_paths, refuse_moved_options
from frugalseg.cli.parser_errors import ShortErrorParser
from frugalseg.cli.run_checks import (
    CHECKPOINT_URL_SCHEMES,
    best_named,
    check_lightning_checkpoint,
    check_parsed,
    model_options,
    note_other_data,
    note_unsaved_runs,
    refuse_other_task_config,
    refuse_unpickling,
)
from frugalseg.data.io import cache_dir
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.datamodules.options import MOVED_OPTIONS
from frugalseg.datamodules.vos import VOSDataModule
from frugalseg.errors import ConfigError, WeightsError
from frugalseg.lightning_modules import VideoSegmentationModule, VOSModule
from frugalseg.lightning_modules.prediction_writer import SegmentationPredictionWriter
from frugalseg.lightning_modules.segmentation import blank_starting_weights

DEFAULT_MODEL = f"{VideoSegmentationModule.__module__}.{VideoSegmentationModule.__qualname__}"

#: The model options that decide how a trained network is run and scored, not the network: ``validate``,
#: ``test`` and ``predict`` keep the command's over a checkpoint file's (`TaskCLI._parse_ckpt_path`).
EVALUATION_OPTIONS = ("inference", "boundary_width", "log_images", "channels_last", "compile")

#: ``--ckpt_path``'s help (Lightning's offers "hpc" and "registry", which frugalseg refuses).
CKPT_PATH_HELP = (
    "a checkpoint of `frugalseg fit`: a file, an http(s) URL, 'last' (the newest last.ckpt of the run's "
    "version folders) or 'best' (the best-scored checkpoint their last.ckpt files name); read with "
    "weights_only=True"
)

#: ``predict --return_predictions``'s help (Lightning's says true by default; `FrugalsegCLI.before_predict`).
#: Each subcommand's line in ``--help`` (the Trainer's docstrings' first lines end mid-sentence).
SUBCOMMAND_HELP = {
    "fit": "train the model (resume a run with --ckpt_path last)",
    "validate": "score the model on the validation split",
    "test": "score the model on the test split",
    "predict": "segment frames and write the predictions",
}

RETURN_PREDICTIONS_HELP = (
    "keep every prediction in memory as well (default: false: the prediction writer saves each batch's maps)"
)

#: Options of the shared checkpoint callback; None is filled from the task when the classes are built.
CHECKPOINT_DEFAULTS: dict[str, Any] = {
    "checkpoint.monitor": None,
    "checkpoint.mode": None,
    "checkpoint.filename": None,
    "checkpoint.save_last": True,
    "checkpoint.auto_insert_metric_name": False,
}


#: Help of the checkpoint options whose default the task decides.
CHECKPOINT_HELP = {
    "checkpoint.monitor": "metric whose best value is kept; null (default): the task's `monitor` "
    "(val/mIoU for the semantic modules, val/JF for VOS).",
    "checkpoint.mode": "min or max; null (default): min for a loss or error (train/loss, val/quality_mae), "
    "else the task's `mode` (max for frugalseg's scores: mIoU, bIoU, TC, J&F).",
    "checkpoint.filename": "checkpoint file name; null (default): "
    "epoch{epoch}-step{step}-<metric>{<monitor>:.3f}, e.g. epoch3-step120-miou0.712.ckpt.",
}


class BestAndLastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` is the latest state, best or not.

    It is saved at every validation, and at every epoch's end not saved yet (no validation, or
    ``check_val_every_n_epoch`` > 1). Since Lightning 2.6 ``save_last`` saves only alongside a top-k
    checkpoint, so ``last.ckpt`` was the best epoch's. Its state keeps ModelCheckpoint's key, with the
    monitored score of the step saved (``zoo publish`` reads it), none for a step that was not validated.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._validated_step: int | None = None

    @property
    def state_key(self) -> str:
        """ModelCheckpoint's key: checkpoints of either class restore and publish alike."""
        return "ModelCheckpoint" + super().state_key.removeprefix(type(self).__qualname__)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """As ModelCheckpoint, then save ``last.ckpt`` if this epoch's last step was not saved."""
        super().on_train_epoch_end(trainer, pl_module)
        self._save_latest(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """As ModelCheckpoint, then save ``last.ckpt`` if this validation's step was not saved."""
        if not trainer.sanity_checking:
            self._validated_step = trainer.global_step
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_latest(trainer)

    def _save_topk_checkpoint(self, trainer: Trainer, monitor_candidates: dict[str, Any]) -> None:
        """As ModelCheckpoint, where the monitored metric is missing in frugalseg's words.

        Before any validation (a run ended by ``max_steps`` within an epoch) there is nothing to rank, and
        Lightning's warning is left out. After one that did not log the metric (``val/TC`` of clips without
        a previous frame) ``last.ckpt`` is saved and the run stops naming the metrics it did log: it had
        ended in a traceback with no checkpoint.
        """
        if self.save_top_k and self.monitor is not None and self.monitor not in monitor_candidates:
            if self._validated_step is None:
                return
            self._save_latest(trainer)
            logged = sorted(key for key in monitor_candidates if "/" in key and key.split("/")[0] != "train")
            raise ConfigError(
                "--checkpoint.monitor",
                f"{self.monitor!r} was not logged by validation, which logged "
                f"{', '.join(logged) or 'nothing'} (last.ckpt saved: {self.last_model_path or 'none'})",
            )
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_latest(self, trainer: Trainer) -> None:
        if self.save_last is not True or self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        validated = self._validated_step == trainer.global_step
        self.current_score = candidates.get(self.monitor) if validated and self.monitor else None
        self._save_last_checkpoint(trainer, candidates)


def check_monitor(monitor: str, logged: Sequence[str]) -> None:
    """Refuse a ``--checkpoint.monitor`` among validation metrics that the task does not log.

    Lightning finds out at the first validation, after the training before it, and ends the run in a
    traceback with no checkpoint saved. Training losses (``train/…``) and other keys are left to it.

    Args:
        monitor: ``--checkpoint.monitor`` as given.
        logged: the task's validation metrics (`BaseTask.val_metrics_logged`; empty: not checked).
    """
    if not logged or not monitor.startswith("val/") or monitor in logged:
        return
    near = [name for name in logged if name.lower() == monitor.lower()]
    hint = f"did you mean {near[0]}? " if near else ""
    raise ConfigError(
        "--checkpoint.monitor", f"{monitor!r} is no metric this task logs: {hint}it logs {', '.join(logged)}"
    )


def monitor_mode(monitor: str | None, task_mode: str) -> str:
    """``min`` for a loss or an error (``train/loss``, ``val/quality_mae``), else the task's mode.

    A ``--checkpoint.monitor train/loss`` had taken the semantic task's ``max`` and kept the worst epoch.
    """
    name = (monitor or "").rsplit("/", 1)[-1].lower()
    return "min" if any(word in name for word in ("loss", "mae", "error")) else task_mode


def checkpoint_filename(monitor: str) -> str:
    """``epoch{epoch}-step{step}-miou{val/mIoU:.3f}`` for the monitor ``val/mIoU``."""
    short = monitor.rsplit("/", 1)[-1].lower()
    return f"epoch{{epoch}}-step{{step}}-{short}{{{monitor}:.3f}}"


class TaskCLI(LightningCLI):
    """LightningCLI with the callbacks every run shares (see the module docstring).

    Only the parser of the subcommand the command line names is built (all of them when it names
    none, for ``--help``): building one is most of a command's start-up (0.2 s each).
    """

    #: The zoo task of the students this command trains (`frugalseg.zoo.ModelConfig.task`).
    task = "semantic"
    #: What gives a model weights to evaluate, as the warning of an untrained one names it.
    weights_options = (
        "--ckpt_path (a checkpoint of `frugalseg fit`), published weights (--model.student_args "
        "'{weights: ID}') or --model.init_args.init_weights"
    )
    #: Old ``data`` keys → where they moved (`refuse_moved_options`); none by default.
    moved_data_options: Mapping[str, str] = {}
    #: The checkpoint ``fit`` resumes from: (path, its step, its epoch); None for a new run.
    _restored: tuple[str, int, int] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As ``LightningCLI``; the first word of ``args`` (``sys.argv`` by default) picks the subcommand."""
        words = kwargs.get("args")
        words = sys.argv[1:] if words is None else words
        self._named_subcommand = words[0] if isinstance(words, list | tuple) and words else None
        super().__init__(*args, **kwargs)

    @staticmethod
    def every_subcommand() -> dict[str, set[str]]:
        """Every subcommand this command line offers, with the trainer methods' arguments it skips."""
        return LightningCLI.subcommands()

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]  # reads the instance
        """The subcommand the command line names, or every one when it names none."""
        every = self.every_subcommand()
        named = self._named_subcommand
        return {named: every[named]} if named in every else every

    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        """LightningCLI's subcommands, each listed by one whole sentence (the Trainer's was cut short)."""
        super()._add_subcommands(parser, **kwargs)
        listed = parser._subcommands_action._choices_actions if parser._subcommands_action else []
        for action in listed:
            action.help = SUBCOMMAND_HELP.get(action.dest, action.help)

    def _prepare_subcommand_parser(
        self, klass: type, subcommand: str, **kwargs: Any
    ) -> LightningArgumentParser:
        """LightningCLI's subcommand parser; frugalseg's help of ``--ckpt_path``, ``--return_predictions``."""
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        for action in parser._actions:
            if action.dest == "ckpt_path":
                action.help = CKPT_PATH_HELP
            elif action.dest == "return_predictions":
                action.help = RETURN_PREDICTIONS_HELP
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add the checkpoint, learning-rate monitor and metric table callbacks as options."""
        parser.add_lightning_class_args(BestAndLastCheckpoint, "checkpoint")
        parser.set_defaults(CHECKPOINT_DEFAULTS)
        for action in parser._actions:
            action.help = CHECKPOINT_HELP.get(action.dest, action.help)
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.add_lightning_class_args(PrintMetrics, "print_metrics")
        parser.add_lightning_class_args(ProgressBar, "progress_bar")
        parser.add_lightning_class_args(EpochLines, "epoch_lines")
        parser.add_lightning_class_args(ModelSummary, "model_summary")

    def task_class(self, config: Any) -> type[LightningModule] | Callable[..., LightningModule]:
        """The LightningModule class the parsed ``config`` trains (its ``model.class_path`` if any)."""
        class_path = getattr(config.get("model"), "class_path", None) if self.subclass_mode_model else None
        if not class_path:
            return self._model_class
        module, _, name = class_path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def before_instantiate_classes(self) -> None:
        """Fill the checkpoint's monitor, mode and file name that the config leaves open from the task."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        checkpoint = config.get("checkpoint")
        if checkpoint is None:
            return
        task = self.task_class(config)
        if checkpoint.monitor is not None:
            check_monitor(checkpoint.monitor, getattr(task, "val_metrics_logged", ()))
            temporal = getattr(config.get("data"), "temporal", None)
            if checkpoint.monitor == "val/TC" and getattr(temporal, "consistency", None) is False:
                raise ConfigError(
                    "--checkpoint.monitor", "'val/TC' is logged only with data.temporal.consistency true"
                )
        if checkpoint.monitor is None:
            checkpoint.monitor = getattr(task, "monitor", None)
        if checkpoint.mode is None:
            checkpoint.mode = monitor_mode(checkpoint.monitor, getattr(task, "mode", "min"))
        if checkpoint.mode not in ("min", "max"):  # Lightning's refusal came as a 64-line traceback
            raise ConfigError("--checkpoint.mode", f"is min or max, got {checkpoint.mode!r}")
        if checkpoint.filename is None and checkpoint.monitor:
            checkpoint.filename = checkpoint_filename(checkpoint.monitor)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then check a local ``--ckpt_path`` with frugalseg's weights-only reader.

        LightningCLI reads the checkpoint's hyper-parameters right after parsing, and would end in a
        traceback. A ``--config`` file is read first (`check_config_files`), and data options that
        moved are refused (`refuse_moved_options`).
        """
        words = command_words(args)
        check_config_files(words)
        refuse_other_task_config(words, self.task, self._named_subcommand)
        subcommands = parser._subcommands_action
        for each in [parser, *(subcommands.choices.values() if subcommands is not None else ())]:
            if isinstance(each, ShortErrorParser):  # as `run_cli` builds them; a subcommand's may refuse
                each.config_files = config_paths(words)
        if self.moved_data_options:
            refuse_moved_options(words, self.moved_data_options)
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        self._words = words
        check_parsed(config, subcommand, self.task, self.task_class(config), words)

    def instantiate_classes(self) -> None:
        """LightningCLI's; a build that only finds ``last`` or ``best`` says nothing: it is built again."""
        config = self.config[self.subcommand] if self.subcommand else {}
        said = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # "GPU available: …"
        disabled, said.disabled = said.disabled, config.get("ckpt_path") in ("last", "best")
        try:
            super().instantiate_classes()
        finally:
            said.disabled = disabled

    def after_instantiate_classes(self) -> None:
        """A ``--ckpt_path`` of ``last`` or ``best``: its file found, the command parsed and built with it.

        Only the built trainer finds the file (its logger's folders), after LightningCLI had read the file's
        options: ``last`` had skipped the refusals of another student or task and the checkpoint's model
        options (a resume trained with the command's loss, said nothing), which the file's path gets.
        """
        subcommand = self.subcommand
        config = self.config[subcommand] if subcommand else None
        if subcommand is None or config is None or config.get("ckpt_path") not in ("last", "best"):
            return
        found = self.last_checkpoint() if config["ckpt_path"] == "last" else self.best_checkpoint()
        config["ckpt_path"] = str(found)
        check_parsed(config, subcommand, self.task, self.task_class(config), self._words)
        self._parse_ckpt_path()
        if hasattr(self, "config_dump"):  # LightningCLI's record of the config (the hparams): made anew
            del self.config_dump
        del self.config_init, self.model, self.datamodule, self.trainer  # freed before the second build
        self.instantiate_classes()

    def _parse_ckpt_path(self) -> None:
        """LightningCLI's: a checkpoint file's model options replace the config's; a score keeps some.

        ``validate``, ``test`` and ``predict`` keep the command's `EVALUATION_OPTIONS` (how the network
        is run and scored, not the network): ``--model.inference slide`` had been replaced by the
        checkpoint's ``whole`` with a file, and kept with ``last``, resolved later. The starting weights
        the config names are blanked (`blank_starting_weights`): the checkpoint's state dict replaces
        them, and the config's ``encoder_weights: imagenet`` had been downloaded for nothing (offline:
        refused).
        """
        subcommand = self.config.get("subcommand")
        options = model_options(self.config[subcommand]) if subcommand not in (None, "fit") else None
        kept = {key: options[key] for key in EVALUATION_OPTIONS if options is not None and key in options}
        super()._parse_ckpt_path()
        if kept:
            restored = model_options(self.config[subcommand])
            for key, value in kept.items():
                restored[key] = value
        if subcommand is not None and self.config[subcommand].get("ckpt_path") is not None:
            blank_starting_weights(model_options(self.config[subcommand]))

    def _run_subcommand(self, subcommand: str) -> None:
        """Run the subcommand; if it fails before its first batch, remove the run folder it made.

        The logger's folder (``version_N`` with its event file, ``config.yaml``, ``samples.json``) is
        made as the run starts, before the data is read; a command refused for bad input leaves none.
        A run that failed later keeps its folder: fit's after a training step of its own (its
        checkpoints), the others' after a batch (predict writes each batch's PNGs into it). A resumed fit
        that trained nothing (its checkpoint's run had reached this one's ``max_steps`` or ``max_epochs``)
        is refused so, naming the option.
        """
        run_folder = self._new_run_folder()
        try:
            super()._run_subcommand(subcommand)
            restored = self._restored if subcommand == "fit" and not self.trainer.interrupted else None
            if restored is not None and not self._batches_run("fit"):
                raise self._nothing_left(*restored)
        except BaseException as err:
            # a checkpoint of a run that ended past max_epochs: its restored steps are none of this run's
            past_the_end = isinstance(err, MisconfigurationException) and "restored a checkpoint" in str(err)
            unused = past_the_end or not self._batches_run(subcommand)
            if run_folder is not None and run_folder.is_dir() and unused:
                shutil.rmtree(run_folder, ignore_errors=True)
            if past_the_end and getattr(self.trainer, "fast_dev_run", False) and self._restored is not None:
                raise self._nothing_left(*self._restored) from err  # a larger max_epochs changes nothing
            if past_the_end:
                raise ConfigError(
                    "--trainer.max_epochs",
                    f"{str(err).strip()} The run of --ckpt_path trained that far: give a larger "
                    "--trainer.max_epochs to train on from it",
                ) from err
            if isinstance(err, ValueError) and "`val_check_interval`" in str(err):
                raise ConfigError("--trainer.val_check_interval", _interval_past_epoch(err)) from err
            raise

    def _nothing_left(self, path: str, step: int, epoch: int) -> ConfigError:
        """A resume that ended where its checkpoint's run had stopped: the option that stops it, named."""
        quick = getattr(self.trainer, "fast_dev_run", False)  # it sets max_steps: a larger one does nothing
        if quick:
            return ConfigError(
                "--trainer.fast_dev_run",
                f"{path} is at step {step}, and a fast_dev_run trains {int(quick)} "
                "step(s) from the start: nothing was trained; run it without --ckpt_path",
            )
        max_steps = self.trainer.max_steps
        option, value = (
            ("--trainer.max_steps", max_steps)
            if 0 < max_steps <= step
            else ("--trainer.max_epochs", self.trainer.max_epochs)
        )
        of = f"/{value}" if option == "--trainer.max_epochs" else ""  # counted from 1, as the epoch lines
        return ConfigError(
            option,
            f"{path} is at step {step} (epoch {epoch + 1}{of}), where this run's {option} {value} ends it: "
            f"nothing was trained; give a larger {option} to train on from it",
        )

    def _batches_run(self, subcommand: str) -> int:
        """This process's training steps of ``fit`` (not a resume's restored ones), else the batches run."""
        trainer = self.trainer
        if subcommand == "fit":
            # before Lightning restores the checkpoint (the data's set-up) its global step is still 0
            return max(0, trainer.global_step - (0 if self._restored is None else self._restored[1]))
        loops = {
            "validate": trainer.validate_loop,
            "test": trainer.test_loop,
            "predict": trainer.predict_loop,
        }
        loop: Any = loops.get(subcommand)  # each loop's batch_progress.total is a _ProcessedTracker
        return loop.batch_progress.total.processed if loop is not None else 0

    def _new_run_folder(self) -> Path | None:
        """The outermost folder this run's logger will make (None when its folder exists, or no logger)."""
        logger = self.trainer.logger
        folder = getattr(logger, "log_dir", None)
        if folder is None or not self.trainer.is_global_zero or Path(folder).exists():
            return None
        new = Path(folder).absolute()
        while not new.parent.exists():
            new = new.parent
        return new

    def before_fit(self) -> None:
        """Resolve ``--ckpt_path`` safely before Lightning reads it."""
        self.check_checkpoint()

    def before_validate(self) -> None:
        """Resolve ``--ckpt_path`` safely before Lightning reads it; `PrintMetrics` prints the table."""
        self.check_checkpoint()
        self.config_init[self.subcommand]["verbose"] = False

    def before_test(self) -> None:
        """Resolve ``--ckpt_path`` safely before Lightning reads it; `PrintMetrics` prints the table."""
        self.check_checkpoint()
        self.config_init[self.subcommand]["verbose"] = False

    def check_checkpoint(self) -> None:
        """Make the subcommand read its checkpoint without unpickling (see the module docstring)."""
        self._restored = None
        config = self.config_init[self.subcommand]
        refuse_unpickling(config)
        if "weights_only" in config:
            config["weights_only"] = True
        # the callback's state restored into another folder: a run that saves none, or a resume's new version,
        # which keeps bests of its own (`best_named` ranks every version's)
        warnings.filterwarnings("ignore", message="The dirpath has changed from")
        path = config.get("ckpt_path")
        if path is None and self.subcommand != "fit" and not _starting_weights(self.model):
            logging.getLogger("frugalseg").warning(
                "%s %s the model as built, untrained: give %s",
                self.subcommand,
                "segments with" if self.subcommand == "predict" else "scores",
                self.weights_options,
            )
        if path is None:
            return
        if path in ("hpc", "registry"):  # 'last' and 'best' are files by now (`after_instantiate_classes`)
            raise ConfigError(
                "--ckpt_path", f"{path!r} is not supported; give a checkpoint file, 'last' or 'best'"
            )
        elif urllib.parse.urlparse(str(path)).scheme in CHECKPOINT_URL_SCHEMES:
            from frugalseg.zoo import download

            try:
                config["ckpt_path"] = str(download(str(path), cache_dir() / "checkpoints"))
            except OSError as err:  # HTTP errors (404), refused connections, timeouts
                raise WeightsError(str(path), f"cannot download the checkpoint: {_reason(err)}") from err
        elif Path(path).is_dir():
            found = sorted(Path(path).rglob("last.ckpt"))
            hint = f" ({found[-1]}, say)" if found else ""
            raise ConfigError(
                "--ckpt_path", f"{path} is a folder: give a checkpoint file in it{hint}, or 'last'"
            )
        from frugalseg.zoo import torch_load

        checkpoint = torch_load(config["ckpt_path"])
        check_lightning_checkpoint(config["ckpt_path"], checkpoint)
        self._refuse_other_shape(config["ckpt_path"], checkpoint)
        if self.subcommand == "fit":
            note_other_data(self.config[self.subcommand], config["ckpt_path"], checkpoint)
            step, epoch = int(checkpoint.get("global_step", 0)), int(checkpoint.get("epoch", 0))
            self._restored = config["ckpt_path"], step, epoch

    def _refuse_other_shape(self, path: str, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another class count or clip length than this run's data gives the model.

        The data set links its class count and clip length into the model, over the checkpoint's: a 11-class
        CamVid checkpoint on a 19-class set ended in a ``size mismatch`` traceback of the state dict.
        """
        stored = checkpoint.get("hyper_parameters") or {}
        asked = getattr(self.model, "hparams", {})
        for name, what, option in (
            ("num_classes", "classes", "the data set's classes"),
            ("num_frames", "frames a clip", "--data.num_frames"),
        ):
            if name in stored and name in asked and stored[name] != asked[name]:
                raise ConfigError(
                    "--ckpt_path",
                    f"{path} was trained with {stored[name]} {what}, but this run gives the model "
                    f"{asked[name]} ({option}): give the data it was trained on, or another checkpoint",
                )

    def best_checkpoint(self) -> Path:
        """The best checkpoint the run's ``last.ckpt`` files name, over all its versions (`best_named`).

        Lightning's ``"best"`` is the best of a fit in this process, so a ``validate`` of its own had none.
        """
        return best_named(self._last_checkpoints("'best' asked for (the run's last.ckpt files name it)"))

    def last_checkpoint(self) -> Path:
        """The newest ``last.ckpt`` of this run's checkpoint folders (`_last_checkpoints`)."""
        found = self._last_checkpoints(
            "'last' asked to resume" if self.subcommand == "fit" else "'last' asked for"
        )
        chosen = max(found, key=lambda path: path.stat().st_mtime_ns)
        logger = self.trainer.logger
        note_unsaved_runs(chosen, logger.log_dir if logger is not None else None)
        return chosen

    def _last_checkpoints(self, asked: str) -> list[Path]:
        """Every ``last.ckpt`` of this run's checkpoint folders; ``asked`` opens the error when there is none.

        The folders are the checkpoint callback's ``dirpath`` when set, else every
        ``version_*/checkpoints`` of the run's logger folder (its config's under ``fast_dev_run``, whose
        trainer has a stand-in); without a logger, Lightning's ``<default_root_dir>/checkpoints`` too.
        """
        folders: list[Path] = []
        checkpoint = self.trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.dirpath:
            folders.append(Path(checkpoint.dirpath))
        logger = self.trainer.logger
        if isinstance(logger, DummyLogger):  # fast_dev_run's stand-in: the logger the config names
            configured = self._get(self.config_init, "trainer", default={}).get("logger")
            logger = configured if isinstance(configured, Logger) else logger
        if logger is not None and logger.save_dir is not None:
            base = Path(logger.save_dir) / (logger.name or "")
        else:
            base = Path(self.trainer.default_root_dir) / "lightning_logs"
            folders.append(Path(self.trainer.default_root_dir) / "checkpoints")
        folders += sorted(base.glob("version_*/checkpoints"))
        found = [path for folder in folders for path in folder.glob("last*.ckpt")]
        if not found:
            looked = ", ".join(str(folder) for folder in folders) or f"{base}/version_*/checkpoints"
            hint = (
                "; a run's checkpoints are in its logger's version folders: keep --trainer.logger to find "
                "them, or give the checkpoint's path"
                if logger is None
                else ""
            )
            raise ConfigError(
                "--ckpt_path", f"{asked}, but no last.ckpt was found (looked in {looked}){hint}"
            )
        return found

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer with the shared callbacks, less those its options rule out.

        No logger: no learning-rate monitor; ``enable_checkpointing: false`` or ``fast_dev_run``: no
        checkpoint callback (Lightning's own saves ``last.ckpt`` at a fast_dev_run's end, which it says
        it does not); ``enable_progress_bar`` and ``enable_model_summary`` false: no progress bar, no
        model summary. `SignalsStopTheRun` and `MonitoredHpMetric` are always added.
        """
        options = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        skipped = set()
        if options.get("logger") is False:
            skipped.add("lr_monitor")
        if options.get("fast_dev_run"):
            options["enable_checkpointing"] = False
        if options.get("enable_checkpointing") is False:
            skipped.add("checkpoint")
        if options.get("enable_progress_bar") is False:
            skipped.add("progress_bar")
        if options.get("enable_model_summary") is False:
            skipped.add("model_summary")
        keys = self._parser(self.subcommand).callback_keys
        callbacks = [self._get(self.config_init, key) for key in keys if key not in skipped]
        callbacks += [SignalsStopTheRun(), MonitoredHpMetric()]
        try:
            return self._instantiate_trainer(options, callbacks)
        except (MisconfigurationException, ValueError) as err:
            # Lightning's: an accelerator, devices or strategy that cannot run, or of a name it does not know
            raise ConfigError("--trainer", _misconfiguration(options, err)) from err


def _misconfiguration(options: dict[str, Any], err: Exception) -> str:
    """Lightning's refusal of the trainer's options in one line; on a machine without a GPU, what to do."""
    problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    accelerator = str(options.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        return (
            f"accelerator {accelerator!r}, but this machine has no CUDA GPU torch can use ({problem}): "
            "give --trainer.accelerator cpu (or auto)"
        )
    return problem


def _interval_past_epoch(err: ValueError) -> str:
    """Lightning's refusal of a validation interval longer than an epoch, with the CLI's option names."""
    found = re.search(
        r"\((\d+)\) must be less than or equal to the number of the training batches \((\d+)\)", str(err)
    )
    if found is None:
        return str(err).strip().splitlines()[0]
    asked, batches = found.groups()
    return (
        f"{asked} training batches between validations, but an epoch has {batches}: give at most {batches}, "
        "or --trainer.check_val_every_n_epoch null to count batches across epochs"
    )


class FrugalsegCLI(TaskCLI):
    """LightningCLI with the data → model links (classes, ignore index, frames, class names).

    The model is any subclass of VideoSegmentationModule (``model.class_path``, e.g.
    ``frugalseg.lightning_modules.DistillationModule``); without a class path a config's
    ``model:`` entries are the arguments of VideoSegmentationModule itself.
    """

    moved_data_options = MOVED_OPTIONS

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add the prediction writer and link the data options the model repeats."""
        super().add_arguments_to_parser(parser)
        # `predict` writes label PNGs and a contact sheet (options: --predict_writer.*).
        parser.add_lightning_class_args(SegmentationPredictionWriter, "predict_writer")
        parser.set_defaults({"model": {"class_path": DEFAULT_MODEL}})
        parser.link_arguments("data.num_frames", "model.init_args.num_frames")
        for name in ("num_classes", "ignore_index", "class_names"):
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def before_predict(self) -> None:
        """Resolve ``--ckpt_path`` safely, and keep predictions out of memory unless asked.

        The prediction writer saves every map, so unless asked they are not also all kept in memory.
        """
        self.check_checkpoint()
        config = self.config_init[self.subcommand]
        if config.get("return_predictions") is None:
            config["return_predictions"] = False


def _starting_weights(model: Any) -> bool:
    """Whether the model was given weights to start from (``init_weights`` or ``weights``, its student's)."""
    hparams = getattr(model, "hparams", {})
    student = hparams.get("student_args") or {}
    return any(hparams.get(name) for name in ("init_weights", "weights")) or bool(student.get("weights"))


def _reason(error: OSError) -> str:
    """Why a download failed, in one line (``the server answered HTTP 404 (Not Found)``)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"the server answered HTTP {error.code} ({error.reason})"
    reason = getattr(error, "reason", None) or error
    text = getattr(reason, "strerror", None) or str(reason)
    return text[0].lower() + text[1:] if text else type(error).__name__


#: Lightning's log lines that tell a frugalseg user nothing: the litlogger advertisement, and the note that
#: the CLI's own model summary replaces Lightning's default.
QUIET_LINES = (
    "💡 Tip: For seamless cloud logging",
    "Trainer already configured with model summary callbacks",
)


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(QUIET_LINES)


def quiet_lightning() -> None:
    """Keep Lightning's tip to install litlogger off the terminal for this run.

    Its LeafSpec warning is off for every command (`frugalseg.cli.quiet_warnings`).
    """
    quiet = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(existing, _Quiet) for existing in quiet.filters):
        quiet.addFilter(_Quiet())


def run_lightning_cli(argv: Sequence[str]) -> FrugalsegCLI:
    """`frugalseg fit|validate|test|predict …` (``--help`` lists every option).

    ``sys.argv`` is left as it is, so Lightning's DDP launcher starts the same command again; the
    warning LightningCLI gives when both ``args`` and ``sys.argv`` hold words is silenced for that.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        quiet_lightning()
        return FrugalsegCLI(
            VideoSegmentationModule,
            VideoSegDataModule,
            subclass_mode_model=True,
            args=list(argv),
            parser_class=ShortErrorParser,
            parser_kwargs={"prog": "frugalseg"},
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
        )


class VOSCLI(TaskCLI):
    """`frugalseg vos fit|validate|test`: STM (VOSModule) on DAVIS/MOSE-layout data (VOSDataModule)."""

    task = "vos"
    weights_options = (
        "--ckpt_path (a checkpoint of `frugalseg vos fit`) or weights (--model.student_args "
        "'{weights: ID or FILE}')"
    )

    @staticmethod
    def every_subcommand() -> dict[str, set[str]]:
        """fit, validate and test; VOSModule has no predict step, so `vos predict` is not offered."""
        return {name: args for name, args in LightningCLI.subcommands().items() if name != "predict"}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Link the data's object count to the model's."""
        super().add_arguments_to_parser(parser)
        parser.link_arguments("data.max_objects", "model.max_objects")


def run_vos_cli(argv: Sequence[str]) -> VOSCLI:
    """`frugalseg vos fit|validate|test …`: ``argv`` holds the words after ``vos`` (see above)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        quiet_lightning()
        return VOSCLI(
            VOSModule,
            VOSDataModule,
            args=list(argv),
            parser_class=ShortErrorParser,
            parser_kwargs={"prog": "frugalseg vos"},
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
        )
