"""`frugalseg annotate semantic` end to end on a tiny synthetic clip: curves, plot, label stores and contact
sheets are written; a --config file sets options; bad input is one line and writes nothing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from active.tiny_semantic import tiny_semantic_student
from frugalseg.active.semantic import samples, simulate
from frugalseg.active.semantic.loop import read_video
from frugalseg.cli import annotate_semantic, main
from frugalseg.cli.annotate_semantic import register_semantic
from frugalseg.data.formats import generate_synthetic_streets
from frugalseg.zoo import ModelConfig, register_model, unregister_model

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def student():
    register_model(tiny_semantic_student, config=ModelConfig())
    yield "tiny_semantic_student"
    unregister_model("tiny_semantic_student")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return generate_synthetic_streets(
        tmp_path_factory.mktemp("streets") / "data", {"val": 1}, size=(48, 64), num_frames=20
    )


@pytest.mark.slow
def test_annotate_semantic_writes_curves_stores_and_contact_sheets(student, root, tmp_path, capsys):
    config = tmp_path / "small.yaml"
    config.write_text(
        f"student: {student}\nepochs: 1\nlr: 0.05\nbudget_clicks_percent: [40]\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--config", str(config), "--root", str(root), "--max-frames", "3"]
    argv += ["--granularities", "frame,rectangle", "--rect-size", "16", "--selectors", "random"]
    argv += ["--iterations", "2", "--accelerator", "cpu", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "frame-random b40 synthtown_000000_000019: mIoU" in printed and "flow propagation mIoU" in printed
    # each of the 3 frames is about a third of the clicks: 2 iterations label 2 frames, over the 40 % budget
    assert "at 67.00 % clicks (over the 40 %: a sample per iteration at least); flow" in printed
    curves = json.loads((out / "curves.json").read_text(encoding="utf-8"))
    assert sorted(curves["strategies"]) == ["frame-random", "rectangle-random"]
    frame = curves["strategies"]["frame-random"]["points"]
    assert [p["iteration"] for p in frame] == [0, 1] and all(p["baseline"] is not None for p in frame)
    assert curves["strategies"]["rectangle-random"]["points"][0]["baseline"] is None
    assert [row["miou"] for row in curves["table3"]] == [0.8, 0.85, 0.9]
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")
    for name in ("frame-random-b40", "rectangle-random-b40"):
        records = [
            json.loads(line)
            for line in (out / "labels" / name / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        assert [r["offset"] for r in records] == [-19, -18, -17]
        assert all(r["kind"] == "pseudo" and r["engine"] == "hvsa" for r in records)
        assert (out / "labels" / f"{name}_contact_sheet.png").is_file()
    # a rerun resumes every finished loop and prints the same figures
    assert main(argv) == 0
    assert capsys.readouterr().out == printed
    # a rerun of one strategy summarises every strategy finished in the folder, and says so
    written = (out / "curves.json").read_bytes(), (out / "curves.png").read_bytes()
    assert main([*argv, "--granularities", "frame"]) == 0
    assert ((out / "curves.json").read_bytes(), (out / "curves.png").read_bytes()) == written
    assert f"the curves also hold rectangle-random b40, finished in {out} by an earlier run\n" in (
        capsys.readouterr().out
    )
    # `label report` finds the ground truth from the store's run.json: a frame the person labelled is exact
    store = out / "labels" / "frame-random-b40"
    assert main(["label", "report", str(store), "--no-progress"]) == 0
    report = json.loads((store / "report" / "report.json").read_text(encoding="utf-8"))
    assert (report["format"], report["split"], report["settings"]["loop"]["budget_percent"]) == (
        "synthetic",
        "val",
        40,
    )
    labelled = [f for f in report["per_clip"] if f["source_offset"] == f["offset"]]
    assert labelled and all(f["j"] == 1.0 for f in labelled)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "--granularities",
            "frame,hexagon",
            "--granularities: unknown sample granularity 'hexagon'; choose from frame, rectangle, superpixel",
        ),
        (
            "--selectors",
            "random,smart",
            "--selectors: unknown sample selector 'smart'; "
            "choose from random, uniform, diversity, uncertainty",
        ),
        ("--max-frames", "1", "error: --max-frames: "),  # the loop's own name ("frames") had been shown
        ("--max-frames", "1", "needs a video of at least 2 frames, got 1"),
        (
            "--rect-size",
            "100",
            "error: --rect-size: rectangles of 100×100 pixels are larger than the 64×48 frame",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(student, root, tmp_path, capsys, option, value, message):
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--root", str(root), "--student", student, "--out", str(out)]
    argv += ["--granularities", "rectangle", option, value]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def _changed_truth(root: Path, tmp_path: Path, change) -> tuple[Path, Path]:
    """A copy of ``root`` whose sequence ground truth ``change(path)`` rewrites; the copy, frame 2's file."""
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(root, copy)
    labels = sorted((copy / "gtFine_sequence" / "val" / "synthtown").glob("*_labelTrainIds.png"))
    for path in labels:
        change(path)
    return copy, labels[2]


