"""Sliding-window inference and `frugalseg predict` end to end (label PNGs, contact sheet)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import lightning_args
from torch import nn

from frugalseg.cli.lightning import run_lightning_cli
from frugalseg.data.formats import get_format
from frugalseg.datamodules.predict import PredictDataset, folder_items, split_items
from frugalseg.datamodules.transforms import Normalize
from frugalseg.zoo import Student, get_model, sliding_window

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "configs" / "demo.yaml")


class PixelStudent(Student):
    """A video student whose logits at a pixel depend only on that pixel of the first and last frame."""

    def __init__(self) -> None:
        super().__init__(num_classes=5, num_frames=2)
        torch.manual_seed(0)
        self.conv = nn.Conv2d(6, 5, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        self.check_frames(frames)
        return self.conv(torch.cat([frames[:, -1], frames[:, -1] - frames[:, 0]], dim=1))


class WindowIndex(nn.Module):
    """Returns, for the k-th window it is called on, logits equal to k everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        out = torch.full((frames.shape[0], 1, *frames.shape[-2:]), float(self.calls))
        self.calls += 1
        return out


class WindowOrigin(nn.Module):
    """Records the top-left pixel of each window it is called on (the frames hold each pixel's column)."""

    def __init__(self) -> None:
        super().__init__()
        self.columns: list[int] = []

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        self.columns.append(int(frames[0, -1, 0, 0, 0]))
        return torch.zeros(frames.shape[0], 1, *frames.shape[-2:])


def _window_columns(width: int, window: int, stride: int) -> list[int]:
    model = WindowOrigin()
    columns = torch.arange(width, dtype=torch.float32).expand(1, 1, 3, 4, width)
    sliding_window(model, columns, window=(4, window), stride=(4, stride))
    return model.columns


def test_windows_cover_the_frame_and_end_flush():
    assert _window_columns(100, 40, 30) == [0, 30, 60]
    assert _window_columns(100, 40, 40) == [0, 40, 60]
    assert _window_columns(40, 40, 10) == [0]
    assert _window_columns(30, 40, 10) == [0]  # smaller than the window: the whole frame
    with pytest.raises(ValueError, match="stride 50 > window 40"):
        _window_columns(100, 40, 50)


