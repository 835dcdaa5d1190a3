"""DistillationModule: WeClick's loss (eq. 5) wired to the right tensors, the frozen teacher, its weights."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from safetensors.torch import save_file

from frugalseg.data.clips import LabelKind
from frugalseg.datamodules.datamodule import ClipGeometry, VideoSegDataModule, transform_flow
from frugalseg.datamodules.options import TemporalOptions
from frugalseg.errors import WeightsError
from frugalseg.flow import backward_warp
from frugalseg.lightning_modules import DistillationModule, KDTerm
from frugalseg.losses import kd_loss, mfd_loss
from frugalseg.losses.gated_crf import GatedCRFLoss
from frugalseg.metrics import DatasetMeanIoU
from frugalseg.zoo import get_model

SMALL = {"decoder_channels": 16, "decoder_aspp_dropout": 0.0}
CLICKS = LabelKind.CLICKS.code


def _module(monkeypatch=None, **kwargs) -> DistillationModule:
    args = dict(
        student="deeplabv3plus_mbv2",
        student_args=SMALL,
        teacher="deeplabv3plus_mbv2",
        teacher_args=SMALL,
        num_classes=3,
        num_frames=1,
        losses={"clicks": {"partial_ce": 1.0, "gated_crf": 0.1}},
        loss_args={"clicks": {"gated_crf": {"radius": 2}}},
    )
    module = DistillationModule(**{**args, **kwargs})
    if monkeypatch is not None:
        logged: dict[str, float] = {}
        monkeypatch.setattr(
            module, "log", lambda name, value, **kw: logged.__setitem__(name, float(value.detach()))
        )
        module.logged = logged
    return module


def _batch(size: int = 2, neighbours: int = 2, height: int = 32, width: int = 32) -> dict:
    generator = torch.Generator().manual_seed(0)
    label = torch.full((size, height, width), 255)
    label[:, 5, 7], label[:, 20, 9], label[:, 12, 25] = 0, 1, 2
    return {
        "frames": torch.randn(size, 1, 3, height, width, generator=generator),
        "label": label,
        "kind": torch.full((size,), CLICKS),
        "meta": {"kind": ["clicks"] * size},
        "neighbours": torch.randn(size, neighbours, 3, height, width, generator=generator),
        "neighbour_flows": torch.randn(size, neighbours, 2, height, width, generator=generator) * 2,
        "valid": torch.ones(size, height, width, dtype=torch.bool),
    }


def test_training_step_is_label_plus_kd_on_every_frame_plus_mfd(monkeypatch):
    torch.manual_seed(0)
    module = _module(monkeypatch)
    module.train()
    batch = _batch()
    total = module.training_step(batch, 0)

    student, teacher = module.student, module.teacher
    with torch.no_grad():
        out = student(batch["frames"])
        single = batch["neighbours"].flatten(0, 1).unsqueeze(1)
        nb = student(single)
        t_out, t_nb = teacher(batch["frames"]), teacher(single)
    label = torch.nn.functional.cross_entropy(out, batch["label"], ignore_index=255)
    label = label + 0.1 * GatedCRFLoss(weight=1.0, radius=2)(
        out, None, image=batch["frames"][:, -1], valid=batch["valid"]
    )
    kd = kd_loss(out, t_out) + 2 * kd_loss(nb, t_nb)  # eq. 5: KD summed over the 3 frames
    warped, inside = backward_warp(nb.softmax(1), batch["neighbour_flows"].flatten(0, 1))
    mfd = mfd_loss(out, warped.view(2, 2, 3, 32, 32), t_out, inside.view(2, 2, 32, 32))
    assert float(total.detach()) == pytest.approx(float((label + kd + mfd).detach()), rel=1e-5)
    assert module.logged["train/loss_kd"] == pytest.approx(float(kd), rel=1e-5)
    assert module.logged["train/loss_mfd"] == pytest.approx(float(mfd), rel=1e-5)
    assert module.logged["train/loss_label"] == pytest.approx(float(label), rel=1e-5)


def test_weights_scale_each_term_and_zero_switches_it_off(monkeypatch):
    torch.manual_seed(0)
    full = _module(monkeypatch)
    batch = _batch()
    full.train()
    full.training_step(batch, 0)
    parts = {k: full.logged[f"train/loss_{k}"] for k in ("label", "kd", "mfd")}
    weighted = _module(monkeypatch, label_weight=0.5, kd_weight=2.0, mfd_weight=0.0)
    weighted.load_state_dict(full.state_dict())
    weighted.train()
    total = weighted.training_step(batch, 0)
    assert "train/loss_mfd" not in weighted.logged
    assert float(total.detach()) == pytest.approx(0.5 * parts["label"] + 2.0 * parts["kd"], rel=1e-5)


def test_mfd_is_zero_when_the_neighbour_moves_exactly_with_the_flow():
    module = _module(kd_weight=0.0)
    generator = torch.Generator().manual_seed(3)
    target = torch.randn(1, 3, 8, 12, generator=generator)
    # The neighbour shows pixel (x, y) of the target at (x + 2, y): flow target → neighbour = (+2, 0).
    neighbour = torch.roll(target, shifts=2, dims=-1)
    flow = torch.zeros(1, 1, 2, 8, 12)
    flow[:, :, 0] = 2.0
    assert float(module._mfd(target, neighbour, target, flow, None)) < 1e-12  # sampling round-off
    # The opposite direction misaligns them: positive, and equal to the weighted formula by hand.
    wrong = module._mfd(target, neighbour, target, -flow, None)
    warped = torch.roll(neighbour, shifts=2, dims=-1).softmax(1)[..., 2:]  # inside pixels: x >= 2
    prob = target.softmax(1)[..., 2:]
    weight = torch.exp(-(warped - prob).abs().sum(1))
    expected = (weight * (warped - prob).square().sum(1)).mean()
    assert float(wrong) > 0
    assert float(wrong) == pytest.approx(float(expected), rel=1e-5)


def test_mfd_resamples_the_neighbours_probabilities_not_their_logits():
    """Paper 004 warps the probability map: halfway between logits [10, 0] and [0, 0] is p = 0.75."""
    module = _module(kd_weight=0.0)
    neighbour = torch.tensor([[10.0, 0.0], [0.0, 0.0]]).T.reshape(1, 2, 1, 2)  # pixel 0 sure, pixel 1 not
    target = torch.zeros(1, 2, 1, 2)
    flow = torch.zeros(1, 1, 2, 1, 2)
    flow[0, 0, 0, 0, 0] = 0.5  # target pixel 0 reads halfway to neighbour pixel 1
    halfway = (neighbour.softmax(1)[0, 0, 0, 0] + 0.5) / 2
    assert float(halfway) == pytest.approx(0.75, abs=1e-4)
    # target pixel 0: p = 0.5; the warped neighbour: p0 ≈ 0.75, W = exp(−0.5), distance 2 · 0.25²
    expected = math.exp(-2 * abs(halfway - 0.5)) * 2 * (halfway - 0.5) ** 2 / 2  # pixel 1 agrees
    assert float(module._mfd(target, neighbour, target, flow, None)) == pytest.approx(
        float(expected), rel=1e-5
    )


def test_mfd_ignores_pixels_that_read_outside_the_crop():
    module = _module(kd_weight=0.0)
    generator = torch.Generator().manual_seed(4)
    target = torch.randn(1, 3, 6, 6, generator=generator)
    neighbour = torch.randn(1, 3, 6, 6, generator=generator)
    flow = torch.zeros(1, 1, 2, 6, 6)
    valid = torch.zeros(1, 6, 6, dtype=torch.bool)
    valid[:, :, :3] = True
    masked = module._mfd(target, neighbour, target, flow, valid)
    left = module._mfd(target[..., :3], neighbour[..., :3], target[..., :3], flow[..., :3], None)
    assert float(masked) == pytest.approx(float(left), rel=1e-6)


def test_teacher_is_frozen_in_eval_mode_and_out_of_the_optimizer():
    module = _module()
    module.train()
    assert module.student.training and not module.teacher.training
    assert not any(p.requires_grad for p in module.teacher.parameters())
    trained = {id(p) for p in module.parameters() if p.requires_grad}
    assert trained == {id(p) for p in module.student.parameters()}


def test_teacher_weights_from_a_run_checkpoint_or_safetensors(tmp_path):
    source = get_model("deeplabv3plus_mbv2", num_classes=3, **SMALL)
    state = {f"student.{k}": v for k, v in source.state_dict().items()}
    torch.save({"state_dict": {**state, "losses.fine.ce.w": torch.ones(1)}, "epoch": 3}, tmp_path / "t.ckpt")
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "t.safetensors")
    for name in ("t.ckpt", "t.safetensors"):
        module = _module(teacher_weights=str(tmp_path / name))
        # Read when fitting starts, not when the module is built.
        teacher = module.teacher.state_dict()
        assert any(not torch.equal(teacher[key], value) for key, value in source.state_dict().items())
        module.setup("fit")
        for key, value in source.state_dict().items():
            assert torch.equal(module.teacher.state_dict()[key], value), (name, key)
        assert not any(p.requires_grad for p in module.teacher.parameters())


def _fit_setup(path) -> None:
    _module(teacher_weights=str(path)).setup("fit")


def test_bad_teacher_weights_are_clear_errors_when_fitting(tmp_path):
    with pytest.raises(WeightsError, match=r"missing\.ckpt: weights file does not exist"):
        _fit_setup(tmp_path / "missing.ckpt")
    other = get_model("deeplabv3plus_r18", num_classes=3, **SMALL)
    torch.save(other.state_dict(), tmp_path / "r18.pt")
    mismatch = r"r18\.pt: weights do not fit SmpStudent .missing 312.*unexpected 120"
    with pytest.raises(WeightsError, match=mismatch):
        _fit_setup(tmp_path / "r18.pt")
    (tmp_path / "junk.ckpt").write_text("not a checkpoint", encoding="utf-8")
    with pytest.raises(WeightsError, match=r"junk\.ckpt: cannot be read with torch.load\(weights_only"):
        _fit_setup(tmp_path / "junk.ckpt")
    hparams = {"student": "deeplabv3plus_r18", "student_args": SMALL, "num_classes": 3, "num_frames": 1}
    state = {f"student.{k}": v for k, v in other.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": hparams}, tmp_path / "r18.ckpt")
    with pytest.raises(WeightsError, match="deeplabv3plus_r18., but .deeplabv3plus_mbv2. was asked"):
        _fit_setup(tmp_path / "r18.ckpt")


def test_a_teacher_file_holding_python_objects_is_refused_without_torch_unpickling_advice(tmp_path):
    path = tmp_path / "objects.ckpt"
    torch.save({"state_dict": {}, "config": tmp_path}, path)
    with pytest.raises(WeightsError) as error:
        _fit_setup(path)
    message = str(error.value)
    assert message.startswith(f"{path}: cannot be read with torch.load(weights_only=True): it holds Python ")
    assert "(it needs pathlib.PosixPath)" in message and "frugalseg never unpickles" in message
    assert "frugalseg zoo publish" in message and "state_dict()" in message
    assert "weights_only=False" not in message and "weights_only` set to `False" not in message


def _loader(count: int = 2) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(9)
    items = [
        {
            "frames": torch.randn(1, 3, 32, 32, generator=generator),
            "label": torch.randint(0, 3, (32, 32), generator=generator),
            "kind": torch.tensor(CLICKS),
            "meta": {"kind": "clicks"},
            "neighbours": torch.randn(2, 3, 32, 32, generator=generator),
            "neighbour_flows": torch.zeros(2, 2, 32, 32),
        }
        for _ in range(count)
    ]
    return torch.utils.data.DataLoader(items, batch_size=2)


def _trainer(tmp_path) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )


def test_a_trained_student_validates_without_its_teacher_file_but_fitting_needs_it(tmp_path):
    missing = str(tmp_path / "gone" / "teacher.ckpt")
    module = _module(teacher_weights=missing)
    trainer = _trainer(tmp_path)
    validated = trainer.validate(module, _loader(), verbose=False)[0]["val/mIoU"]
    expected = DatasetMeanIoU(3, 255)
    module.eval()
    with torch.no_grad():
        for batch in _loader():
            expected.update(module.student(batch["frames"]).argmax(1), batch["label"])
    assert validated == pytest.approx(float(expected.compute()), abs=1e-6)
    trainer.save_checkpoint(tmp_path / "student.ckpt")
    loaded = DistillationModule.load_from_checkpoint(tmp_path / "student.ckpt")
    assert loaded.hparams.teacher_weights == missing
    assert trainer.validate(loaded, _loader(), verbose=False)[0]["val/mIoU"] == pytest.approx(validated)
    with pytest.raises(WeightsError, match=r"gone/teacher\.ckpt: weights file does not exist"):
        _trainer(tmp_path).fit(loaded, _loader())


def test_checkpoints_hold_the_student_only_and_load_back():
    module = _module()
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["state_dict"] and not any(k.startswith("teacher.") for k in checkpoint["state_dict"])
    fresh = _module()
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"])  # strict
    for key, value in module.student.state_dict().items():
        assert torch.equal(fresh.student.state_dict()[key], value)


def test_group_kd_term_names_the_teacher_output_it_lacks():
    module = _module(kd_terms=[KDTerm(student="out", teacher="group", weight=0.5)], mfd_weight=0.0)
    module.student.group_of = lambda path: path % 2
    module.student.last_path = 3
    with pytest.raises(ValueError, match=r"teacher's 'group1' output"):
        module.training_step(_batch(neighbours=0), 0)


def test_mfd_needs_an_image_student():
    with pytest.raises(ValueError, match="reads 2 frames"):
        _module(student="tdnet_td2_psp18_small", student_args={}, num_frames=2)


MISSING_NEIGHBOURS = (
    r"model.mfd_weight is 1.0 but the training batches carry no neighbour frames: "
    r"set data.temporal.neighbours"
)


def test_mfd_without_neighbour_frames_is_an_error_not_a_silent_skip(monkeypatch):
    module = _module()
    without = {k: v for k, v in _batch().items() if k not in ("neighbours", "neighbour_flows")}
    with pytest.raises(ValueError, match=MISSING_NEIGHBOURS):
        module.training_step(without, 0)
    with pytest.raises(ValueError, match=MISSING_NEIGHBOURS):
        module.training_step(_batch(neighbours=0), 0)
    loss = _module(monkeypatch, mfd_weight=0.0).training_step(without, 0)  # MFD off: no neighbours needed
    assert float(loss.detach()) > 0


def test_fitting_checks_the_datamodule_options_before_the_first_batch():
    """setup("fit") reads the real datamodule's options: no neighbours with MFD on stops at once."""
    module = _module()
    module._trainer = SimpleNamespace(datamodule=VideoSegDataModule(num_frames=1))
    with pytest.raises(ValueError, match=MISSING_NEIGHBOURS):
        module.setup("fit")
    module.setup("validate")  # validation reads no neighbours
    module._trainer = SimpleNamespace(
        datamodule=VideoSegDataModule(num_frames=1, temporal=TemporalOptions(neighbours=2))
    )
    module.setup("fit")
    with pytest.raises(ValueError, match="does not train the temporal-consistency loss"):
        _module(temporal_weight=1.0)


