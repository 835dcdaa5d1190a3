"""`frugalseg annotate simulate` end to end on a tiny DAVIS tree, and its refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data.fake_davis import SQUARES_FRAMES, squares, write_davis, write_moving_squares

from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    return write_moving_squares(tmp_path_factory.mktemp("davis"))


def simulate(root: Path, out: Path, *options: str) -> int:
    return main(
        [
            "annotate",
            "simulate",
            "--root",
            str(root),
            "--split",
            "val",
            "--out",
            str(out),
            "--no-progress",
            *options,
        ]
    )


def test_simulate_writes_curves_a_plot_and_label_stores(davis: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = simulate(
        davis, out, "--budget-hours", "0.1", "--frames", "random,uniform", "--types", "mask", "--seeds", "2"
    )
    assert code == 0
    curves = json.loads((out / "curves.json").read_text(encoding="utf-8"))
    assert set(curves["strategies"]) == {"random-mask", "uniform-mask"}
    random = curves["strategies"]["random-mask"]
    assert [r["seed"] for r in random["runs"]] == [0, 1]
    uniform = curves["strategies"]["uniform-mask"]
    # squares-a has 2 objects (160 s per frame drawn), squares-b 1 (80 s): the first point is frame 0 of both
    assert uniform["mean"]["hours"][0] == pytest.approx(240 / 3600, abs=1e-6)
    assert all(0 <= v <= 1 for v in uniform["mean"]["jf"])
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    store = LabelStore(out / "labels" / "uniform-mask-seed0")
    records = store.records()
    assert len(records) == 2 * SQUARES_FRAMES
    frame0 = [r for r in records if r["clip_id"] == "squares-a" and r["offset"] == 0][0]
    assert frame0["kind"] == "fine"
    import cv2

    label = cv2.imread(str(store.root / frame0["path"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(label, (squares(0, 0) > 0).astype(np.uint8))  # DAVIS's two classes
    # the objects beside it, as a session's export keeps them (`label export` tells them apart)
    ids = cv2.imread(
        str(store.root / frame0["path"].replace("_labelTrainIds", "_instanceIds")), cv2.IMREAD_UNCHANGED
    )
    assert np.array_equal(ids, squares(0, 0))
    assert "uniform-mask: J&F" in capsys.readouterr().out
    # a rerun resumes: nothing changes
    before = (out / "curves.json").read_bytes()
    assert (
        simulate(
            davis,
            out,
            "--budget-hours",
            "0.1",
            "--frames",
            "random,uniform",
            "--types",
            "mask",
            "--seeds",
            "2",
        )
        == 0
    )
    assert (out / "curves.json").read_bytes() == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--budget-hours", "0"], "budget must be a number of hours > 0"),
        (["--budget-hours", "-1"], "budget must be a number of hours > 0"),
        (["--budget-hours", "1", "--frames", "best"], "unknown frame selector 'best'"),
        (["--budget-hours", "1", "--types", "scribbles"], "unknown annotation type policy 'scribbles'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    davis: Path, tmp_path: Path, capsys, options, message
) -> None:
    out = tmp_path / "run"
    assert simulate(davis, out, *options) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_data_without_ground_truth_on_every_frame_is_refused(tmp_path: Path, capsys) -> None:
    masks = {"seq": [squares(t, 1) for t in range(4)]}
    root = write_davis(tmp_path / "davis", masks)
    for t in (1, 2, 3):
        (root / "Annotations" / "480p" / "seq" / f"{t:05d}.png").unlink()
    out = tmp_path / "run"
    assert main(["annotate", "simulate", "--root", str(root), "--budget-hours", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs ground truth on every frame; 3 of the 4 frames" in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--engine", "sam2"], "the sam2 engine needs a SAM 2 checkpoint file"),
        (
            ["--engine", "sam2", "--sam2-checkpoint", "MISSING"],
            "MISSING: SAM 2 checkpoint file does not exist",
        ),
        (["--engine", "stm"], "the stm engine needs trained STM weights"),
        (["--click-model", "sam2"], "--sam2-checkpoint"),
    ],
)
def test_a_network_without_its_weights_is_refused_before_anything_is_written(
    davis: Path, tmp_path: Path, capsys, options, message
) -> None:
    out = tmp_path / "run"
    options = [o.replace("MISSING", str(tmp_path / "none.pt")) for o in options]
    assert simulate(davis, out, "--budget-hours", "0.1", *options) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.replace("MISSING", str(tmp_path / "none.pt")) in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_two_processes_share_the_videos_and_give_the_curves_of_one(davis: Path, tmp_path: Path) -> None:
    """`annotate simulate --devices 2` on the CPU: each video's loops in one process, the same files."""
    import os
    import subprocess
    import sys

    options = ["--budget-hours", "0.1", "--frames", "uniform,uncertainty", "--types", "mask"]
    assert simulate(davis, tmp_path / "one", *options) == 0
    command = [
        sys.executable,
        "-m",
        "frugalseg",
        "annotate",
        "simulate",
        "--root",
        str(davis),
        "--split",
        "val",
    ]
    command += [
        "--out",
        str(tmp_path / "two"),
        "--no-progress",
        *options,
        "--devices",
        "2",
        "--accelerator",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [line for line in done.stdout.splitlines() if line.startswith("uniform-mask: J&F")]
    assert len(reports) == 1, done.stdout  # rank 0 alone summarises
    assert (tmp_path / "two" / "curves.json").read_bytes() == (tmp_path / "one" / "curves.json").read_bytes()
    for name in ("uniform-mask-seed0", "uncertainty-mask-seed0"):
        one, two = (
            LabelStore(tmp_path / "one" / "labels" / name),
            LabelStore(tmp_path / "two" / "labels" / name),
        )
        keys = [(r["clip_id"], r["offset"]) for r in two.records()]
        assert len(keys) == len(set(keys)) == 2 * SQUARES_FRAMES  # every label once
        pngs = {r["path"]: (two.root / r["path"]).read_bytes() for r in two.records()}
        assert pngs == {r["path"]: (one.root / r["path"]).read_bytes() for r in one.records()}


def test_train_qnet_then_select_frames_with_it(davis: Path, tmp_path: Path, capsys) -> None:
    """`annotate train-qnet` on a simulated run, its samples kept; `--diversity-features qnet` reads it."""
    from frugalseg.zoo import load_quality_net

    run = tmp_path / "run"
    assert simulate(davis, run, "--budget-hours", "0.1", "--frames", "uniform", "--max-frames", "6") == 0
    qnet, samples = tmp_path / "qnet.safetensors", tmp_path / "samples.npz"
    train = ["annotate", "train-qnet", "--runs", str(run), "--samples", str(samples), "--input-size", "32"]
    train += ["--epochs", "1", "--lr", "0.01", "--val-videos", "squares-b", "--out", str(qnet)]
    assert main(train) == 0
    out = capsys.readouterr().out
    assert "held out (squares-b" in out and "bin accuracy" in out
    net, meta = load_quality_net(qnet)
    assert net.input_size == 32 and meta["videos"] == ["squares-a"]
    made = samples.stat().st_mtime_ns
    assert main(train) == 0 and samples.stat().st_mtime_ns == made  # the samples are read, not made again
    assert (
        main([*train[:-2], "--flow-preset", "fast", "--out", str(tmp_path / "other.safetensors")]) == 0
    )  # read
    samples.unlink()
    assert main([*train[:-2], "--flow-preset", "fast", "--out", str(tmp_path / "other.safetensors")]) == 2
    assert "was simulated with engine" in capsys.readouterr().err
    chosen = tmp_path / "chosen"
    options = ["--budget-hours", "0.1", "--frames", "diversity", "--max-frames", "6"]
    assert (
        simulate(davis, chosen, *options, "--diversity-features", "qnet", "--diversity-weights", str(qnet))
        == 0
    )
    recorded = json.loads((chosen / "run.json").read_text(encoding="utf-8"))["diversity"]
    assert recorded["features"] == "qnet" and recorded["weights"] == "qnet.safetensors"
    assert len(recorded["weights_sha256"]) == 64


def test_simulate_with_the_box_type_books_boxes_and_their_clicks(davis: Path, tmp_path: Path) -> None:
    """``--types box``: after each video's first mask every frame is annotated with a box per object
    and up to 3 corrective clicks, each object's seconds 7 per box + 1.5 per click (+ 1 s per frame)."""
    out = tmp_path / "run"
    options = ["--budget-hours", "0.1", "--frames", "uniform", "--types", "box", "--max-frames", "6"]
    assert simulate(davis, out, *options) == 0
    states = sorted((out / "runs" / "uniform-box" / "seed0").glob("*/state.json"))
    assert len(states) == 2
    boxed = 0
    for path in states:
        state = json.loads(path.read_text(encoding="utf-8"))
        first, *rest = state["history"]
        assert first["kind"] == "mask" and rest and all(r["kind"] == "box" for r in rest)
        for record in rest:
            made = [a for a in state["annotations"] if a["iteration"] == record["iteration"]]
            objects = {a["object"] for a in made}
            clicks = sum(a["clicks"] for a in made)
            if objects == {0}:  # no object on the frame: a look
                assert record["seconds"] == 1.0
                continue
            assert record["seconds"] == pytest.approx(7.0 * len(objects) + 1.5 * clicks + 1.0)
            boxed += len(objects)
    assert boxed > 0
