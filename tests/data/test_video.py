"""Video files as clips: frames in presentation order, random access equal to sequential decoding,
variable frame rate and B-frames, a header that lies, frame folders in natural order, and the real
car-shadow video against its JPEG frames."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main
from frugalseg.data.clips import LabelKind
from frugalseg.data.formats import detect_format, get_format
from frugalseg.data.formats.video import VideoFormat
from frugalseg.data.io import image_size, read_frame
from frugalseg.data.videos import (
    VideoDecoder,
    natural_key,
    split_frame_path,
    video_frame_path,
    video_index,
)
from frugalseg.errors import DataError

from .fake_davis import palette_png
from .fake_video import SIZE, claim_avi_frames, cut_video, numbered_frame, read_number, write_video

CAR = "car-shadow"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / error))


def _vfr_times(count: int, seed: int = 0) -> list[int]:
    """Irregular presentation times in ms: gaps of 10…89 ms."""
    return np.cumsum(np.random.default_rng(seed).integers(10, 90, size=count)).tolist()


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory) -> Path:
    """40 numbered frames, libx264 with 3 B-frames, a keyframe every 12 frames, irregular times."""
    path = tmp_path_factory.mktemp("video") / "vfr.mp4"
    return write_video(path, [numbered_frame(i) for i in range(40)], pts=_vfr_times(40))


def test_a_variable_frame_rate_b_frame_video_decodes_every_index_to_its_own_frame(vfr_video):
    index = video_index(vfr_video)
    assert len(index) == 40 and index.keyframes == (0, 12, 24, 36)
    times = _vfr_times(40)
    gaps = np.diff([index.seconds(i) for i in range(40)])
    np.testing.assert_allclose(gaps, np.diff(times) / 1000, atol=1e-3)  # the file's own irregular times
    decoder = VideoDecoder(vfr_video)
    assert [read_number(decoder.frame(i)) for i in range(40)] == list(range(40))
    assert decoder.decoded == 40  # sequential reading decodes each frame once


def test_random_access_equals_sequential_decoding_and_seeks_decode_one_gop(vfr_video):
    sequential = [VideoDecoder(vfr_video).frame(i) for i in range(40)]
    reader = VideoDecoder(vfr_video)
    for i in (39, 3, 25, 12, 11, 0, 38, 13):
        np.testing.assert_array_equal(reader.frame(i), sequential[i])
    fresh = VideoDecoder(vfr_video)
    fresh.frame(38)
    assert fresh.decoded == 3  # frames 36, 37, 38: from the keyframe before it, not from the start


def test_frame_paths_inside_a_video_read_through_read_frame(vfr_video):
    path = video_frame_path(vfr_video, 17)
    assert path == vfr_video / "00017" and split_frame_path(path) == (vfr_video, 17)
    assert split_frame_path(vfr_video.parent / "00017") is None  # a frame path only inside a video
    assert read_number(read_frame(path)) == 17
    assert image_size(path) == (SIZE[1], SIZE[0])
    with pytest.raises(DataError, match=r"vfr.mp4: frame 40 is past the video's end: it has 40 frames"):
        read_frame(video_frame_path(vfr_video, 40))


def test_the_index_is_kept_in_the_cache_and_made_anew_for_a_replaced_file(tmp_path, isolated_cache):
    video = write_video(tmp_path / "clip.mkv", [numbered_frame(i) for i in range(6)], bframes=0)
    assert len(video_index(video)) == 6
    (cached,) = [
        p
        for p in (isolated_cache / "videos").rglob("index.json")
        if str(video) in p.read_text(encoding="utf-8")
    ]
    assert json.loads(cached.read_text(encoding="utf-8"))["pts"] == [0, 40, 80, 120, 160, 200]
    write_video(video, [numbered_frame(i) for i in range(9)], bframes=0)
    assert len(video_index(video)) == 9


def test_a_video_whose_name_the_locale_cannot_encode_is_indexed_and_read(tmp_path):
    """Under the C locale a non-ASCII name reaches Python surrogate-escaped: its cache key raised."""
    written = write_video(tmp_path / "clip.mkv", [numbered_frame(i) for i in range(6)], bframes=0)
    video = os.path.join(os.fsencode(tmp_path), b"vid\xc3\xa9o \xc3\xa9t\xc3\xa9.mkv")  # bytes: any locale
    os.rename(os.fsencode(written), video)
    script = (
        "import sys\nfrom frugalseg.data.io import read_frame\n"
        "from frugalseg.data.videos import video_index\n"
        "frame = read_frame(sys.argv[1] + '/00003'); print(len(video_index(sys.argv[1])), frame.shape)"
    )
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    env["FRUGALSEG_CACHE"] = str(tmp_path / "cache")
    done = subprocess.run([sys.executable, "-c", script, video], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.decode() == f"6 {(*SIZE, 3)}\n"


def test_a_header_that_claims_more_frames_than_the_file_holds_is_not_trusted(tmp_path):
    video = write_video(
        tmp_path / "clip.avi", [numbered_frame(i) for i in range(10)], codec="mpeg4", bframes=0
    )
    claim_avi_frames(video, 20)
    index = video_index(video)
    assert (len(index), index.header_frames) == (10, 20)
    assert [read_number(read_frame(video_frame_path(video, i))) for i in (9, 0, 5)] == [9, 0, 5]
    with pytest.raises(
        DataError, match=r"frame 15 is past the video's end: it has 10 frames .*header claims 20"
    ):
        read_frame(video_frame_path(video, 15))


def test_an_avi_with_b_frames_and_repeated_timestamps_is_read_from_its_start(tmp_path):
    video = write_video(tmp_path / "packed.avi", [numbered_frame(i) for i in range(10)], codec="mpeg4")
    index = video_index(video)
    assert not index.seekable and len(index) == 10  # counted by decoding: the muxer repeats a pts
    assert [read_number(VideoDecoder(video).frame(i)) for i in (9, 0, 4)] == [9, 0, 4]
    reader = VideoDecoder(video)
    assert [read_number(reader.frame(i)) for i in range(10)] == list(range(10))
    assert reader.decoded == 10


def test_a_folder_of_videos_with_masks_beside_them(tmp_path):
    write_video(tmp_path / "b10.mp4", [numbered_frame(i) for i in range(5)])
    write_video(tmp_path / "b9.webm", [numbered_frame(i) for i in range(4)], codec="libvpx-vp9", bframes=0)
    ids = np.zeros(SIZE, np.uint8)
    ids[20:40, 10:30] = 2
    palette_png(tmp_path / "Annotations" / "b10" / "frame_0.png", ids)
    palette_png(tmp_path / "Annotations" / "b10" / "frame_3.png", ids)
    assert detect_format(tmp_path) == "video"
    fmt = get_format("video", tmp_path)
    clips = fmt.clips("all")
    assert [(c.clip_id, len(c.frames)) for c in clips] == [("b9", 4), ("b10", 5)]  # natural order
    b10 = clips[1]
    assert b10.require_label(0, LabelKind.FINE).path.name == "frame_0.png" and not clips[0].labels
    assert sorted(fmt.ground_truth(b10)) == [0, 3]
    assert fmt.read_label(b10.require_label(0, LabelKind.FINE))[25, 15] == 1
    assert fmt.instance_ids(b10).max() == 2
    assert [read_number(read_frame(p)) for p in clips[0].frames] == [0, 1, 2, 3]


def test_a_plain_folder_of_frames_in_natural_order(tmp_path):
    frames = tmp_path / "my frames"
    frames.mkdir()
    for i in (10, 2, 1, 33):
        cv2.imwrite(str(frames / f"shot{i}.png"), cv2.cvtColor(numbered_frame(i), cv2.COLOR_RGB2BGR))
    masks = tmp_path / "masks"
    palette_png(masks / "shot2.png", np.ones(SIZE, np.uint8))
    assert detect_format(frames) == "video"
    fmt = VideoFormat(frames, masks=masks)
    (clip,) = fmt.clips("all")
    assert clip.clip_id == "my frames"
    assert [p.name for p in clip.frames] == ["shot1.png", "shot2.png", "shot10.png", "shot33.png"]
    assert [read_number(read_frame(p)) for p in clip.frames] == [1, 2, 10, 33]
    assert list(fmt.ground_truth(clip)) == [1] and not clip.labels  # frame 0 has no mask
    assert sorted(["f10", "f9", "F1"], key=natural_key) == ["F1", "f9", "f10"]


def _clip_folders(root: Path, names: tuple[str, ...] = ("b", "a10", "a2")) -> Path:
    """A folder of clip folders, each holding three frames, and a notes file beside them."""
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(3):
            frame = cv2.cvtColor(numbered_frame(i), cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(root / name / f"{i:05d}.jpg"), frame)
    (root / "notes.txt").write_text("my clips", encoding="utf-8")
    return root


def test_a_folder_of_clip_folders_says_how_to_read_them(tmp_path, capsys):
    """Format video reads one folder of frames; for a folder of such folders it says what does read them."""
    root = _clip_folders(tmp_path / "my clips")  # a space: the link command quotes it
    with pytest.raises(DataError) as caught:
        VideoFormat(root)
    assert str(caught.value) == (
        f"{root}: holds no video files (.mp4, .mov, .mkv, .avi, .webm) and no frame images "
        "(.jpg, .jpeg, .png); its sub-folders a2, a10, b hold frames, which looks like one clip per folder: "
        f"give --root one clip folder ({root / 'a2'}) to take that clip, or read them all DAVIS-style with "
        "--format davis and --root a new folder whose JPEGImages is this one "
        f"(mkdir R && ln -s '{root}' R/JPEGImages)"
    )
    coco = {"images": [{"id": 1, "file_name": "a10/00001.jpg", "width": SIZE[1], "height": SIZE[0]}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 8]}],
            "categories": [{"id": 1, "name": "object"}]}  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(coco), encoding="utf-8")
    argv = ["label", "import", str(tmp_path / "a.json"), "--tool", "coco", "--out", str(tmp_path / "out")]
    assert main([*argv, "--format", "video", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a10, b hold frames, which looks like one clip per folder" in err
    assert not (tmp_path / "out").exists()
    # the advice holds: one clip folder is a clip, and the linked layout reads every clip and takes the import
    assert [c.clip_id for c in VideoFormat(root / "a2").clips("all")] == ["a2"]
    linked = tmp_path / "R"
    linked.mkdir()
    (linked / "JPEGImages").symlink_to(root)
    clips = get_format("davis", linked).clips("all", labelled=False)
    assert [(c.clip_id, [p.name for p in c.frames]) for c in clips] == [
        (name, ["00000.jpg", "00001.jpg", "00002.jpg"]) for name in ("a10", "a2", "b")
    ]
    assert main([*argv, "--format", "davis", "--root", str(linked)]) == 0
    records = LabelStore(tmp_path / "out").records()
    assert [(r["clip_id"], r["offset"], r["kind"]) for r in records] == [("a10", 1, "boxes")]


def test_a_folder_of_neither_frames_nor_clip_folders_gets_no_hint(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no frame images \(\.jpg, \.jpeg, \.png\)$"):
        VideoFormat(tmp_path / "empty")
    (tmp_path / "empty" / "JPEGImages").mkdir()
    davis = r"\.png\); it holds JPEGImages/, a DAVIS-style data set: use --format davis \(or mose\)$"
    with pytest.raises(DataError, match=davis):
        VideoFormat(tmp_path / "empty")


def test_masks_past_the_end_or_of_another_size_are_problems(tmp_path):
    video = write_video(tmp_path / "clip.mp4", [numbered_frame(i) for i in range(5)])
    palette_png(tmp_path / "Annotations" / "clip" / "00000.png", np.ones(SIZE, np.uint8))
    palette_png(tmp_path / "Annotations" / "clip" / "00007.png", np.ones(SIZE, np.uint8))
    palette_png(tmp_path / "Annotations" / "clip" / "00002.png", np.ones((8, 8), np.uint8))
    _, problems = get_format("video", video).scan("all")
    assert sorted(str(p) for p in problems) == [
        f"{tmp_path}/Annotations/clip/00002.png: mask size 8×8 differs from the clip's 128×64",
        f"{tmp_path}/Annotations/clip/00007.png: mask of frame 7, past the end of clip.mp4: the video has "
        "5 frames (0…4, counted by demuxing)",
    ]


def test_a_mask_saved_among_jpeg_frames_is_a_problem_not_a_frame(tmp_path):
    """Read as a frame, ``00000_mask.png`` would be frame 1 and shift every frame after it."""
    frames = _clip_folders(tmp_path / "clips", ("mine",)) / "mine"
    palette_png(frames / "00000_mask.png", np.ones(SIZE, np.uint8))
    (frames / "00003.jpeg").write_bytes((frames / "00002.jpg").read_bytes())  # .jpeg is a .jpg
    _, problems = get_format("video", frames).scan("all")
    assert [str(p) for p in problems] == [
        f"{frames}/00000_mask.png: a .png among the folder's frames (4 .jpg and 1 .png): is it a frame? "
        "a mask or other image kept there is read as one and shifts every frame after it; move it out of the "
        "folder"
    ]
    assert (
        main(
            [
                "annotate",
                "propose",
                "--state",
                str(tmp_path / "s"),
                "--format",
                "video",
                "--root",
                str(frames),
            ]
        )
        == 2
    )
    assert not (tmp_path / "s").exists()


def test_a_truncated_video_names_the_file_and_the_frame_cut_off(tmp_path):
    video = write_video(tmp_path / "whole.mp4", [numbered_frame(i) for i in range(20)])
    cut = cut_video(video, tmp_path / "cut.mp4")
    with pytest.raises(
        DataError, match=r"cut.mp4: the file ends early or is damaged \(truncated\): frame \d+ "
    ):
        video_index(cut)
    # fixed noise: some random bytes parse as a container that holds no video stream (another message)
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DataError, match=r"noise.mp4: cannot open video"):
        video_index(tmp_path / "noise.mp4")


def test_the_cvat_sample_video(shared_data):
    video = shared_data / "tool_exports" / "cvat_dataset" / "test.mp4"
    (clip,) = get_format("video", video).clips("all")
    index = video_index(video)
    assert (clip.clip_id, len(clip.frames), index.codec, index.width, index.height) == (
        "test",
        30,
        "mpeg4",
        240,
        180,
    )
    sequential = VideoDecoder(video)
    frames = [sequential.frame(i) for i in range(30)]
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:], strict=False))
    for i in (29, 4, 17, 0):
        np.testing.assert_array_equal(read_frame(clip.frames[i]), frames[i])


def test_car_shadow_frames_come_out_in_order_and_match_the_jpeg_frames(shared_data):
    video = shared_data / "video_dev" / f"{CAR}.mp4"
    jpegs = sorted((shared_data / "davis_dev" / "JPEGImages" / "480p" / CAR).glob("*.jpg"))
    decoder = VideoDecoder(video)
    frames = [decoder.frame(i) for i in range(len(decoder))]
    assert len(frames) == len(jpegs) == 40
    for i, jpeg in enumerate(jpegs):
        truth = read_frame(jpeg)
        own = _psnr(frames[i], truth)
        assert own >= 35, f"frame {i}: PSNR {own:.1f} dB"
        for j in (i - 1, i + 1):  # in order: each frame is nearer its own JPEG than its neighbours'
            if 0 <= j < 40:
                assert own > _psnr(frames[j], truth)
    for i in (33, 7, 21, 0, 39):
        np.testing.assert_array_equal(VideoDecoder(video).frame(i), frames[i])


def _mean_j(report: Path) -> dict[int, float]:
    rows = json.loads(report.read_text(encoding="utf-8"))["rows"]
    return {row["offset"]: row["j"] for row in rows}


@pytest.mark.slow
def test_flow_propagation_from_the_mp4_scores_as_from_the_jpeg_folder(shared_data, tmp_path):
    masks = shared_data / "davis_dev" / "Annotations" / "480p" / CAR
    scores = {}
    for name, root in (
        ("mp4", shared_data / "video_dev" / f"{CAR}.mp4"),
        ("jpeg", shared_data / "davis_dev" / "JPEGImages" / "480p" / CAR),
    ):
        store = tmp_path / name
        common = ["--format", "video", "--root", str(root), "--masks", str(masks), "--split", "all"]
        assert (
            main(["label", "propagate", *common, "--offsets", "1,5,10", "--out", str(store), "--no-progress"])
            == 0
        )
        assert main(["label", "report", str(store)]) == 0
        scores[name] = _mean_j(store / "report" / "report.json")
    assert sorted(scores["mp4"]) == [1, 5, 10]
    for offset in (1, 5, 10):
        assert abs(scores["mp4"][offset] - scores["jpeg"][offset]) <= 0.01, scores
    assert scores["mp4"][10] > 0.85


def test_a_copied_video_is_the_same_clip(tmp_path, vfr_video):
    copy = tmp_path / "copy.mp4"
    shutil.copy(vfr_video, copy)
    assert read_number(read_frame(video_frame_path(copy, 30))) == 30


def test_more_videos_than_open_decoders_read_on_threads_give_every_frame(tmp_path):
    """Twelve videos read at once by eight threads through a cache of four decoders: a decoder evicted while
    another thread decodes with it is closed only when that thread is done, so every frame comes out whole."""
    from concurrent.futures import ThreadPoolExecutor

    from frugalseg.data import videos

    frames = [[numbered_frame(20 * v + i) for i in range(20)] for v in range(12)]
    paths = [write_video(tmp_path / f"v{v}.mp4", video) for v, video in enumerate(frames)]
    assert len(paths) > videos._OPEN_DECODERS
    reads = [(v, i) for i in (19, 0, 7, 13, 2, 18) for v in range(12)] * 4

    def read(item: tuple[int, int]) -> int:
        return read_number(read_frame(video_frame_path(paths[item[0]], item[1])))

    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(read, reads))
    assert numbers == [20 * v + i for v, i in reads]


def test_a_matroska_file_cut_off_is_reported_and_a_whole_one_is_not(tmp_path, caplog):
    """A cut MKV ends on a whole cluster (no corrupt packet, no frame count): only its duration tells."""
    whole = write_video(tmp_path / "whole.mkv", [numbered_frame(i) for i in range(20)])
    cut = cut_video(whole, tmp_path / "cut.mkv", keep=0.5)
    with caplog.at_level(logging.WARNING, logger="frugalseg.data.videos"):
        assert len(video_index(whole)) == 20
        assert not [r for r in caplog.records if r.name == "frugalseg.data.videos"]
        frames = len(video_index(cut))
    assert 0 < frames < 20
    (message,) = [r.getMessage() for r in caplog.records if r.name == "frugalseg.data.videos"]
    assert message.startswith(f"{cut}: the file may end early (truncated): its {frames} frames run ")
    assert message.split(" of the ")[1].startswith("0.80 s its header gives")  # 20 frames at 25 fps


def test_two_frames_of_one_name_but_their_extension_are_refused(tmp_path, capsys):
    """``a.jpg`` and ``a.jpeg``: one label file had held both frames' labels, the second's overwriting."""
    frames = tmp_path / "shots"
    frames.mkdir()
    for name in ("0.jpg", "a.jpg", "a.jpeg", "b.jpg"):
        cv2.imwrite(str(frames / name), cv2.cvtColor(numbered_frame(1), cv2.COLOR_RGB2BGR))
    expected = f"{frames / 'a.jpg'}: shares its name with a.jpeg but for the extension"
    with pytest.raises(DataError, match=expected.replace(".", r"\.")):
        VideoFormat(frames).frame_paths("shots")
    assert main(["data", "check", str(frames), "--format", "video"]) == 1  # one problem found
    assert expected in capsys.readouterr().out