def test_ground_truth_of_another_size_all_void_or_too_few_frames_is_refused_before_any_file(
    student, root, tmp_path, capsys
):
    """A label of another size was stretched to its frame under --scale (the run went on), all-void ground
    truth ended in a ZeroDivisionError, and a failed read left run.json, which then refused other settings.
    Iterations past the frames failed after training the ones before, blaming the budget."""
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--student", student, "--out", str(out), "--granularities", "frame"]

    def halve_frame_2(path: Path) -> None:
        if path.name.endswith("000002_gtFine_labelTrainIds.png"):
            cv2.imwrite(str(path), cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[::2, ::2])

    small, label = _changed_truth(root, tmp_path / "small", halve_frame_2)
    assert main([*argv, "--root", str(small), "--scale", "0.5"]) == 2
    assert f"error: {label}: ground truth of 32×24, but its frame " in capsys.readouterr().err
    void, _ = _changed_truth(
        root, tmp_path / "void", lambda p: cv2.imwrite(str(p), np.full((48, 64), 255, np.uint8))
    )
    assert main([*argv, "--root", str(void)]) == 2
    assert "its ground truth labels no pixel (every one void)" in capsys.readouterr().err
    assert main([*argv, "--root", str(root), "--max-frames", "3", "--iterations", "4"]) == 2
    said = "error: --iterations: 4, but synthtown_000000_000019 has 3 frames and each iteration of a frame "
    assert capsys.readouterr().err.strip().endswith(said + "loop labels one at least: give at most 3")
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--budget-clicks-percent", "10,150", "each budget must lie in 0 < b ≤ 100 (%), got 150"),
        ("--scale", "4", "must lie in 0 < scale ≤ 1 (0.5 halves each side), got 4"),
    ],
)
def test_a_budget_or_scale_out_of_range_is_refused_before_the_data_are_read(
    student, root, tmp_path, capsys, option: str, value: str, problem: str
) -> None:
    """Both had been refused after the data were read, named ``budget`` and ``scale``."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as ended:
        main(
            [
                "annotate",
                "semantic",
                "--root",
                str(root),
                "--student",
                student,
                "--out",
                str(out),
                option,
                value,
            ]
        )
    assert ended.value.code == 2
    assert f"argument {option}: {problem}" in capsys.readouterr().err
    assert not out.exists()


def test_a_gpu_accelerator_without_a_gpu_is_one_line_and_writes_nothing(
    student, root, tmp_path, capsys, monkeypatch
) -> None:
    """Lightning had said so in a traceback, after the data were read, with run.json left behind."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--root", str(root), "--student", student, "--out", str(out)]
    assert main([*argv, "--accelerator", "gpu"]) == 2
    assert capsys.readouterr().err == (
        "error: --accelerator: 'gpu', but this machine has no CUDA GPU torch can use: give cpu (or auto)\n"
    )
    assert not out.exists()
    with pytest.raises(SystemExit):
        main([*argv, "--accelerator", "tpu"])
    assert "argument --accelerator: invalid choice: 'tpu'" in capsys.readouterr().err


