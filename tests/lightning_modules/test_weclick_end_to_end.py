"""WeClick end to end through `frugalseg fit --config …`: a teacher on clicks, then a student with KD + MFD.

The real configs are read and shrunk (small decoders, the tiny synthetic set, CPU, two steps), so
the files users run are the ones tested.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from frugalseg.cli.lightning import run_lightning_cli
from frugalseg.data.clips import Clip, LabelKind, LabelRef
from frugalseg.data.formats import get_format
from frugalseg.data.io import read_frame
from frugalseg.datamodules.dataset import ClipSampleDataset
from frugalseg.datamodules.recipes import Sample, annotation_cost, draw_samples, get_recipe, list_recipes
from frugalseg.flow import backward_warp
from frugalseg.lightning_modules import DistillationModule, VideoSegmentationModule

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def _shrunk(name: str, root: Path, out: Path) -> Path:
    """The config ``name`` on the tiny set, CPU, two steps, everything written under ``out``."""
    config = yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))
    trainer = config["trainer"]
    trainer.update(
        accelerator="cpu",
        max_epochs=1,
        max_steps=2,
        limit_val_batches=1,
        log_every_n_steps=1,
        enable_progress_bar=False,
        default_root_dir=str(out),
    )
    trainer["logger"] = {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": str(out), "name": "run"},
    }
    config["checkpoint"] = {**config.get("checkpoint", {}), "dirpath": str(out / "checkpoints")}
    data = config["data"]
    data["root"] = str(root)
    data["augment"] = {**data.get("augment", {}), "crop_size": [64, 128]}
    data["loader"] = {**data.get("loader", {}), "batch_size": 2, "num_workers": 0}
    path = out / name
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _args(model: dict) -> dict:
    """The model's arguments, whether the config names a class or not."""
    return model.get("init_args", model)