def test_geometry_moves_flows_with_their_frames():
    """A neighbour shifted by (3, 1) px keeps matching its target after scale, crop and flip."""
    torch.manual_seed(0)
    height, width = 40, 56
    ys, xs = torch.meshgrid(torch.arange(height + 8.0), torch.arange(width + 8.0), indexing="ij")
    scene = torch.stack([torch.sin(xs / 5), torch.cos(ys / 6), torch.sin((xs + ys) / 7)])
    target = scene[:, 4 : 4 + height, 4 : 4 + width]
    neighbour = scene[:, 3 : 3 + height, 1 : 1 + width]  # neighbour(p + (3, 1)) = target(p)
    flows = torch.zeros(2, 1, 2, height, width)
    flows[:, :, 0], flows[:, :, 1] = 3.0, 1.0
    batch = {
        "frames": target.expand(2, 1, 3, height, width).clone(),
        "neighbours": neighbour.expand(2, 1, 3, height, width).clone(),
        "neighbour_flows": flows,
        "label": torch.zeros(2, height, width, dtype=torch.long),
    }
    geometry = ClipGeometry((32, 40), scale_range=(1.25, 1.25), flip_prob=0.5)
    out = geometry.transform_batch(batch)
    matrices = geometry.last_matrices
    flipped = matrices[:, 0, 0] < 0
    for i in range(2):
        sign = -1.0 if flipped[i] else 1.0
        assert torch.allclose(out["neighbour_flows"][i, 0, 0, 2:-2, 2:-2], torch.tensor(sign * 3.75))
        assert torch.allclose(out["neighbour_flows"][i, 0, 1, 2:-2, 2:-2], torch.tensor(1.25))
    warped, _ = backward_warp(out["neighbours"][:, 0], out["neighbour_flows"][:, 0])
    error = (warped - out["frames"][:, 0]).abs()[..., 6:-6, 6:-6]
    assert float(error.max()) < 0.05
    assert bool(out["valid"].all())