def test_pixelwise_video_model_gives_the_same_logits_with_and_without_windows():
    model = PixelStudent().eval()
    frames = torch.randn(2, 2, 3, 50, 70, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = model(frames)
    windowed = sliding_window(model, frames, window=(20, 30), stride=(15, 20))
    torch.testing.assert_close(windowed, whole, rtol=1e-6, atol=1e-6)
    # The default stride (2/3 of the window) too.
    torch.testing.assert_close(sliding_window(model, frames, window=(32, 32)), whole, rtol=1e-6, atol=1e-6)


def test_overlapping_windows_are_averaged():
    model = WindowIndex()
    logits = sliding_window(model, torch.zeros(1, 1, 3, 4, 10), window=(4, 4), stride=(4, 3))
    assert model.calls == 3  # columns 0-3, 3-6, 6-9
    expected = torch.tensor([0, 0, 0, 0.5, 1, 1, 1.5, 2, 2, 2])
    assert torch.equal(logits[0, 0], expected.expand(4, 10))


def test_sliding_window_needs_clips():
    with pytest.raises(ValueError, match="B×T×3×H×W"):
        sliding_window(PixelStudent(), torch.zeros(1, 3, 8, 8), window=(4, 4))


def test_folder_items_repeat_the_first_frame_of_each_video(tmp_path):
    for video in ("a", "b"):
        (tmp_path / video).mkdir()
        for i in range(3):
            cv2.imwrite(str(tmp_path / video / f"{i:03d}.png"), np.zeros((4, 4, 3), np.uint8))
    items = folder_items(tmp_path, num_frames=3)
    assert [item.name for item in items] == ["a/000", "a/001", "a/002", "b/000", "b/001", "b/002"]
    assert [p.name for p in items[1].frames] == ["000.png", "000.png", "001.png"]
    assert [p.parent.name for p in items[3].frames] == ["b", "b", "b"]


# ------------------------------------------------------------------------------------ end to end


def _common(root: Path, out: Path) -> list[str]:
    return lightning_args(
        DEMO,
        root,
        out,
        recipe={"name": "N1", "budget": 2},
        loader={"batch_size": 2},
        temporal={"consistency": False},
    )


@pytest.fixture(scope="module")
def trained(tiny_streets, tmp_path_factory) -> tuple[Path, Path]:
    """A TMANet-R18 checkpoint after one step of `frugalseg fit` on the tiny streets set."""
    out = tmp_path_factory.mktemp("predict_run")
    fit = [
        "fit",
        *_common(tiny_streets, out),
        "--data.augment.crop_size",
        "[64,128]",
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "1",
        "--trainer.limit_val_batches",
        "1",
    ]
    cli = run_lightning_cli(fit)
    return Path(cli.trainer.checkpoint_callback.last_model_path), out


def _expected(
    model: nn.Module, dataset: PredictDataset, batch_size: int, window=None
) -> dict[str, np.ndarray]:
    """Class maps computed directly, in the batches the predict loader makes."""
    normalize = Normalize()
    maps = {}
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        frames = normalize(torch.stack([item["frames"] for item in items]))
        with torch.no_grad():
            logits = model(frames) if window is None else sliding_window(model, frames, window)
        for item, pred in zip(items, logits.argmax(1), strict=True):
            maps[item["meta"]["name"]] = pred.numpy().astype(np.uint8)
    return maps


def _png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.mark.slow
def test_predict_split_writes_train_ids_colours_label_ids_and_contact_sheet(trained, tiny_streets, tmp_path):
    ckpt, run = trained
    out = tmp_path / "pred"
    run_lightning_cli(
        [
            "predict",
            *_common(tiny_streets, run),
            "--ckpt_path",
            str(ckpt),
            "--predict_writer.output_dir",
            str(out),
        ]
    )
    model = get_model("tmanet_r18", weights=str(ckpt)).eval()
    clips = get_format("cityscapes", tiny_streets).clips("val")
    expected = _expected(model, PredictDataset(split_items(clips, 3)), batch_size=2)
    assert sorted(expected) == sorted(clip.clip_id for clip in clips) and len(expected) == 3
    palette = np.array(get_format("cityscapes", tiny_streets).palette, dtype=np.uint8)
    from cityscapesscripts.helpers.labels import trainId2label

    for name, train_ids in expected.items():
        written = _png(out / "trainIds" / f"{name}.png")
        np.testing.assert_array_equal(written, train_ids)
        np.testing.assert_array_equal(_png(out / "color" / f"{name}.png"), palette[train_ids])
        label_ids = np.vectorize(lambda t: trainId2label[int(t)].id)(train_ids)
        np.testing.assert_array_equal(_png(out / "labelIds" / f"{name}.png"), label_ids)
    # 3 frames, 2 frame|overlay pairs per row: 2 rows × 4 tiles of 320×160 with 4 px gaps.
    assert _png(out / "contact_sheet.png").shape == (2 * 164 + 4, 4 * 324 + 4, 3)


@pytest.mark.slow
def test_predict_folder_with_a_published_model_and_frames_larger_than_the_crop(tiny_streets, tmp_path):
    """`frugalseg predict` on a folder of frames with the zoo's published weights (no Lightning
    checkpoint); the 64×128 frames exceed the 32×64 crop: whole by default, in windows with
    ``--model.inference slide``, as validation segments them."""
    clip = get_format("cityscapes", tiny_streets).clips("val")[0]
    folder = tmp_path / "frames" / "video"
    folder.mkdir(parents=True)
    for offset in (-2, -1, 0):
        shutil.copy(clip.frame_path(offset), folder / f"frame{offset + 2}.png")
    model = get_model("hrnetv2_w18_small", weights="streets-hrnetv2-w18s").eval()
    dataset = PredictDataset(folder_items(tmp_path / "frames", 1))
    windowed = _expected(model, dataset, batch_size=2, window=(32, 64))
    whole = _expected(model, dataset, batch_size=2)
    assert sorted(windowed) == ["video/frame0", "video/frame1", "video/frame2"]
    assert any((windowed[k] != whole[k]).any() for k in windowed)  # context matters: windows change the map
    for inference, expected in (("whole", whole), ("slide", windowed)):
        out = tmp_path / f"pred-{inference}"
        run_lightning_cli(
            [
                "predict",
                *_common(tiny_streets, tmp_path / "run"),
                "--model.student",
                "hrnetv2_w18_small",
                "--model.student_args",
                '{"weights": "streets-hrnetv2-w18s"}',
                "--model.inference",
                inference,
                "--data.num_frames",
                "1",
                "--data.augment.crop_size",
                "[32,64]",
                "--data.predict.frames",
                str(tmp_path / "frames"),
                "--predict_writer.output_dir",
                str(out),
                "--predict_writer.formats",
                "[trainIds]",
            ]
        )
        for name, train_ids in expected.items():
            np.testing.assert_array_equal(_png(out / "trainIds" / f"{name}.png"), train_ids)
        assert not (out / "color").exists() and not (out / "labelIds").exists()


@pytest.mark.slow
def test_publish_a_real_fit_checkpoint_and_load_it_by_name(trained, tmp_path, monkeypatch):
    """`frugalseg zoo publish` on the checkpoint `frugalseg fit` wrote (read with weights_only=True),
    with the recipe's samples.json beside it; the published name loads the same student."""
    from frugalseg.cli import main

    ckpt, _ = trained
    monkeypatch.setenv("FRUGALSEG_CHECKPOINTS", str(tmp_path))
    assert main(["zoo", "publish", str(ckpt), "--name", "tiny-tmanet"]) == 0
    card = json.loads(next(tmp_path.glob("tiny-tmanet-*.json")).read_text(encoding="utf-8"))
    assert card["architecture"] == "tmanet_r18" and card["num_frames"] == 3
    assert card["training"]["recipe"] == "N1" and card["training"]["label_sources"] == {"fine": 2}
    assert card["training"]["annotation_cost"]["manual_frames"] == 2
    assert set(card["metrics"]["values"]) == {"val/mIoU"}
    frames = torch.randn(1, 3, 3, 32, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        published = get_model("tmanet_r18", weights="tiny-tmanet").eval()(frames)
        original = get_model("tmanet_r18", weights=str(ckpt)).eval()(frames)
    assert torch.equal(published, original)


@pytest.mark.slow
def test_streamed_predict_equals_clip_predict_for_a_video_student(trained, tiny_streets, tmp_path):
    """`data.predict.stream`: TMANet's `step()` frame by frame gives the clip forward's maps, with the
    memory reset at each video (the first frames repeat, as the clip items do)."""
    ckpt, run = trained
    fmt = get_format("cityscapes", tiny_streets)
    for clip in fmt.clips("val")[:2]:
        folder = tmp_path / "frames" / clip.clip_id
        folder.mkdir(parents=True)
        for offset in range(-3, 1):
            shutil.copy(clip.frame_path(offset), folder / f"frame{offset + 3}.png")
    written = {}
    for mode in ("clip", "stream"):
        out = tmp_path / mode
        run_lightning_cli(
            [
                "predict",
                *_common(tiny_streets, run),
                "--ckpt_path",
                str(ckpt),
                "--data.augment.crop_size",
                "[64,128]",
                "--data.predict.frames",
                str(tmp_path / "frames"),
                "--data.predict.stream",
                str(mode == "stream").lower(),
                "--predict_writer.output_dir",
                str(out),
            ]
        )
        maps = sorted(out.glob("trainIds/**/*.png"))
        written[mode] = {path.relative_to(out).as_posix(): _png(path) for path in maps}
    assert len(written["stream"]) == 8
    assert written["stream"].keys() == written["clip"].keys()
    for name, clip_map in written["clip"].items():
        np.testing.assert_array_equal(written["stream"][name], clip_map, err_msg=name)


def test_streaming_needs_a_folder_of_videos(tiny_streets):
    from frugalseg.datamodules.datamodule import VideoSegDataModule
    from frugalseg.datamodules.options import PredictOptions

    datamodule = VideoSegDataModule(root=str(tiny_streets), predict=PredictOptions(stream=True))
    from frugalseg.errors import ConfigError

    with pytest.raises(ConfigError, match="data.predict.stream: needs data.predict.frames"):
        datamodule.setup("predict")


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("tile_width", "0", "Not of type PositiveInt: 0 does not conform to restriction v>0"),
        ("overlay_alpha", "7", "ClosedUnitInterval: 7 does not conform to restriction v>=0 and v<=1"),
        ("contact_sheet", "-1", "Not of type NonNegativeInt: -1 does not conform to restriction v>=0"),
        ("output_dir", "{file}", "{file} is a file, not a folder"),
        ("output_dir", "{file}/below", "{file} is a file, not a folder"),
        ("output_dir", "{frames}/out", "{frames}/out is inside the frames folder {frames}: write the"),
        ("formats", "[]", "predict_writer.formats: give at least one of ['trainIds', 'color', 'labelIds']"),
    ],
)
def test_a_writer_option_out_of_its_range_is_refused_before_predicting(
    tiny_streets, tmp_path, capsys, option: str, value: str, problem: str
) -> None:
    """A tile width of 0 had ended the run in OpenCV's resize traceback, the PNGs written, no sheet; an
    alpha of 7 drew a saturated sheet; an output folder that is a file failed after predicting; one inside the
    frames folder made a second run segment the first one's PNGs; no format at all wrote every format."""
    from frugalseg.cli import main

    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "a.png"), np.zeros((32, 64, 3), np.uint8))
    file = tmp_path / "afile"
    file.write_text("x", encoding="utf-8")
    frames = ["--data.predict.frames", str(tmp_path / "frames")]
    argv = ["predict", *_common(tiny_streets, tmp_path / "run"), *frames]
    try:
        code = main(
            [*argv, f"--predict_writer.{option}", value.format(file=file, frames=tmp_path / "frames")]
        )
    except SystemExit as ended:  # jsonargparse ends a bad command line this way
        code = ended.code
    assert code == 2
    err = capsys.readouterr().err
    assert problem.format(file=file, frames=tmp_path / "frames") in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.png"))


