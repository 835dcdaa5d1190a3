"""What `frugalseg predict` reads from a folder: frames of several sizes, two with one name, a bad one."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from frugalseg.cli import main
from frugalseg.data.clips import Clip
from frugalseg.datamodules.predict import (
    PredictDataset,
    PredictItem,
    SameSizeBatchSampler,
    folder_items,
    split_items,
)
from frugalseg.datamodules.transforms import Normalize
from frugalseg.errors import DataError
from frugalseg.zoo import get_model

SMALL, WIDE = (64, 32), (48, 40)  # (width, height)


def _frame(path: Path, size: tuple[int, int], seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return path


def _predict(frames: Path, out: Path, *options: str) -> list[str]:
    """``frugalseg predict`` of ``frames`` with the published streets student into ``out``."""
    return [
        "predict", "--config", "demo", "--config", "published/streets_hrnetv2_w18s",
        "--model.student_args", '{"weights": "streets-hrnetv2-w18s"}', "--data.predict.frames", str(frames),
        "--predict_writer.output_dir", str(out), "--predict_writer.formats", "[trainIds]",
        "--trainer.default_root_dir", str(out.parent / "runs"), "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false", *options,
    ]  # fmt: skip


def test_batches_hold_consecutive_frames_of_one_size():
    sizes = [SMALL, SMALL, WIDE, SMALL, SMALL, SMALL, SMALL]
    batches = SameSizeBatchSampler(range(7), batch_size=3, drop_last=False, sizes=sizes)
    assert list(batches) == [[0, 1], [2], [3, 4, 5], [6]] and len(batches) == 4
    dropping = SameSizeBatchSampler(range(7), batch_size=3, drop_last=True, sizes=sizes)
    assert list(dropping) == [[0, 1], [2], [3, 4, 5]]  # as torch's BatchSampler: only the last batch


def test_dataset_sizes_come_from_the_headers(tmp_path):
    _frame(tmp_path / "v" / "a.jpg", SMALL, 0)
    _frame(tmp_path / "v" / "b.png", WIDE, 1)
    assert PredictDataset(folder_items(tmp_path, 2)).sizes() == [SMALL, WIDE]


@pytest.mark.parametrize("stream", [False, True])
def test_a_video_of_two_frame_sizes_is_refused_before_any_frame_is_segmented(tmp_path, stream):
    """A video student had segmented the first frames before the size change stopped it (streaming: with
    a traceback telling to call reset()); an image student reads frames one by one and takes them."""
    _frame(tmp_path / "v" / "a.jpg", SMALL, 0)
    _frame(tmp_path / "v" / "b.png", WIDE, 1)
    _frame(tmp_path / "w" / "c.png", SMALL, 2)  # another video may have another size
    with pytest.raises(DataError) as caught:
        PredictDataset(folder_items(tmp_path, 2, stream=stream)).check_frames()
    assert str(caught.value) == (
        f"{tmp_path / 'v' / 'b.png'}: frame size 48×40, but a.jpg before it in its video is 64×32: a video "
        "student reads a video's frames together, so they must have one size; put frames of another size in "
        "a folder of their own"
    )
    PredictDataset(folder_items(tmp_path, 1)).check_frames()
    (tmp_path / "v" / "b.png").unlink()
    PredictDataset(folder_items(tmp_path, 2, stream=stream)).check_frames()


def test_two_frames_with_one_name_are_refused(tmp_path):
    _frame(tmp_path / "v" / "a.jpg", SMALL, 0)
    _frame(tmp_path / "v" / "a.png", SMALL, 1)
    with pytest.raises(DataError) as caught:
        folder_items(tmp_path, 1)
    assert str(caught.value) == (
        f"{tmp_path / 'v' / 'a.png'}: its prediction would have the same name 'v/a' as "
        f"{tmp_path / 'v' / 'a.jpg'}'s and overwrite it; rename one of them or move it to another folder"
    )


@pytest.mark.slow
def test_predict_segments_frames_of_several_sizes_each_at_its_own_size(tmp_path, capsys):
    """Three frames, the last of another size, in batches of 4: the batches [a, b] and [c], each frame
    written at its size with the class map of the student run on its batch."""
    frames = tmp_path / "frames"
    batches = [
        [_frame(frames / "a.jpg", SMALL, 0), _frame(frames / "b.png", SMALL, 1)],
        [_frame(frames / "c.png", WIDE, 2)],
    ]
    out = tmp_path / "out"
    code = main(_predict(frames, out, "--data.loader.val_batch_size", "4", "--data.loader.num_workers", "0"))
    assert code == 0, capsys.readouterr().err[-2000:]
    model = get_model("hrnetv2_w18_small", weights="streets-hrnetv2-w18s").eval()
    for paths in batches:
        rgb = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in paths]
        clips = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2)[:, None]  # B×1×3×H×W
        with torch.no_grad():
            maps = model(Normalize()(clips)).argmax(1).numpy().astype(np.uint8)
        for path, expected in zip(paths, maps, strict=True):
            written = cv2.imread(str(out / "trainIds" / "frames" / f"{path.stem}.png"), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(written, expected)
    assert written.shape == (WIDE[1], WIDE[0])


@pytest.mark.slow
def test_predict_refuses_two_frames_with_one_name_in_one_line(tmp_path, capsys):
    frames = tmp_path / "frames"
    _frame(frames / "a.jpg", SMALL, 0)
    _frame(frames / "a.png", SMALL, 1)
    out = tmp_path / "out"
    assert main(_predict(frames, out, "--data.loader.num_workers", "0")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and not out.exists()
    assert f"\nerror: {frames / 'a.png'}: its prediction would have the same name 'frames/a' as " in err


@pytest.mark.slow
def test_predict_refuses_a_truncated_frame_before_writing_any_map(tmp_path, capsys):
    """The cut-off frame sorts last, in batches of 1: the maps of the frames before it were written and
    left behind, a partial output that said nothing of being partial."""
    frames = tmp_path / "frames"
    good = _frame(frames / "good.jpg", SMALL, 0)
    (frames / "zz_trunc.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    out = tmp_path / "out"
    options = ("--data.loader.num_workers", "1", "--data.loader.val_batch_size", "1")
    assert main(_predict(frames, out, *options)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and not out.exists()
    assert err.endswith(
        f"\nerror: {frames / 'zz_trunc.jpg'}: the image file ends early (truncated): "
        "its decoded pixels would be wrong\n"
    )


def test_one_image_is_a_video_of_one_frame_named_by_its_stem(tmp_path):
    image = _frame(tmp_path / "demo.png", SMALL, 0)
    assert folder_items(image, 2) == [PredictItem("demo", (image, image))]


@pytest.mark.slow
def test_predict_segments_one_image(tmp_path, capsys):
    image = _frame(tmp_path / "demo.png", SMALL, 0)
    out = tmp_path / "out"
    assert main(_predict(image, out, "--data.loader.num_workers", "0")) == 0, capsys.readouterr().err[-2000:]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["contact_sheet.png", "trainIds/demo.png"]


def test_a_partial_snippet_s_missing_frame_reads_the_nearest_towards_the_anchor():
    """As training's windows: a missing offset -1 (a partial snippet) reads offset 0, not a missing file."""
    frames = [Path(f"c_{n:06d}.png") for n in range(17, 20)]
    clip = Clip("c", "val", frames, anchor_index=2, missing=frozenset({-1}))
    (item,) = split_items([clip], num_frames=3)
    assert item.frames == (frames[0], frames[2], frames[2])


def test_frames_numbered_without_padding_are_in_natural_order(tmp_path):
    """``frame_2`` before ``frame_10``: name order had put frame 10 second (in windows and streams)."""
    video = tmp_path / "walk"
    video.mkdir()
    for n in (1, 2, 10, 11):
        cv2.imwrite(str(video / f"frame_{n}.png"), np.full((8, 8, 3), n, np.uint8))
    items = folder_items(video, num_frames=1, stream=True)
    assert [item.frames[0].name for item in items] == [
        "frame_1.png",
        "frame_2.png",
        "frame_10.png",
        "frame_11.png",
    ]
