"""BaseTask and its subclasses: hooks in order, metrics per stage, figures on any logger, speed options."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch import nn
from torchmetrics import MetricCollection

from frugalseg.data.clips import LabelKind
from frugalseg.errors import ConfigError
from frugalseg.lightning_modules import BaseTask, DistillationModule, VideoSegmentationModule, VOSModule
from frugalseg.metrics import BoundaryIoU, DatasetMeanAccuracy, DatasetMeanIoU, TemporalConsistency
from frugalseg.zoo import model_config

FINE = LabelKind("fine").code
SMALL = {"decoder_channels": 16, "decoder_aspp_dropout": 0.0}


class ScaleTask(BaseTask):
    """The smallest task: a 1×1 convolution, to show that the base knows nothing of segmentation."""

    monitor = "val/score"
    mode = "max"
    calls: list[str] = []

    def __init__(
        self, width: int = 3, lr: float = 0.1, channels_last: bool = False, compile: bool = False
    ) -> None:
        super().__init__()

    def configure_models(self) -> None:
        ScaleTask.calls.append("models")
        self.student = nn.Conv2d(self.hparams.width, self.hparams.width, 1)

    def configure_losses(self) -> None:
        ScaleTask.calls.append("losses")

    def configure_metrics(self) -> None:
        ScaleTask.calls.append("metrics")

    def build_optimizer(self, params):
        return torch.optim.SGD(params, lr=self.hparams.lr)


def test_hooks_run_in_order_after_the_hyper_parameters_are_saved():
    ScaleTask.calls = []
    task = ScaleTask(width=5, channels_last=True)
    assert ScaleTask.calls == ["models", "losses", "metrics"]
    assert dict(task.hparams) == {"width": 5, "lr": 0.1, "channels_last": True, "compile": False}
    assert task.student.weight.is_contiguous(memory_format=torch.channels_last)
    assert (ScaleTask.monitor, ScaleTask.mode) == ("val/score", "max")
    assert (BaseTask.monitor, BaseTask.mode) == ("val/loss", "min")
    assert task(torch.ones(1, 5, 2, 2)).shape == (1, 5, 2, 2)  # forward is the student's


def test_every_task_declares_its_monitor_and_saves_every_argument():
    assert (VideoSegmentationModule.monitor, VideoSegmentationModule.mode) == ("val/mIoU", "max")
    assert (DistillationModule.monitor, DistillationModule.mode) == ("val/mIoU", "max")
    assert (VOSModule.monitor, VOSModule.mode) == ("val/JF", "max")
    module = DistillationModule(
        student="deeplabv3plus_mbv2", student_args=SMALL, teacher="deeplabv3plus_mbv2", teacher_args=SMALL,
        num_classes=3, num_frames=1, mfd_weight=0.0, kd_weight=0.5,
    )  # fmt: skip
    assert module.hparams.kd_weight == 0.5 and module.hparams.student == "deeplabv3plus_mbv2"
    assert module.hparams.num_classes == 3 and module.hparams.compile is False
    # Checkpoints keep the `student.` prefix that frugalseg.zoo and publishing read.
    assert all(key.startswith(("student.", "teacher.")) for key in module.state_dict())


def test_metrics_are_one_collection_per_stage_with_unchecked_inputs():
    module = _image_module()
    assert isinstance(module.val_metrics, MetricCollection)
    assert set(module.val_metrics.keys()) == {"val/mIoU", "val/mAcc", "val/bIoU"}
    assert set(module.test_metrics.keys()) == {"test/mIoU", "test/mAcc", "test/bIoU"}
    assert list(module.val_temporal.keys()) == ["val/TC"] and list(module.test_temporal.keys()) == ["test/TC"]
    assert module.val_metrics["mIoU"] is not module.test_metrics["mIoU"]
    for collection in (module.val_metrics, module.val_temporal):
        assert all(metric.validate_args is False for metric in collection.values())
    vos = VOSModule(student="stm_r18", max_objects=2)
    assert list(vos.val_metrics.keys()) == ["val/JF"] and list(vos.test_metrics.keys()) == ["test/JF"]


# ------------------------------------------------------------------------------ validation metrics


def _image_module(**kwargs) -> VideoSegmentationModule:
    torch.manual_seed(0)
    args = dict(student="deeplabv3plus_mbv2", student_args=SMALL, num_classes=3, num_frames=1)
    return VideoSegmentationModule(**{**args, **kwargs})


def _pair_batch(seed: int, frames: int, size: int = 2, height: int = 32, width: int = 32) -> dict:
    """A validation batch with the previous frame and flows (the next frame shifted by 1.5 px)."""
    generator = torch.Generator().manual_seed(seed)
    flow = torch.zeros(size, 2, height, width)
    flow[:, 0] = 1.5
    return {
        "frames": torch.randn(size, frames, 3, height, width, generator=generator),
        "label": torch.randint(0, 3, (size, height, width), generator=generator),
        "flow_to_prev": flow,
        "flow_from_prev": -flow,
    }


def _calibrated(module: VideoSegmentationModule, batches: list[dict]) -> VideoSegmentationModule:
    """``module`` in eval mode with BatchNorm statistics of ``batches``: an untrained student then
    predicts varied classes instead of one class everywhere."""
    for layer in module.student.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.momentum = None  # the statistics of the one batch seen
    module.train()
    with torch.no_grad():
        module.student(torch.cat([batch["frames"][:, 1:] for batch in batches]))
    return module.eval()


def _reference(module: VideoSegmentationModule, batches: list[dict]) -> dict[str, float]:
    """The metrics as they were computed before: two clip forwards per batch, checked inputs."""
    num_classes = module.hparams.num_classes
    metrics = {
        "mIoU": DatasetMeanIoU(num_classes),
        "mAcc": DatasetMeanAccuracy(num_classes),
        "bIoU": BoundaryIoU(num_classes),
        "TC": TemporalConsistency(num_classes),
    }
    module.eval()
    with torch.no_grad():
        for batch in batches:
            frames = batch["frames"]
            pred = module.student(frames[:, 1:]).argmax(1)
            previous = module.student(frames[:, :-1]).argmax(1)
            for name in ("mIoU", "mAcc", "bIoU"):
                metrics[name].update(pred, batch["label"])
            metrics["TC"].update(previous, pred, batch["flow_to_prev"], batch["flow_from_prev"])
    return {f"val/{name}": float(metric.compute()) for name, metric in metrics.items()}


class _Counter:
    """Counts the calls of a student's clip forward and of its streaming step."""

    def __init__(self, student: nn.Module) -> None:
        self.forward = self.step = 0
        forward, step = student.forward, getattr(student, "step", None)

        def counted_forward(*args, **kwargs):
            self.forward += 1
            return forward(*args, **kwargs)

        student.forward = counted_forward
        if step is not None:

            def counted_step(*args, **kwargs):
                self.step += 1
                return step(*args, **kwargs)

            student.step = counted_step