@pytest.mark.slow
def test_teacher_on_clicks_then_student_with_kd_and_mfd(tiny_streets, tmp_path):
    small = ["--model.init_args.student_args", "{decoder_channels: 16}"]
    teacher_config = _shrunk("weclick_teacher.yaml", tiny_streets, tmp_path / "teacher")
    teacher_run = run_lightning_cli(
        ["fit", "--config", str(teacher_config), "--model.init_args.student", "deeplabv3plus_r18", *small]
    )
    assert type(teacher_run.model) is VideoSegmentationModule
    assert {s.kind for s in teacher_run.datamodule.samples} == {LabelKind.CLICKS}
    metrics = teacher_run.trainer.callback_metrics
    for name in ("train/loss_clicks_partial_ce", "train/loss_clicks_gated_crf", "val/mIoU"):
        assert math.isfinite(float(metrics[name])), name
    assert (
        teacher_run.model.label_loss.losses["clicks"]["gated_crf"].stride == 4
    )  # the reference's decoder stride
    samples = json.loads((Path(teacher_run.trainer.log_dir) / "samples.json").read_text(encoding="utf-8"))
    assert samples["recipe"] == "clicks" and samples["cost"]["minutes"]["clicks"] > 0
    teacher_ckpt = tmp_path / "teacher" / "checkpoints" / "last.ckpt"
    assert teacher_ckpt.is_file()

    student_config = _shrunk("weclick_student_r18.yaml", tiny_streets, tmp_path / "student")
    small_student = [
        "--config",
        str(student_config),
        "--model.init_args.student",
        "deeplabv3plus_mbv2",
        *small,
        "--model.init_args.teacher",
        "deeplabv3plus_r18",
        "--model.init_args.teacher_args",
        "{decoder_channels: 16}",
    ]
    student_run = run_lightning_cli(
        ["fit", *small_student, "--model.init_args.teacher_weights", str(teacher_ckpt)]
    )
    module = student_run.model
    assert isinstance(module, DistillationModule)
    # The teacher is the trained one, and it stayed frozen through the student's steps.
    trained = teacher_run.model.student.state_dict()
    for key, value in module.teacher.state_dict().items():
        assert torch.equal(value.cpu(), trained[key].cpu()), key
    assert not any(p.requires_grad for p in module.teacher.parameters())
    metrics = student_run.trainer.callback_metrics
    for name in ("train/loss", "train/loss_label", "train/loss_kd", "train/loss_mfd", "val/mIoU", "val/TC"):
        assert name in metrics, f"{name} missing from {sorted(metrics)}"
        assert math.isfinite(float(metrics[name])), name
    assert float(metrics["train/loss_kd"]) > 0 and float(metrics["train/loss_mfd"]) >= 0
    hparams = student_run.datamodule.hparams
    assert hparams.temporal["neighbours"] == 2 and hparams.temporal["neighbour_window"] == 4
    # The student's checkpoint holds the student only; the teacher is rebuilt from its file.
    state = torch.load(tmp_path / "student" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state and not any(k.startswith("teacher.") for k in state)
    assert _args(yaml.safe_load(student_config.read_text(encoding="utf-8"))["model"])[
        "teacher_weights"
    ].endswith("last.ckpt")
    assert module.label_loss.losses["clicks"]["gated_crf"].stride == 4

    # Validating the trained student needs no teacher file: the teacher is read only to fit.
    validated = run_lightning_cli(
        [
            "validate",
            *small_student,
            "--model.init_args.teacher_weights",
            str(tmp_path / "deleted" / "teacher.ckpt"),
            "--ckpt_path",
            str(tmp_path / "student" / "checkpoints" / "last.ckpt"),
        ]
    )
    assert math.isfinite(float(validated.trainer.callback_metrics["val/mIoU"]))


def test_clicks_recipe_draws_anchor_frames_that_have_clicks(caplog):
    recipe = get_recipe("clicks")
    assert "clicks" in list_recipes()
    assert recipe.offsets == (0,) and recipe.kind_at(0) is LabelKind.CLICKS and not recipe.pseudo_offsets
    clips = []
    for i in range(4):
        clip = Clip(f"c{i}", "train", [Path(f"f{i}_{j}.png") for j in range(3)], anchor_index=1)
        clip.add_label(0, LabelRef(Path(f"fine{i}.png"), LabelKind.FINE))
        if i % 2:
            clip.add_label(0, LabelRef(Path(f"clicks{i}.png"), LabelKind.CLICKS))
        clips.append(clip)
    with caplog.at_level("WARNING", logger="frugalseg.datamodules.recipes"):
        samples = draw_samples(recipe, clips, budget=4)
    assert "only 2 exist" in caplog.text
    assert samples == [Sample("c1", 0, LabelKind.CLICKS), Sample("c3", 0, LabelKind.CLICKS)]
    # 10 clicks at 1.5 s plus 1 s to find the objects, and a frame without clicks costs nothing.
    cost = annotation_cost(samples, clicks={samples[0]: 10, samples[1]: 0})
    assert cost.minutes[LabelKind.CLICKS] == pytest.approx(16 / 60)


def test_neighbours_are_earlier_frames_with_flows_that_bring_them_onto_the_target(tiny_streets):
    fmt = get_format("cityscapes", tiny_streets)
    clips = fmt.clips("train")
    samples = [Sample(clip.clip_id, 0, LabelKind.FINE) for clip in clips]
    dataset = ClipSampleDataset(fmt, clips, samples, 1, neighbours=2, neighbour_window=4)
    torch.manual_seed(0)
    seen: set[int] = set()
    errors = [0.0, 0.0, 0.0]  # photometric error summed over samples: flow, reversed flow, no motion
    for index in range(len(dataset)):
        item = dataset[index]
        offsets = item["neighbour_offsets"].tolist()
        assert len(set(offsets)) == 2 and offsets == sorted(offsets) and all(-4 <= o <= -1 for o in offsets)
        seen.update(offsets)
        clip = dataset.clips[item["meta"]["clip_id"]]
        for k, offset in enumerate(offsets):
            expected = read_frame(clip.frame_path(offset))
            assert torch.equal(item["neighbours"][k], torch.from_numpy(expected).permute(2, 0, 1))
        target = item["frames"][-1].float().unsqueeze(0)
        neighbours = item["neighbours"].float()
        # The flow target → neighbour brings the neighbour onto the target; reversed, it does worse.
        for k, flow in enumerate(
            (item["neighbour_flows"], -item["neighbour_flows"], 0 * item["neighbour_flows"])
        ):
            warped, inside = backward_warp(neighbours, flow)
            errors[k] += float((warped - target).abs().mean(1)[inside].mean())
    moved, reversed_, still = errors
    assert moved < 0.5 * still and moved < 0.5 * reversed_
    assert len(seen) > 2  # drawn at random, not always the same two
    same = ClipSampleDataset(fmt, clips, samples, 3, same_frame=True)[0]["frames"]
    assert torch.equal(same[0], same[2]) and torch.equal(same[1], same[2])


@pytest.mark.slow
def test_tdnet_and_temporal_finetune_configs_train_with_their_losses(tiny_streets, tmp_path):
    tdnet = run_lightning_cli(
        [
            "fit",
            "--config",
            str(_shrunk("tdnet_stage1.yaml", tiny_streets, tmp_path / "tdnet")),
            "--model.init_args.student",
            "tdnet_td2_psp18_small",
            "--model.init_args.teacher",
            "pspnet_r18_os8_small",
            "--model.init_args.teacher_weights",
            "null",
            "--model.init_args.student_args",  # the small student's narrow backbone: random, as its try-out
            "{sub_weight: 0.5, aux_weight: 0.1}",
            "--model.init_args.loss_args.fine.ohem_min_kept",
            "2000",
        ]
    )
    assert tdnet.datamodule.datasets["train"].same_frame
    assert [(t.student, t.teacher) for t in tdnet.model.kd_terms] == [("out", "out"), ("sub", "group")]
    assert tdnet.model.teacher.groups == 2
    metrics = tdnet.trainer.callback_metrics
    for name in ("train/loss_fine_ohem_ce", "train/loss_kd"):
        assert math.isfinite(float(metrics[name])) and float(metrics[name]) > 0, name
    assert tdnet.model.student.aux_weights == {"sub": 0.5, "aux": 0.1}

    finetune = run_lightning_cli(
        [
            "fit",
            "--config",
            str(_shrunk("temporal_finetune.yaml", tiny_streets, tmp_path / "tc")),
            "--model.student",
            "hrnetv2_w18_small",
            "--model.init_weights",
            "null",
        ]
    )
    metrics = finetune.trainer.callback_metrics
    # the temporal part is the whole loss: step for step, and as an epoch mean beside the last step's
    assert float(metrics["train/loss_temporal_step"]) == pytest.approx(float(metrics["train/loss"]))
    assert float(metrics["train/loss_temporal"]) == float(metrics["train/loss_temporal_epoch"])
    assert "train/loss_fine" not in metrics  # label_weight 0: the videos' labels are not used
    assert 0.0 <= float(metrics["val/TC"]) <= 1.0