def test_a_wrong_name_in_a_config_file_is_refused_naming_the_choices(student, root, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("selectors: [diversity, smart]\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--config", str(config), "--root", str(root), "--out", str(out)]
    assert main(argv + ["--student", student]) == 2
    err = capsys.readouterr().err
    assert (
        "--selectors: unknown sample selector 'smart'; choose from " + ", ".join(samples.SAMPLE_SELECTORS)
        in err
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("epochs: 0", "epochs (--epochs): "),
        ("accelerator: tpu", "accelerator (--accelerator): 'tpu' is not one of auto, cpu, gpu, cuda, mps"),
        ("no_baseline: 1", "no_baseline: true or false (the flag --no-baseline), got 1"),
        ("iterations: null", "iterations (--iterations): expected a value, got null"),
    ],
)
def test_a_config_files_values_are_checked_as_the_command_lines(root, tmp_path, capsys, line, said):
    """A config's values had skipped the options' types and choices: ``epochs: 0`` ran, ``accelerator: tpu``
    ended in Lightning's traceback after ``run.json`` was written, ``max_frames: "3"`` in a TypeError."""
    config = tmp_path / "bad.yaml"
    config.write_text(line + "\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        main(["annotate", "semantic", "--config", str(config), "--root", str(root), "--out", str(out)])
    assert exited.value.code == 2
    assert f"--config {config}: {said}" in capsys.readouterr().err
    assert not out.exists()


def test_a_config_files_scalars_and_text_numbers_read_as_on_the_command_line(tmp_path):
    """``granularities: frame`` had become the letters f, r, a, m, e; ``max_frames: "3"`` stayed text."""
    parser = argparse.ArgumentParser(prog="frugalseg")
    register_semantic(parser.add_subparsers(dest="command"))
    config = tmp_path / "loop.yaml"
    config.write_text('granularities: frame\nmax_frames: "3"\nbudget_clicks_percent: 10\n', encoding="utf-8")
    args = parser.parse_args(["semantic", "--config", str(config)])
    assert (args.granularities, args.max_frames, args.budget_clicks_percent) == (["frame"], 3, [10.0])
    config.write_text("max_frames: null\n", encoding="utf-8")  # an option whose default is none: every frame
    assert parser.parse_args(["semantic", "--config", str(config)]).max_frames is None


def test_a_config_file_that_is_not_text_is_one_line_naming_it(root, tmp_path, capsys):
    config = tmp_path / "picture.yaml"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")  # it had ended in a UnicodeDecodeError traceback
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        main(["annotate", "semantic", "--config", str(config), "--root", str(root), "--out", str(out)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"--config {config}: cannot read it ('utf-8' codec can't decode byte 0x89" in err
    assert not out.exists()


def test_the_cli_choices_are_the_library_names():
    """The command offers (and its help lists) exactly the granularities and selectors the library knows."""
    assert annotate_semantic.GRANULARITIES is samples.GRANULARITIES
    assert annotate_semantic.SAMPLE_SELECTORS is samples.SAMPLE_SELECTORS
    commands = argparse.ArgumentParser(prog="frugalseg").add_subparsers(dest="command")
    register_semantic(commands)
    helps = {action.dest: action.help for action in commands.choices["semantic"]._actions}
    assert helps["granularities"].endswith(": " + ", ".join(samples.GRANULARITIES))
    assert helps["selectors"].endswith(": " + ", ".join(samples.SAMPLE_SELECTORS))


@pytest.mark.parametrize(
    "config", sorted((REPO / "configs" / "annotate").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_loop_configs_set_known_options_and_show_their_command(config):
    """Each option file under configs/annotate/ names only `annotate semantic` options, which the
    parser takes as given; its header shows the command that uses it."""
    parser = argparse.ArgumentParser(prog="frugalseg")
    annotate = parser.add_subparsers(dest="group").add_parser("annotate").add_subparsers(dest="command")
    register_semantic(annotate)
    values = yaml.safe_load(config.read_text(encoding="utf-8"))
    args = parser.parse_args(["annotate", "semantic", "--config", str(config)])
    for key, value in values.items():
        expected = [float(v) for v in value] if key == "budget_clicks_percent" else value
        assert getattr(args, key) == expected, key
    assert f"frugalseg annotate semantic --config configs/annotate/{config.name}" in config.read_text(
        encoding="utf-8"
    )


def test_the_format_is_the_layout_the_root_has(student, tmp_path, capsys, shared_data):
    """Without --format the root's layout is read, as the other commands do (it was always synthetic)."""
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--student", student, "--out", str(out), "--max-clips", "1"]
    assert main([*argv, "--root", str(shared_data / "cityscapes_dev")]) == 2
    # read as Cityscapes: its one manual frame is not ground truth on every frame (not "synthetic.json");
    # the frame without any is named by its file (it was "aachen_000000_000019 frame 0")
    frames = shared_data / "cityscapes_dev" / "leftImg8bit_sequence" / "train" / "aachen"
    assert capsys.readouterr().err == (
        f"error: {frames / 'aachen_000000_000000_leftImg8bit.png'}: no ground truth: "
        "the simulated annotator and the click cost need it on every frame\n"
    )
    assert not out.exists()


@pytest.fixture(scope="module")
def camvid_root(tmp_path_factory):
    """A SegNet-layout CamVid of two sequences of three labelled 48×64 stills each."""
    root = tmp_path_factory.mktemp("camvid")
    (root / "train").mkdir()
    (root / "trainannot").mkdir()
    rng = np.random.default_rng(0)
    for sequence in ("seqa", "seqb"):
        for number in range(3):
            label = np.zeros((48, 64), np.uint8)
            label[:, 20 + 4 * number :] = 3  # road, moving right
            frame = (label[..., None] * 40 + rng.integers(0, 30, (48, 64, 3))).astype(np.uint8)
            cv2.imwrite(str(root / "train" / f"{sequence}_{number:06d}.png"), frame)
            cv2.imwrite(str(root / "trainannot" / f"{sequence}_{number:06d}.png"), label)
    return root


@pytest.mark.parametrize(("layout", "data"), [("camvid", "streets"), ("cityscapes", "camvid")])
def test_a_format_the_root_does_not_have_is_one_line(root, camvid_root, tmp_path, capsys, layout, data):
    """It was an IndexError traceback (no split of the layout: `fmt.splits()[0]`)."""
    folder = {"streets": root, "camvid": camvid_root}[data]
    out = tmp_path / "out"
    assert main(["annotate", "semantic", "--root", str(folder), "--format", layout, "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: {folder}: no split of the {layout} layout found, so no frames to annotate "
        f"(--format {layout})\n"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("tmanet_r18", "tmanet_r18 is a 3-frame video model"),
        ("tdnet_td2_psp18_small", "tdnet_td2_psp18_small is a 2-frame video model"),
        ("stm_r18", "stm_r18 is an object-segmentation model"),
        ("hrnet", "unknown model 'hrnet'"),
    ],
)
def test_a_student_the_loop_cannot_fine_tune_is_refused_first(student, root, tmp_path, capsys, name, problem):
    """Video and VOS students crashed after run.json and flows/ were written, and the folder was spoilt."""
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--root", str(root), "--student", name, "--max-frames", "2"]
    assert main([*argv, "--epochs", "1", "--accelerator", "cpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --student: {problem}; the loop fine-tunes single-frame semantic students")
    usable = err.strip().rpartition(": ")[2].split(", ")
    assert "hrnetv2_w48" in usable and student in usable
    assert not any(name.startswith(("tmanet", "tdnet", "stm")) for name in usable)
    assert not out.exists()


def test_without_root_the_loop_runs_on_the_synthetic_streets(student, root, tmp_path, capsys, monkeypatch):
    """Its --help said so, and the command refused to start: "--root is required"."""
    from frugalseg.data.formats import synthetic

    made = []
    monkeypatch.setattr(synthetic, "default_synthetic_root", lambda: root)
    monkeypatch.setattr(synthetic, "generate_synthetic_streets", lambda folder: made.append(folder) or folder)
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--student", student, "--accelerator", "cpu", "--out", str(out)]
    assert main([*argv, "--split", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert made == [root] and err.startswith(f"no --root: the synthetic street clips in {root}\nerror: ")
    assert "nosuch" in err and not out.exists()
    assert main([*argv, "--format", "cityscapes"]) == 2
    assert (
        capsys.readouterr().err
        == "error: root: --format cityscapes reads a data set: give its folder as --root\n"
    )
    assert made == [root]  # nothing generated for it


def test_out_inside_the_data_set_is_refused(student, root, tmp_path, capsys):
    out = root / "hvsa"
    assert main(["annotate", "semantic", "--root", str(root), "--student", student, "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: --out: {out} is inside the data set folder {root}: labels never go into a data set; "
        "give a label store folder outside it\n"
    )
    assert not out.exists()


@pytest.mark.slow
def test_camvid_clips_of_one_sequence_are_one_video_read_when_its_loops_run(
    student, camvid_root, tmp_path, capsys, monkeypatch
):
    """Each CamVid still anchors a clip over its whole sequence: 2 clips were the same 2 stills twice,
    and every clip's video was read before the first loop ran."""
    events: list[tuple[str, str]] = []

    def reading(fmt, clip, **sizes):
        events.append(("read", clip.clip_id))
        return read_video(fmt, clip, **sizes)

    monkeypatch.setattr(simulate, "read_video", reading)
    monkeypatch.setattr(annotate_semantic, "_report", lambda loop: events.append(("ran", loop.video.name)))
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--root", str(camvid_root), "--student", student, "--max-frames", "2"]
    argv += ["--epochs", "1", "--iterations", "1", "--budget-clicks-percent", "40", "--no-baseline"]
    argv += ["--selectors", "random,uniform", "--accelerator", "cpu", "--out", str(out)]
    assert main([*argv, "--max-clips", "2"]) == 0
    assert events == [
        ("read", "seqa_000000"),
        ("ran", "seqa_000000"),
        ("ran", "seqa_000000"),
        ("read", "seqb_000000"),
        ("ran", "seqb_000000"),
        ("ran", "seqb_000000"),
    ]
    curves = json.loads((out / "curves.json").read_text(encoding="utf-8"))
    assert curves["videos"] == ["seqa_000000", "seqb_000000"]
    capsys.readouterr()
    # naming two clips of one sequence names one video twice
    assert main([*argv[:-1], str(tmp_path / "named"), "--clips", "seqb_000000,seqa_000000,seqb_000002"]) == 2
    assert capsys.readouterr().err == (
        "error: --clips: seqb_000002 reads the same frames as another clip named: name one clip per video\n"
    )
    assert not (tmp_path / "named").exists()


def test_an_empty_split_is_named_not_an_option_never_given(student, tmp_path, capsys):
    """It had said "--clips: no clip to annotate" to a person who gave no --clips."""
    root = tmp_path / "camvid"
    for folder in ("val", "valannot"):
        (root / folder).mkdir(parents=True)
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--format", "camvid", "--root", str(root), "--split", "val"]
    assert main([*argv, "--student", student, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --split: split 'val' of {root} holds no clip to annotate"
    )
    assert not out.exists()


def test_a_frame_loop_resumes_whatever_the_rectangle_and_superpixel_options(student, root, tmp_path, capsys):
    """A frame loop's state records --rect-size and --segments (so does its label store), and a rerun without
    them had been refused ("made with other settings (loop.granularity.size 30 then → 40 now)")."""
    out = tmp_path / "out"
    argv = ["annotate", "semantic", "--root", str(root), "--student", student, "--max-frames", "3"]
    argv += ["--epochs", "1", "--iterations", "1", "--granularities", "frame", "--selectors", "random"]
    argv += ["--budget-clicks-percent", "40", "--no-baseline", "--accelerator", "cpu", "--out", str(out)]
    assert main([*argv, "--rect-size", "30", "--segments", "50"]) == 0
    first = capsys.readouterr().out
    (state,) = out.glob("runs/frame-random/*/*/state.json")
    saved = state.read_bytes()
    assert main(argv) == 0
    assert capsys.readouterr().out == first
    assert state.read_bytes() == saved
    # a rectangle loop is cut by its size: another is refused
    rectangles = [*argv[:-1], str(tmp_path / "rect"), "--granularities", "rectangle", "--rect-size", "16"]
    assert main(rectangles) == 0
    capsys.readouterr()
    assert main([*rectangles[:-1], "24"]) == 2
    assert "loop.granularity.size 16 then → 24 now" in capsys.readouterr().err