def test_label_ids_alone_for_classes_that_are_not_cityscapes_are_refused_before_predicting(tmp_path) -> None:
    """CamVid's 11 classes with ``formats [labelIds]``: every frame was predicted, none written, and the run
    said "2 frames written to … ()" with exit 0."""
    from types import SimpleNamespace

    from frugalseg.errors import ConfigError
    from frugalseg.lightning_modules.prediction_writer import SegmentationPredictionWriter

    module = SimpleNamespace(hparams={"class_names": ["sky", "building"], "num_classes": 2}, _trainer=None)
    trainer = SimpleNamespace(log_dir=None, default_root_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="labelIds are Cityscapes' ids, and the model's classes are not"):
        SegmentationPredictionWriter(formats=["labelIds"]).on_predict_start(trainer, module)
    SegmentationPredictionWriter(formats=["trainIds", "labelIds"]).on_predict_start(trainer, module)


def test_predict_from_an_image_students_checkpoint_alone_takes_its_clip_length(
    tiny_streets, tmp_path, capsys
):
    """No --config and no student named: the checkpoint's HRNet was used, and the default clips of 3 frames
    then refused it ("an image model and takes num_frames=1") until --data.num_frames 1 was added."""
    from frugalseg.cli import main

    fit = [
        "fit",
        *_common(tiny_streets, tmp_path / "run"),
        "--model.student",
        "hrnetv2_w18_small",
        "--data.num_frames",
        "1",
        "--data.augment.crop_size",
        "[64,128]",
        "--trainer.max_steps",
        "1",
        "--trainer.limit_val_batches",
        "0",
    ]
    checkpoint = run_lightning_cli(fit).trainer.checkpoint_callback.last_model_path
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "a.png"), np.full((32, 64, 3), 90, np.uint8))
    out = tmp_path / "out"
    predict = ["predict", "--ckpt_path", checkpoint, "--data.root", str(tiny_streets)]
    predict += ["--data.predict.frames", str(tmp_path / "frames"), "--predict_writer.output_dir", str(out)]
    predict += ["--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.enable_progress_bar", "false"]
    assert main(predict) == 0
    assert "holds a 'hrnetv2_w18_small' student, which is used" in capsys.readouterr().err
    assert _png(out / "trainIds" / "frames" / "a.png").shape == (32, 64)