STUDENTS = {
    # name: (student arguments, frames per clip, exact stream, forwards and steps per batch once known)
    "deeplabv3plus_mbv2": (SMALL, 1, None, (1, 0)),
    "tmanet_r18": ({}, 3, True, (0, 4)),
    "tdnet_td2_psp18_small": ({}, 2, False, (2, 0)),
}


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_validation_encodes_each_frame_once_where_exact_and_keeps_every_value(name, monkeypatch):
    student_args, num_frames, exact, calls = STUDENTS[name]
    torch.manual_seed(0)
    module = VideoSegmentationModule(
        student=name, student_args=student_args, num_classes=3, num_frames=num_frames
    )
    logged: dict[str, object] = {}
    monkeypatch.setattr(module, "log_dict", lambda values, **kw: logged.update(values))
    batches = [_pair_batch(seed, num_frames + 1) for seed in range(3)]
    _calibrated(module, batches)
    counter = _Counter(module.student)
    assert model_config(name).stream_matches_clip is bool(exact)
    with torch.no_grad():
        for batch in batches:
            before = (counter.forward, counter.step)
            module.evaluate(batch, module.val_metrics, module.val_temporal)
            assert (counter.forward - before[0], counter.step - before[1]) == calls
    values = {**module.val_metrics.compute(), **module.val_temporal.compute()}
    expected = _reference(module, batches)
    assert {name: float(value) for name, value in values.items()} == expected
    assert set(logged) == set(expected)  # logged through log_dict, one name per metric
    assert 0 < expected["val/TC"] < 1