def test_geometry_valid_mask_marks_the_frame_inside_the_crop():
    batch = {"frames": torch.zeros(1, 1, 3, 16, 20), "label": torch.zeros(1, 16, 20, dtype=torch.long)}
    out = ClipGeometry((24, 30), scale_range=(1.0, 1.0), flip_prob=0.0).transform_batch(batch)
    assert torch.equal(out["valid"], out["label"] != 255)
    assert int(out["valid"].sum()) == 16 * 20


def test_transform_flow_of_a_single_field_scales_and_flips_vectors():
    flow = torch.stack([torch.full((4, 4), 2.0), torch.full((4, 4), -1.0)]).unsqueeze(0)
    flip_and_halve = torch.tensor([[[-0.5, 0.0, 1.5], [0.0, 0.5, 0.0]]])
    moved = transform_flow(flow, flip_and_halve, (2, 2))
    assert torch.allclose(moved, torch.tensor([-1.0, -0.5]).view(1, 2, 1, 1).expand(1, 2, 2, 2))


def test_neighbour_flow_of_the_wrong_size_is_a_clear_error():
    module = _module(kd_weight=0.0)
    logits = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"neighbour flows of shape \(1, 1, 2, 4, 4\) do not fit"):
        module._mfd(logits, logits, logits, torch.zeros(1, 1, 2, 4, 4), None)