def test_validation_logs_every_metric_under_its_name(tmp_path):
    batches = [_pair_batch(seed, 2, size=1) for seed in range(4)]
    module = _calibrated(_image_module(), batches)
    items = [{k: v[0] for k, v in batch.items()} for batch in batches]
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    metrics = trainer.validate(module, torch.utils.data.DataLoader(items, batch_size=2), verbose=False)[0]
    expected = _reference(module, batches)
    assert metrics == pytest.approx(expected) and 0 < expected["val/TC"] < 1


def test_metrics_without_checks_equal_metrics_with_checks_on_random_inputs():
    generator = torch.Generator().manual_seed(5)
    for _ in range(3):
        target = torch.randint(0, 6, (2, 24, 40), generator=generator)
        target[:, :2] = 255
        pred = torch.randint(0, 6, (2, 24, 40), generator=generator)
        flows = (
            2 * torch.randn(2, 2, 24, 40, generator=generator),
            torch.randn(2, 2, 24, 40, generator=generator),
        )
        for make in (DatasetMeanIoU, DatasetMeanAccuracy, BoundaryIoU, TemporalConsistency):
            checked, unchecked = make(6, validate_args=True), make(6, validate_args=False)
            args = (pred.roll(1, -1), pred, *flows) if make is TemporalConsistency else (pred, target)
            checked.update(*args)
            unchecked.update(*args)
            assert torch.equal(checked.per_class().nan_to_num(-1), unchecked.per_class().nan_to_num(-1)), make
    for backend in ("opencv", "torch"):
        checked = BoundaryIoU(6, backend=backend)
        unchecked = BoundaryIoU(6, backend=backend, validate_args=False)
        checked.update(pred, target)
        unchecked.update(pred, target)
        assert torch.equal(checked.intersection, unchecked.intersection)
        assert torch.equal(checked.union, unchecked.union)


# ------------------------------------------------------------------------------------- figures


class _Images:
    def __init__(self) -> None:
        self.images: list[tuple[str, tuple, int]] = []

    def add_image(self, tag, image, step) -> None:
        self.images.append((tag, tuple(image.shape), step))


class _Figures:
    def __init__(self) -> None:
        self.figures: list[tuple[str, object, int]] = []

    def add_figure(self, tag, figure, step) -> None:
        self.figures.append((tag, figure, step))


class _LogImage:
    experiment = object()

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def log_image(self, **kwargs) -> None:
        self.calls.append(kwargs)


def test_figures_go_to_every_logger_that_can_show_them():
    module = _image_module()
    image_logger = SimpleNamespace(experiment=_Images())
    figure_logger = SimpleNamespace(experiment=_Figures())
    wandb_like, csv_like = _LogImage(), SimpleNamespace(experiment=object())
    loggers = [image_logger, figure_logger, wandb_like, csv_like]
    module._trainer = SimpleNamespace(loggers=loggers, global_step=7)
    image = torch.rand(3, 10, 20)
    assert module.log_image("val/frame_label_prediction", image)
    assert image_logger.experiment.images == [("val/frame_label_prediction", (3, 10, 20), 7)]
    ((tag, figure, step),) = figure_logger.experiment.figures
    assert tag == "val/frame_label_prediction" and step == 7
    assert tuple(figure.get_size_inches() * figure.dpi) == pytest.approx((20, 10))
    (call,) = wandb_like.calls
    assert call["key"] == "val/frame_label_prediction" and call["images"][0].shape == (10, 20, 3)
    module._trainer = SimpleNamespace(loggers=[csv_like], global_step=0)
    assert not module.log_image("val/frame_label_prediction", image)


# --------------------------------------------------------------------------------- speed options


def _train_batches() -> list[dict]:
    generator = torch.Generator().manual_seed(3)
    item = {
        "frames": torch.randn(1, 3, 32, 32, generator=generator),
        "label": torch.randint(0, 3, (32, 32), generator=generator),
        "kind": torch.tensor(FINE),
        "meta": {"kind": "fine"},
    }
    return [item, item]  # one fixed batch of two samples


class _Losses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def _fit(module: L.LightningModule, tmp_path, steps: int = 3, **trainer_args) -> list[float]:
    """Train ``module`` for ``steps`` steps on one fixed batch; the loss of every step."""
    losses = _Losses()
    trainer = L.Trainer(
        accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        callbacks=[losses], default_root_dir=tmp_path, **trainer_args,
    )  # fmt: skip
    trainer.fit(module, torch.utils.data.DataLoader(_train_batches() * max(steps, 1), batch_size=2))
    return losses.losses


def test_bf16_mixed_training_steps_run_in_bfloat16_and_lower_the_loss(tmp_path):
    module = _image_module(lr=0.05)
    dtypes = []
    module.student.register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    losses = _fit(module, tmp_path, precision="bf16-mixed")
    assert torch.bfloat16 in dtypes
    assert losses[-1] < losses[0], losses


def test_channels_last_training_lowers_the_loss_and_saves_plain_student_keys(tmp_path):
    module = _image_module(lr=0.05, channels_last=True)
    convs = [m for m in module.student.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    losses = _fit(module, tmp_path)
    assert losses[-1] < losses[0], losses
    plain = _image_module()
    plain.load_state_dict(module.state_dict())  # the same keys, loadable into a default module
    for key, value in plain.student.state_dict().items():
        assert torch.equal(value, module.student.state_dict()[key])


def test_compiled_student_trains_and_keeps_its_state_dict_keys(tmp_path):
    # PSPNet-R18 (three encoder stages): TorchDynamo takes about half as long on it as on DeepLabV3+-MBv2.
    student = dict(student="pspnet_r18", student_args={})
    module = _image_module(lr=0.01, compile={"backend": "eager"}, **student)
    assert list(module.state_dict()) == list(_image_module(**student).state_dict())
    losses = _fit(module, tmp_path)
    assert losses[-1] < losses[0], losses


def test_compile_true_compiles_the_student_with_the_torch_defaults(monkeypatch):
    """``compile: true`` is ``torch.compile`` with no arguments (inductor); the test above trains a
    student compiled with another backend, as inductor's C++ build alone takes 20 s on a cold CPU."""
    calls = []
    monkeypatch.setattr(nn.Module, "compile", lambda module, **options: calls.append((module, options)))
    task = ScaleTask(compile=True)
    assert calls == [(task.student, {})]
    ScaleTask(compile=False)
    assert len(calls) == 1


# ---------------------------------------------------------------------------- the learning rate


def test_a_min_lr_above_lr_is_refused_before_the_first_step(tmp_path):
    """The default min_lr (1e-4) with lr 1e-5 made the rate rise 10× over the run."""
    module = _image_module(lr=1e-5)
    with pytest.raises(ConfigError) as error:
        _fit(module, tmp_path)
    assert str(error.value) == (
        "model.min_lr: 0.0001 is above model.lr 1e-05: the rate would rise from lr to min_lr over the "
        "run; set model.min_lr at most model.lr (e.g. 0) or a larger model.lr"
    )
    assert module.global_step == 0
    equal = _image_module(lr=1e-4)  # min_lr == lr: the rate stays
    assert len(_fit(equal, tmp_path)) == 3
    assert equal.trainer.optimizers[0].param_groups[0]["lr"] == 1e-4


def test_a_run_without_an_end_is_refused_as_the_rate_decays_over_the_run(tmp_path):
    """max_epochs and max_steps -1 made ``estimated_stepping_batches`` inf, and int(inf) an OverflowError."""
    module = _image_module(lr=0.01)
    with pytest.raises(ConfigError) as error:
        _fit(module, tmp_path, steps=-1, max_epochs=-1)
    assert str(error.value) == (
        "trainer.max_steps: the run has no end (trainer.max_epochs -1 and trainer.max_steps -1), and the "
        "rate decays from model.lr to model.min_lr over the run's steps: set trainer.max_steps or "
        "trainer.max_epochs"
    )
    assert module.global_step == 0


def test_a_resume_whose_new_plan_ended_before_its_step_says_so() -> None:
    """A resume with fewer batches an epoch had been told of "another max_steps or max_epochs", neither
    changed, and then trained its epoch at the rate's end (0) without a word of it."""
    from types import SimpleNamespace

    module = _image_module(min_lr=1e-4)
    module._trainer = SimpleNamespace(estimated_stepping_batches=4, global_step=8)  # type: ignore[assignment]
    module._planned_before = 16
    with pytest.warns(UserWarning) as warned:
        module.on_train_start()
    assert str(warned[0].message) == (
        "the checkpoint's run planned its learning-rate decay over 16 steps and this one over 4 (another "
        "--trainer.max_steps, max_epochs, limit_train_batches or accumulate_grad_batches, or other training "
        "data): the rate goes on from step 8 of the new plan, not the run that was not stopped; step 8 is "
        "past the plan's end: the rest trains at model.min_lr, 0.0001"
    )