def test_mfd_of_an_unmoved_neighbour_is_zero_under_bf16_autocast():
    # bf16 logits of a 768-px-wide crop: the warp's pixel grid is not built in their dtype (2-4 px off).
    module = _module(kd_weight=0.0)
    target = (torch.randn(1, 3, 4, 768, generator=torch.Generator().manual_seed(1)) * 50).bfloat16()
    flow = torch.zeros(1, 2, 2, 4, 768)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mfd = module._mfd(target, target.repeat(2, 1, 1, 1), target, flow, torch.ones(1, 4, 768).bool())
    assert float(mfd) < 1e-9  # sampling round-off of bf16 probabilities (0.23 with the grid in bf16)


def test_mfd_on_camvids_stills_is_warned_of():
    """CamVid's labelled frames are 1 s apart: the WeClick student config ran MFD on them in silence."""
    module = _module(mfd_weight=1.0)
    with pytest.warns(UserWarning, match="CamVid's frames are labelled stills 1 s apart"):
        module.check_data_options({"format": "camvid", "temporal": {"neighbours": 2}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module.check_data_options({"format": "cityscapes", "temporal": {"neighbours": 2}})
        _module(mfd_weight=0.0).check_data_options({"format": "camvid", "temporal": {"neighbours": 0}})


def test_lightnings_eval_mode_warning_passes_the_frozen_teacher_and_still_tells_of_the_student():
    """Every distillation run printed "Found 124 module(s) in eval mode at the start of training. This may
    lead to unexpected behavior": the teacher, frozen as meant."""
    import warnings
    from types import SimpleNamespace

    from lightning.pytorch.loops.fit_loop import _FitLoop

    module = _module()
    module.configure_models()
    module.train()
    module._trainer = SimpleNamespace(datamodule=None, lightning_module=module)  # type: ignore[assignment]
    loop = _FitLoop.__new__(_FitLoop)
    loop.trainer = module._trainer  # type: ignore[assignment]
    with warnings.catch_warnings(record=True) as told:
        warnings.simplefilter("always")
        module.on_fit_start()
        loop._warn_if_modules_in_eval_mode()  # Lightning's own check, as the fit loop makes it
        assert not told
        next(module.student.modules()).eval()  # a student's module left in eval mode
        loop._warn_if_modules_in_eval_mode()
    assert len(told) == 1 and "module(s) in eval mode at the start of training" in str(told[0].message)
