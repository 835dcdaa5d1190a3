"""`frugalseg annotate propose` / `annotate add` for a real person: known states, known proposals, refusals.

The data are the two moving-squares videos of `data.fake_davis` (10 frames of 64×48; squares-a
holds objects 1 and 2, squares-b object 1) with their ground truth deleted: a person's data.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import grey_png, palette_png, squares, write_moving_squares

from frugalseg.active.objects.session.given import GivenAnnotation
from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.active.objects.simulation.annotation_types import GivenClick, annotate_given_clicks
from frugalseg.active.objects.state import Annotation, IterationRecord, VideoState
from frugalseg.active.objects.tools.click_models import GrabCutClicks
from frugalseg.active.objects.tools.grabcut import local_grabcut_clicks
from frugalseg.autolabel.flow_options import FlowOptions
from frugalseg.cli import main
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import read_frame
from frugalseg.errors import ConfigError, DataError
from frugalseg.options import Choice

pytestmark = pytest.mark.usefixtures("one_cv_thread")


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    root = write_moving_squares(tmp_path_factory.mktemp("davis"))
    shutil.rmtree(root / "Annotations")
    return root


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """What the person made: id masks of frames 0 and 9 of squares-a, object 1 alone on frame 9, …"""
    folder = tmp_path_factory.mktemp("made")
    palette_png(folder / "a0.png", squares(0, 0))
    palette_png(folder / "a9.png", squares(9, 0))
    grey_png(folder / "a9-object1.png", (squares(9, 0) == 1) * 255)
    grey_png(folder / "small.png", np.zeros((24, 32)))
    late = squares(6, 1)
    late[30:40, 20:30] = 2  # object 2 of squares-b, new on frame 6
    palette_png(folder / "b6-new.png", late)
    palette_png(folder / "b0.png", squares(0, 1))
    palette_png(folder / "a0-object3.png", np.where(squares(0, 0) == 2, 3, squares(0, 0)))
    return folder


def add(state: Path, *options: str, root: Path | None = None) -> int:
    start = ["--root", str(root), "--split", "val"] if root is not None else []
    return main(["annotate", "add", "--state", str(state), *start, *options])


def propose(state: Path, *options: str) -> int:
    return main(["annotate", "propose", "--state", str(state), *options])


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def mask(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.fixture
def started(davis: Path, made: Path, tmp_path: Path) -> Path:
    """A session in which frame 0 of squares-a is drawn."""
    state = tmp_path / "session"
    assert add(state, "--video", "squares-a", "--frame", "0", "--mask", str(made / "a0.png"), root=davis) == 0
    return state


def test_the_state_after_each_addition_is_the_expected_one(
    davis: Path, made: Path, tmp_path: Path, capsys
) -> None:
    started = tmp_path / "session"
    assert (
        add(started, "--video", "squares-a", "--frame", "0", "--mask", str(made / "a0.png"), root=davis) == 0
    )
    out = capsys.readouterr().out
    said = "squares-a frame 0 (00000.jpg): mask of objects 1, 2 (160 s); 1 of 10 frames annotated, 0.044 h"
    assert f"{said} on this video" in out  # not the session's: it has videos of its own
    state, whole = VideoState.load(started / "squares-a")
    assert whole and state.num_frames == 10 and state.objects == {1: 0, 2: 0}
    assert state.annotations == [Annotation(0, 1, "mask", 80.0), Annotation(0, 2, "mask", 80.0)]
    assert state.history == [IterationRecord(0, 0, "mask", 160.0, 160.0, None, None, None)]
    assert list(state.annotated) == [0] and np.array_equal(state.annotated[0], squares(0, 0))
    assert len(state.masks) == 10 and np.array_equal(state.masks[0], squares(0, 0))
    assert json.loads((started / "session.json").read_text(encoding="utf-8"))["split"] == "val"

    # object 1 alone on frame 9: the frame keeps its propagated object 2, object 1 is the drawn one
    before = mask(started / "squares-a" / "masks" / "00009.png")
    assert (
        add(
            started,
            "--video",
            "squares-a",
            "--frame",
            "9",
            "--mask",
            str(made / "a9-object1.png"),
            "--object",
            "1",
        )
        == 0
    )
    expected = before.copy()
    expected[expected == 1] = 0
    expected[squares(9, 0) == 1] = 1
    state, _ = VideoState.load(started / "squares-a")
    assert np.array_equal(state.annotated[9], expected)
    assert state.annotations[-1] == Annotation(9, 1, "mask", 80.0, 0, 1)
    assert state.history[-1] == IterationRecord(1, 9, "mask", 80.0, 240.0, None, None, None)

    # one positive click on each object of frame 5, whose propagated squares are right already
    before = mask(started / "squares-a" / "masks" / "00005.png")
    clicks = {
        "clicks": [
            {"object": 1, "x": 19, "y": 13, "positive": True},
            {"object": 2, "x": 46, "y": 30, "positive": True},
        ]
    }
    (started.parent / "a5.json").write_text(json.dumps(clicks), encoding="utf-8")
    assert (
        add(started, "--video", "squares-a", "--frame", "5", "--clicks", str(started.parent / "a5.json")) == 0
    )
    state, _ = VideoState.load(started / "squares-a")
    assert state.annotations[-2:] == [
        Annotation(5, 1, "clicks", 2.5, 1, 2, points=((19, 13, True),)),
        Annotation(5, 2, "clicks", 1.5, 1, 2, points=((46, 30, True),)),
    ]  # the clicks are kept, and saved: an export hands them on as a clicks label
    assert state.history[-1] == IterationRecord(2, 5, "clicks", 4.0, 244.0, None, None, None)
    assert state.annotated[5][13, 19] == 1 and state.annotated[5][30, 46] == 2
    assert sorted(state.annotated) == [0, 5, 9] and state.seconds == 244.0
    # the propagated squares were right: the clicks changed nothing around them, and the person is told
    assert np.array_equal(state.annotated[5], before)
    out = capsys.readouterr().out
    for obj in (1, 2):
        assert (
            f"  object {obj}: +0 / -0 px against the mask the clicks corrected; the clicks changed nothing"
            " around them: draw that part (--mask)\n" in out
        )
    # a negative click deep inside object 2 takes a few pixels around itself (the square's flat colour and the
    # propagated mask hold the rest): the count is what it removed, without the note
    inside = cv2.distanceTransform((before == 2).astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(inside.argmax()), inside.shape)
    (started.parent / "a5-out.json").write_text(
        json.dumps({"clicks": [{"object": 2, "x": int(x), "y": int(y), "positive": False}]}), encoding="utf-8"
    )
    out_click = str(started.parent / "a5-out.json")
    assert add(started, "--video", "squares-a", "--frame", "5", "--clicks", out_click) == 0
    state, _ = VideoState.load(started / "squares-a")
    after = state.annotated[5]
    gained = np.count_nonzero((after == 2) & (before != 2))
    lost = np.count_nonzero((before == 2) & (after != 2))
    assert gained == 0 and 1 < lost < np.count_nonzero(before == 2)
    told = capsys.readouterr().out
    assert f"  object 2: +{gained} / -{lost} px against the mask the clicks corrected\n" in told
    assert "changed nothing" not in told


def test_a_known_object_a_tool_numbered_anew_is_named_with_object(
    started: Path, made: Path, tmp_path: Path, capsys
) -> None:
    """A tool that redraws squares-b's object 1 numbers it 3: the refusal says how to name it, which works."""
    assert add(started, "--video", "squares-b", "--frame", "0", "--mask", str(made / "b0.png")) == 0
    renamed = tmp_path / "b6-renamed.png"
    palette_png(renamed, np.where(squares(6, 1) == 1, 3, 0))
    capsys.readouterr()
    assert add(started, "--video", "squares-b", "--frame", "6", "--mask", str(renamed)) == 2
    assert capsys.readouterr().err == (
        f"error: {renamed}: object 3 unknown in video 'squares-b' (known: 1); if it is a known object "
        "numbered anew by the tool that drew it, name it with --object 1; allow new objects (--new-objects) "
        "if they first appear on this frame\n"
    )
    assert add(started, "--video", "squares-b", "--frame", "6", "--mask", str(renamed), "--object", "1") == 0
    state, _ = VideoState.load(started / "squares-b")
    assert state.objects == {1: 0}


def test_a_stores_clicks_label_is_no_mask(started: Path, made: Path, tmp_path: Path, capsys) -> None:
    """`label import` of a tool's points writes ``*_clicks_instanceIds.png``: as a mask it erased objects."""
    clicks_label = tmp_path / "00009_clicks_instanceIds.png"
    shutil.copy(made / "a9.png", clicks_label)
    before = files(started)
    capsys.readouterr()
    assert add(started, "--video", "squares-a", "--frame", "9", "--mask", str(clicks_label)) == 2
    assert capsys.readouterr().err == (
        f"error: {clicks_label}: a label store's clicks or boxes label (the marked pixels only), not a mask "
        "of the objects: give the mask the tool drew, the clicks as --clicks, or a box as --box X0,Y0,X1,Y1 "
        "--object ID (corners included: its *_boxes.json gives them, x1 and y1 one past)\n"
    )
    assert files(started) == before


def test_a_new_object_is_declared_on_the_frame_it_first_appears_on(started: Path, made: Path, capsys) -> None:
    # the first annotation of a video declares its objects: squares-b shows object 1 only
    assert add(started, "--video", "squares-b", "--frame", "0", "--mask", str(made / "b0.png")) == 0
    b6 = str(made / "b6-new.png")
    assert add(started, "--video", "squares-b", "--frame", "6", "--mask", b6) == 2
    assert "b6-new.png: object 2 unknown in video 'squares-b' (known: 1)" in capsys.readouterr().err
    assert add(started, "--video", "squares-b", "--frame", "6", "--mask", b6, "--new-objects") == 0
    state, _ = VideoState.load(started / "squares-b")
    assert state.objects == {1: 0, 2: 6}
    # object 1's mask is the propagated one pixel for pixel: looked at and accepted, not drawn
    assert state.annotations[-2:] == [
        Annotation(6, 1, "clicks", 1.0, 0, 1),
        Annotation(6, 2, "mask", 80.0, 0, 1),
    ]
    # never propagated before the frame it first appears on
    assert not any((state.masks[t] == 2).any() for t in range(6)) and (state.masks[7] == 2).any()


def test_an_addition_tells_its_listener_of_each_frame_it_propagates(started: Path, made: Path) -> None:
    """`annotate add` had been silent while it propagated (minutes on a long video): its bar hears of it."""
    session = AnnotationSession.open(started)
    given = session.read_given("squares-a", 9, mask=made / "a9.png")
    told: list[int] = []
    added = session.add("squares-a", 9, given, on_frame=lambda t, *_: told.append(t))
    assert sorted(told) == list(range(added.num_frames))


def test_a_label_store_s_file_of_another_frame_is_refused(
    davis: Path, made: Path, tmp_path: Path, capsys
) -> None:
    """`label import` names its files after the frame: frame_0009's mask given as --frame 9 (frame_0010,
    the frames counted from 0) had been booked there. A person's own file, outside a store, is named
    freely."""
    store = tmp_path / "store"
    folder = store / "all" / "squares-a"
    folder.mkdir(parents=True)
    (store / "run.json").write_text("{}", encoding="utf-8")
    for name in ("00001_fine_instanceIds.png", "00000_fine_instanceIds.png"):
        shutil.copy(made / "a0.png", folder / name)
    (tmp_path / "mine").mkdir()
    shutil.copy(made / "a0.png", tmp_path / "mine" / "00001_fine_instanceIds.png")
    state = tmp_path / "session"
    frame_0 = ["--video", "squares-a", "--frame", "0", "--mask"]
    assert add(state, *frame_0, str(folder / "00001_fine_instanceIds.png"), root=davis) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "00001_fine_instanceIds.png: a label store's file of frame 00001, not of this frame (00000.jpg): "
            "give the --frame whose file is 00001 (counted from 0), or this frame's file"
        )
    )
    assert not state.exists()
    assert add(state, *frame_0, str(folder / "00000_fine_instanceIds.png"), root=davis) == 0
    assert add(state, *frame_0, str(tmp_path / "mine" / "00001_fine_instanceIds.png")) == 0


def test_a_frame_annotated_again_keeps_its_annotation_and_the_one_before(
    started: Path, made: Path, tmp_path: Path
) -> None:
    """The file of an annotation replaced had stayed in annotated/ for good; the one just replaced stays for a
    reader that read the state before (the page reads without the lock)."""

    def files() -> list[str]:
        return sorted(p.name for p in (started / "squares-a" / "annotated").iterdir())

    palette_png(tmp_path / "a5.png", squares(5, 0))
    (first,) = files()
    assert add(started, "--video", "squares-a", "--frame", "0", "--mask", str(made / "a9.png")) == 0
    (second,) = set(files()) - {first}
    assert files() == sorted([first, second])
    assert add(started, "--video", "squares-a", "--frame", "0", "--mask", str(tmp_path / "a5.png")) == 0
    (third,) = set(files()) - {first, second}
    assert files() == sorted([second, third])
    held = json.loads((started / "squares-a" / "state.json").read_text(encoding="utf-8"))["annotated"]
    assert held == {"0": f"annotated/{third}"}


def test_a_temporary_file_a_killed_write_left_goes_with_the_next_save(started: Path, made: Path) -> None:
    """A SIGTERM between a mask's write and its rename left `.00000.png.*.tmp` in masks/ for good."""
    import os
    import time

    masks = started / "squares-a" / "masks"
    stale, fresh = masks / ".00000.png.dpl2kday.tmp", masks / ".00001.png.x1y2z3ab.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"half a PNG")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    assert add(started, "--video", "squares-a", "--frame", "9", "--mask", str(made / "a9.png")) == 0
    assert not stale.exists() and fresh.exists()  # a live writer's, beside (the page's server)


def test_an_empty_first_annotation_declares_no_object_and_the_next_one_declares_them(
    started: Path, made: Path, tmp_path: Path
) -> None:
    """Objects may enter late: frame 0 of squares-b submitted empty, then frame 6 declares its objects."""
    empty = tmp_path / "empty.png"
    palette_png(empty, np.zeros_like(squares(0, 1)))
    assert add(started, "--video", "squares-b", "--frame", "0", "--mask", str(empty)) == 0
    assert add(started, "--video", "squares-b", "--frame", "6", "--mask", str(made / "b6-new.png")) == 0
    state, _ = VideoState.load(started / "squares-b")
    assert state.objects == {1: 6, 2: 6}
    assert sorted(state.annotated) == [0, 6] and not state.annotated[0].any()


def test_a_black_and_white_mask_without_its_object_is_refused_in_a_video_of_several_objects(
    started: Path, made: Path, capsys
) -> None:
    """Read as object 1, it would replace the frame with object 1 alone (object 2 dropped)."""
    before = files(started)
    one = str(made / "a9-object1.png")  # object 1 of frame 9, white on black; squares-a has objects 1, 2
    assert add(started, "--video", "squares-a", "--frame", "9", "--mask", one) == 2
    expected = "a black-and-white mask of one object, and video 'squares-a' has objects 1, 2: name the object"
    assert expected in capsys.readouterr().err
    assert files(started) == before
    assert add(started, "--video", "squares-a", "--frame", "9", "--mask", one, "--object", "1") == 0


def test_proposals_on_known_states(davis: Path, made: Path, started: Path, capsys) -> None:
    fresh = started.parent / "fresh"
    assert propose(fresh, "--root", str(davis), "--split", "val") == 0
    assert "next: squares-a frame 0 " in capsys.readouterr().out
    assert not fresh.exists()  # proposing writes nothing
    before = files(started)
    # squares-b is not started: it comes first, with a mask of every object
    assert propose(started, "--json") == 0
    proposal = json.loads(capsys.readouterr().out)
    assert (proposal["video"], proposal["frame"], proposal["objects"], proposal["kind"]) == (
        "squares-b",
        0,
        [],
        "mask",
    )
    # on squares-a, uniform takes the frame farthest from frame 0; the type is the policy's
    assert propose(started, "--video", "squares-a", "--frames", "uniform", "--types", "clicks", "--json") == 0
    proposal = json.loads(capsys.readouterr().out)
    assert (proposal["video"], proposal["frame"], proposal["objects"], proposal["kind"]) == (
        "squares-a",
        9,
        [1, 2],
        "clicks",
    )
    assert proposal["frame_path"].endswith("squares-a/00009.jpg")
    # a box is given to `annotate add` as a box, which the click model draws as the page's box tool does
    assert propose(started, "--video", "squares-a", "--frames", "uniform", "--types", "box") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("next: squares-a frame 9 ") and lines[0].endswith(": box of objects 1, 2")
    assert lines[-1].endswith("--frame 9 --box X0,Y0,X1,Y1 --object ID")
    session = AnnotationSession.open(started)
    unreliable = [d + u for d, u in zip(*_reliability(started / "squares-a"), strict=True)]
    worst = max(range(1, 10), key=lambda t: (unreliable[t], -t))
    assert session.propose(ProposalOptions(frames="uncertainty"), video="squares-a").frame == worst
    # by default a session proposes with gain-fit: on 10 frames with frame 0 annotated its fitted error
    # model's summed fall is largest at frame 7 (0.962 against 0.952 at 6 and 0.815 at 9)
    default = session.propose(video="squares-a")
    assert default.frame == 7 and default.reason.startswith("gain-fit among 9 frames not annotated")
    assert session.propose(ProposalOptions(frames="diversity"), video="squares-a").frame in range(1, 10)
    with pytest.raises(ConfigError, match="'oracle' needs ground truth"):
        session.propose(ProposalOptions(frames="oracle"))
    with pytest.raises(ConfigError, match="'oracle' needs ground truth"):
        session.propose(ProposalOptions(types="oracle"))
    with pytest.raises(ConfigError, match="'lookahead' needs ground truth"):
        session.propose(ProposalOptions(frames="lookahead"))
    assert files(started) == before
    # with both videos started, the one whose next annotation is expected to gain more per second
    # comes first (test_policy.py ranks hand-made states); squares-b's next mask costs 80 s, not 160
    assert add(started, "--video", "squares-b", "--frame", "0", "--mask", str(made / "b0.png")) == 0
    assert session.propose(ProposalOptions(frames="uniform")).video == "squares-b"


def _reliability(folder: Path) -> tuple[list[float], list[float]]:
    state, _ = VideoState.load(folder)
    return state.disagreement, state.unsure


def test_session_json_holds_each_choice_with_all_its_options_and_refuses_another_value(
    started: Path, capsys
) -> None:
    saved = json.loads((started / "session.json").read_text(encoding="utf-8"))
    assert saved["engine"] == {"name": "flow", "options": FlowOptions().flat()}  # every flow option
    assert saved["click_model"] == {"name": "starcut", "options": {}}  # the default, weight-free
    assert propose(started, "--flow-preset", "fast") == 2
    assert "other settings: flow_preset 'medium' (asked: 'fast')" in capsys.readouterr().err
    assert (
        propose(started, "--flow-preset", "medium", "--stm-model", "stm_r18") == 0
    )  # stm's flags: not its engine
    assert propose(started, "--engine", "stm") == 2
    assert "other settings: engine 'flow' (asked: 'stm')" in capsys.readouterr().err


def test_an_addition_waits_for_another_process_writing_the_video(
    started: Path, made: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The video's folder is its lock (``flock``): ``annotate add`` and the page take turns on a video."""
    import fcntl
    import logging
    import os
    import threading

    caplog.set_level(logging.INFO, "frugalseg")
    session = AnnotationSession.open(started)
    before = files(started)
    held = os.open(started / "squares-a", os.O_RDONLY)  # another process is writing squares-a
    fcntl.flock(held, fcntl.LOCK_EX)
    done: list[object] = []
    adding = threading.Thread(
        target=lambda: done.append(
            session.add("squares-a", 9, session.read_given("squares-a", 9, mask=made / "a9.png"))
        ),
        daemon=True,
    )
    adding.start()
    adding.join(1.0)
    assert adding.is_alive() and files(started) == before  # waiting, nothing written
    waiting = f"waiting for another command or the page to finish changing {started / 'squares-a'} …"
    assert [r.getMessage() for r in caplog.records] == [waiting]  # said once, not silent
    other = session.add(
        "squares-b", 0, session.read_given("squares-b", 0, mask=made / "b0.png")
    )  # another video is not held up
    assert other.video == "squares-b"
    os.close(held)
    adding.join(60)
    assert not adding.is_alive() and len(done) == 1
    assert session.state("squares-a") is not None and len(session.state("squares-a").annotated) == 2
    assert sorted(p.name for p in started.iterdir()) == ["session.json", "squares-a", "squares-b"]


def test_a_missing_frame_file_is_named_never_shifted(tmp_path: Path, made: Path, capsys) -> None:
    """Frame N is file N: a sequence without 00002.jpg is refused by propose, add and simulate alike."""
    root = write_moving_squares(tmp_path / "davis")
    gap = root / "JPEGImages/480p/squares-a/00002.jpg"
    gap.unlink()
    state = tmp_path / "session"
    assert add(state, "--video", "squares-a", "--frame", "0", "--mask", str(made / "a0.png"), root=root) == 2
    err = capsys.readouterr().err
    assert f"{gap}: frame 2 of sequence 'squares-a' is missing" in err and "shift every later frame" in err
    assert not state.exists()
    out = tmp_path / "run"
    simulate = ["annotate", "simulate", "--root", str(root), "--budget-hours", "0.01", "--out", str(out)]
    assert main([*simulate, "--no-progress"]) == 2
    assert f"{gap}: frame 2 of sequence 'squares-a' is missing" in capsys.readouterr().err
    assert not out.exists()


def test_a_session_of_flat_settings_opens_with_its_values_as_objects(started: Path) -> None:
    """``session.json`` of the version before options were objects: flat keys, one ``device``."""
    path = started / "session.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    flat = {
        "engine": "flow",
        "preset": "fast",
        "flow_downscale": 2,
        "click_model": "grabcut",
        "device": "cpu",
    }
    path.write_text(
        json.dumps({**saved, **flat, "sam2_config": "sam2.1_hiera_t", "stm_weights": None}), encoding="utf-8"
    )
    session = AnnotationSession.open(started)
    assert session.settings.engine == Choice("flow", FlowOptions.from_flat(preset="fast", downscale=2).flat())
    assert session.settings.click_model == Choice("grabcut", {})
    assert session.engine.settings["preset"] == "fast"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--frame", "9", "--mask", "small.png"],
            "small.png: mask is 32×24 px but the frame 00009.jpg is 64×48",
        ),
        (
            ["--frame", "0", "--mask", "a0-object3.png"],
            "a0-object3.png: object 3 unknown in video 'squares-a' (known: 1, 2)",
        ),
        (["--frame", "9", "--mask", "a9-object1.png", "--object", "7"], "a9-object1.png: object 7 unknown"),
        (["--frame", "9", "--mask", "a9.png", "--object", "1"], "a9.png: holds several objects (1, 2)"),
        (
            ["--frame", "10", "--mask", "a9.png"],
            "has frames 0…9 in this session (a frame's number is its place in the video, from 0: frame 0 is "
            "00000.jpg)",
        ),
        (["--frame", "-1", "--mask", "a9.png"], "frame: -1 is out of range"),
        (["--frame", "9", "--mask", "missing.png"], "missing.png: file does not exist"),
        (["--frame", "9", "--clicks", "{not json"], "clicks.json: not valid JSON"),
        (["--frame", "9", "--clicks", '{"points": []}'], "clicks.json: no list of clicks"),
        (["--frame", "9", "--clicks", '{"clicks": []}'], "clicks.json: the list of clicks is empty"),
        (
            [
                "--frame",
                "9",
                "--clicks",
                '{"boxes": [{"x0": 3, "y0": 4, "x1": 20, "y1": 15, "instance_id": 2}]}',
            ],
            "clicks.json: a label store's boxes, not clicks: give each as --box 3,4,19,14 --object 2",
        ),
        (
            ["--frame", "9", "--clicks", '{"clicks": [{"object": 1, "x": 3}]}'],
            "clicks.json: click 0 lacks y, positive",
        ),
        (
            ["--frame", "9", "--clicks", '{"clicks": [{"object": 1, "x": "3", "y": 2, "positive": true}]}'],
            "x and y must be pixel coordinates (numbers), got '3', 2",
        ),
        (
            ["--frame", "9", "--clicks", '{"clicks": [{"object": 1, "x": 64, "y": 2, "positive": true}]}'],
            "click 0 at x 64, y 2 is off the 64×48 frame",
        ),
        (
            ["--frame", "9", "--clicks", '{"clicks": [{"object": 1, "x": 3, "y": 2, "positive": "yes"}]}'],
            "positive must be true or false",
        ),
        (
            ["--frame", "9", "--clicks", '{"clicks": [{"object": 4, "x": 3, "y": 2, "positive": true}]}'],
            "clicks.json: object 4 unknown",
        ),
    ],
)
def test_refused_additions_name_the_problem_and_change_nothing(
    started: Path, made: Path, capsys, options: list[str], message: str
) -> None:
    capsys.readouterr()
    if "--clicks" in options:
        at = options.index("--clicks") + 1
        (started.parent / "clicks.json").write_text(options[at], encoding="utf-8")
        options = [*options[:at], str(started.parent / "clicks.json"), *options[at + 1 :]]
    elif "--mask" in options:
        at = options.index("--mask") + 1
        options = [*options[:at], str(made / options[at]), *options[at + 1 :]]
    before = files(started)
    assert add(started, "--video", "squares-a", *options) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert files(started) == before


def test_a_refused_first_addition_writes_no_session(davis: Path, made: Path, tmp_path: Path, capsys) -> None:
    state = tmp_path / "session"
    assert (
        add(state, "--video", "squares-a", "--frame", "0", "--mask", str(made / "small.png"), root=davis) == 2
    )
    assert not state.exists()
    assert add(state, "--video", "squares-a", "--frame", "0", "--mask", str(made / "a0.png")) == 2
    assert (
        f"error: --state: {state} holds no session yet: give --root (its data set)" in capsys.readouterr().err
    )
    assert add(state, "--video", "squares-c", "--frame", "0", "--mask", str(made / "a0.png"), root=davis) == 2
    assert "no video 'squares-c' in split 'val'; videos: squares-a, squares-b" in capsys.readouterr().err
    assert not state.exists()


def test_other_settings_and_other_folders_are_refused(
    davis: Path, started: Path, tmp_path: Path, capsys
) -> None:
    before = files(started)
    assert propose(started, "--split", "train") == 2
    assert "is a session with other settings: split 'val' (asked: 'train')" in capsys.readouterr().err
    assert propose(started, "--split", "val", "--root", str(davis)) == 0  # the same settings are fine
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    assert propose(other, "--root", str(davis)) == 2
    assert "exists and is not an annotation session" in capsys.readouterr().err
    assert files(started) == before


def test_an_addition_killed_while_writing_masks_is_healed_by_the_next(started: Path, made: Path) -> None:
    whole = files(started)
    (started / "squares-a" / "masks" / "00004.png").write_bytes(b"half a png")
    session = AnnotationSession.open(started)
    state = session.state("squares-a")
    assert np.array_equal(state.masks[4], mask_of(whole["squares-a/masks/00004.png"]))
    assert session.propose(ProposalOptions(frames="uniform"), video="squares-a").frame == 9
    assert (
        session.add("squares-a", 9, session.read_given("squares-a", 9, mask=made / "a9.png")).record.iteration
        == 1
    )
    assert mask(started / "squares-a" / "masks" / "00004.png") is not None


def test_a_propose_after_a_killed_addition_writes_the_masks_it_left_half_written_again(started: Path) -> None:
    """masks/ (the current mask of every frame, for a person to read) had stayed half-written until the
    next `annotate add`; a `propose` that reads them makes them whole again."""
    whole = files(started)
    (started / "squares-a" / "masks" / "00004.png").write_bytes(b"half a png")
    assert propose(started, "--video", "squares-a") == 0
    assert files(started) == whole


def mask_of(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def test_a_persons_click_corrects_the_mask_near_it_only() -> None:
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal((60, 140, 60), 12, (120, 160, 3)), 0, 255).astype(np.uint8)
    image[30:90, 40:100] = np.clip(rng.normal((200, 40, 40), 12, (60, 60, 3)), 0, 255)  # the object
    truth = np.zeros((120, 160), bool)
    truth[30:90, 40:100] = True
    prior = truth.copy()
    prior[30:90, 40:60] = False  # its left third missed
    prior[5:15, 140:150] = True  # and a false blob far away
    click = GivenClick(1, 50, 60, True)
    found = local_grabcut_clicks(image, prior, [click], radius=4, reach=30)
    assert found[30:90, 40:60].mean() > 0.9  # the missed part near the click is found …
    assert found[5:15, 140:150].all()  # … and nothing farther than the reach changes
    assert found[60, 50] and not found[100:, :].any()
    current = np.where(prior, 1, 0).astype(np.uint8)
    result = annotate_given_clicks(image, current, [click], model=GrabCutClicks())
    assert result.clicks == {1: 1} and result.seconds == {1: 2.5}
    assert np.array_equal(result.mask == 1, local_grabcut_clicks(image, prior, [click], radius=2, reach=6))


def test_a_session_of_the_version_before_the_engines_opens_with_their_defaults(
    davis: Path, made: Path, tmp_path: Path
) -> None:
    """``session.json`` written before the engine settings existed: flow engine, GrabCut clicks."""
    started = tmp_path / "session"  # made as that version made it: GrabCut's masks
    drawn = (
        "--video",
        "squares-a",
        "--frame",
        "0",
        "--mask",
        str(made / "a0.png"),
        "--click-model",
        "grabcut",
    )
    assert add(started, *drawn, root=davis) == 0
    path = started / "session.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    new = ("engine", "sam2_config", "sam2_checkpoint", "sam2_image_size", "stm_model", "stm_weights")
    old = {k: v for k, v in saved.items() if k not in (*new, "click_model", "device")}
    path.write_text(json.dumps(old), encoding="utf-8")
    session = AnnotationSession.open(started)
    assert (session.settings.engine.name, session.settings.click_model.name) == ("flow", "grabcut")
    assert session.engine.name == "flow" and session.click_model.name == "grabcut"
    assert session.state("squares-a") is not None
    path.write_text(json.dumps({**old, "colour": "blue"}), encoding="utf-8")
    with pytest.raises(DataError, match="not an annotation session.s settings"):
        AnnotationSession.open(started)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--engine", "stm"], "the stm engine needs trained STM weights"),
        (["--click-model", "sam2", "--sam2-checkpoint", "MISSING"], "SAM 2 checkpoint file does not exist"),
    ],
)
def test_a_session_with_a_network_but_no_weights_is_refused_and_not_written(
    davis: Path, made: Path, tmp_path: Path, capsys, options: list[str], message: str
) -> None:
    state = tmp_path / "session"
    options = [o.replace("MISSING", str(tmp_path / "none.pt")) for o in options]
    video = ["--video", "squares-a", "--frame", "0", "--mask", str(made / "a0.png")]
    assert add(state, *video, *options, root=davis) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not state.exists()


def test_a_person_s_clicks_and_box_are_saved_with_the_state_and_read_back(tmp_path: Path) -> None:
    clicked = Annotation(3, 1, "clicks", 2.5, 1, 0, points=((19, 13, True), (4, 5, False)))
    boxed = Annotation(3, 2, "box", 8.5, 1, 0, box=(10, 20, 31, 41))
    plain = Annotation(4, 1, "mask", 80.0, 0, 1)
    state = VideoState("v", 5, {1: 3, 2: 3}, annotations=[clicked, boxed, plain])
    state.save(tmp_path)
    saved = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))["annotations"]
    assert saved[0]["points"] == [[19, 13, True], [4, 5, False]] and "box" not in saved[0]
    assert saved[1]["box"] == [10, 20, 31, 41] and "points" not in saved[1]
    assert set(saved[2]) == {"frame", "object", "kind", "seconds", "clicks", "iteration"}  # as before
    assert VideoState.load(tmp_path)[0].annotations == [clicked, boxed, plain]


def test_a_propagated_mask_added_back_unchanged_is_booked_as_looked_at(started: Path, capsys) -> None:
    capsys.readouterr()
    shown = started / "squares-a" / "masks" / "00005.png"
    assert add(started, "--video", "squares-a", "--frame", "5", "--mask", str(shown)) == 0
    printed = capsys.readouterr().out.splitlines()[0]
    assert printed.startswith(
        "squares-a frame 5 (00005.jpg): propagated mask, unchanged, of objects 1, 2 (1 s); "
    )
    state, _ = VideoState.load(started / "squares-a")
    assert state.annotations[-2:] == [
        Annotation(5, 1, "clicks", 1.0, 0, 1),
        Annotation(5, 2, "clicks", 0.0, 0, 1),
    ]
    # kept as the person saw it: exact for the proposals, so gain-fit does not ask for a mask there
    assert state.kinds[5] == "mask" and state.replaceable == []
    assert AnnotationSession.open(started).propose(video="squares-a").frame != 5


class _RecordingClicks(GrabCutClicks):
    """GrabCut's clicks that record what the session told them of the object."""

    def __init__(self) -> None:
        self.known: list[object] = []

    def correct(self, image, current, clicks, *, known=None):  # type: ignore[no-untyped-def]
        self.known.append(known)
        return np.asarray(current, bool)

    def box(self, image, box, clicks=(), *, known=None):  # type: ignore[no-untyped-def]
        self.known.append(known)
        return super().box(image, box, clicks)


def _previous_frame(session: AnnotationSession, video: str, frame: int) -> np.ndarray:
    """The loop frame before sequence frame ``frame``: the neighbour a session gives the click model."""
    frames = session.frames(video)
    return session.frame_image(video, frames[frames.index(frame) - 1])


def test_clicks_starting_an_object_learn_it_from_its_nearest_annotated_frame(started: Path) -> None:
    session = AnnotationSession.open(started)
    session.click_model = recording = _RecordingClicks()
    shape = squares(0, 0).shape
    clicks = GivenAnnotation(Path("clicks"), shape, clicks=(GivenClick(1, 12, 14, True),))
    session.preview("squares-a", 5, clicks, np.zeros(shape, np.uint8))  # object 1 not on frame 5 yet
    (prior,) = recording.known
    (image, mask), *others = prior.examples
    assert not others and np.array_equal(mask, squares(0, 0) == 1)
    assert np.array_equal(image, session.frame_image("squares-a", 0))
    session.preview("squares-a", 5, clicks, squares(5, 0))  # the frame shows it: its own colours are there
    assert not recording.known[1].examples
    for prior in recording.known:  # how each pixel moves: every answer on a video frame sees it
        assert np.array_equal(prior.neighbour, _previous_frame(session, "squares-a", 5))


def test_a_preview_and_a_page_s_submit_read_the_annotations_not_every_frame_s_current_mask(
    started: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A preview given the mask it corrects, and a page's submit (saved before its propagation), need the
    # annotated frames alone; reading the video's current masks too (one PNG a frame) had cost each 0.09 s.
    session = AnnotationSession.open(started)
    shape = squares(0, 0).shape
    clicks = GivenAnnotation(Path("clicks"), shape, clicks=(GivenClick(1, 12, 14, True),))
    current = session.state("squares-a").masks[5]
    read: list[str] = []
    original = cv2.imread

    def counted(path: str, *args: int) -> np.ndarray | None:
        read.append(path)
        return original(path, *args)

    monkeypatch.setattr(cv2, "imread", counted)
    answer = session.preview("squares-a", 5, clicks, current)
    box = session.box_preview("squares-a", 5, (4, 4, 30, 30), obj=1)
    assert not [path for path in read if Path(path).parent.name == "masks"] and answer[14, 12] and box.any()
    given = GivenAnnotation(Path("clicks"), shape, clicks=(GivenClick(1, 12, 14, False),))
    session.add("squares-a", 5, given, propagate=False, current=current)  # as the page submits
    assert not [path for path in read if Path(path).parent.name == "masks"]
    light, full = session.annotated_state("squares-a", masks=False), session.annotated_state("squares-a")
    assert light.masks == full.masks == [] and light.annotations == full.annotations
    assert len(full.annotations) == 3  # frame 0's two objects and the clicks
    assert all(np.array_equal(light.annotated[k], full.annotated[k]) for k in full.annotated)
    assert session.saved_state("squares-a", masks=False)[1] is False


def test_with_a_stride_the_click_model_sees_the_sequence_frame_next_to_the_clicked_one(
    davis: Path, made: Path, tmp_path: Path
) -> None:
    """Loop frames 0, 2, 4 …: motion towards frame 3 for a click on frame 4, not towards loop frame 2."""
    state = tmp_path / "strided"
    drawn = ("--video", "squares-a", "--frame", "0", "--mask", str(made / "a0.png"), "--stride", "2")
    assert add(state, *drawn, root=davis) == 0
    session = AnnotationSession.open(state)
    session.click_model = recording = _RecordingClicks()
    shape = squares(0, 0).shape
    clicks = GivenAnnotation(Path("clicks"), shape, clicks=(GivenClick(1, 12, 14, True),))
    session.preview("squares-a", 4, clicks, squares(4, 0))
    session.box_preview("squares-a", 0, (4, 4, 30, 30), (GivenClick(1, 12, 14, True),))
    sequence = session.format.numbered_frame_paths("squares-a")
    assert session.frames("squares-a")[:3] == [0, 2, 4]
    before, after = (read_frame(sequence[index]) for index in (3, 1))
    assert np.array_equal(recording.known[0].neighbour, before)
    assert np.array_equal(recording.known[1].neighbour, after)  # frame 0's neighbour is the next one


def test_a_neighbouring_frame_of_another_size_is_refused_with_its_file(
    davis: Path, made: Path, tmp_path: Path
) -> None:
    root = tmp_path / "davis"
    shutil.copytree(davis, root)
    state = tmp_path / "session"
    assert add(state, "--video", "squares-a", "--frame", "0", "--mask", str(made / "a0.png"), root=root) == 0
    session = AnnotationSession.open(state)
    third = session.format.numbered_frame_paths("squares-a")[3]
    cv2.imwrite(str(third), np.zeros((10, 12, 3), np.uint8))
    shape = squares(0, 0).shape
    clicks = GivenAnnotation(Path("clicks"), shape, clicks=(GivenClick(1, 12, 14, True),))
    with pytest.raises(DataError, match=r"00003.* is 10×12, the frame next to it \(00004"):
        session.preview("squares-a", 4, clicks, squares(4, 0))


def test_a_box_learns_its_object_from_its_nearest_annotated_frame_as_clicks_do(started: Path) -> None:
    session = AnnotationSession.open(started)
    session.click_model = recording = _RecordingClicks()
    click = GivenClick(1, 12, 14, True)
    found = session.box_preview("squares-a", 5, (4, 4, 30, 30), (click,), 1)
    (prior,) = recording.known
    ((image, mask),) = prior.examples
    assert np.array_equal(mask, squares(0, 0) == 1)
    assert np.array_equal(image, session.frame_image("squares-a", 0))
    assert found[14, 12] and not found[:, 31:].any() and not found[31:].any()  # its click in, inside the box
    session.box_preview("squares-a", 5, (4, 4, 30, 30), (click,))  # no object named: nothing to learn from
    session.box_preview("squares-a", 5, (4, 4, 30, 30), (click,), 7)  # an object no frame shows yet
    assert [len(prior.examples) for prior in recording.known[1:]] == [0, 0]
    for prior in recording.known:
        assert np.array_equal(prior.neighbour, _previous_frame(session, "squares-a", 5))


def test_previews_while_a_video_waits_for_its_propagation_propagate_nothing(started: Path) -> None:
    """The page's worker propagates after a submit; a preview of a mask it is given only reads annotations."""
    session = AnnotationSession.open(started)
    shape = squares(0, 0).shape
    drawn = GivenAnnotation(Path("drawn"), shape, ids=squares(9, 0))
    session.add("squares-a", 9, drawn, propagate=False)  # saved; its masks owed, as while the worker runs
    assert not session.saved_state("squares-a")[1]

    def no_propagation(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a preview propagated the video")

    session._propagate = no_propagation  # type: ignore[method-assign]
    session.click_model = recording = _RecordingClicks()
    clicks = GivenAnnotation(Path("clicks"), shape, clicks=(GivenClick(1, 12, 14, True),))
    session.preview("squares-a", 5, clicks, np.zeros(shape, np.uint8))
    ((image, mask),) = recording.known[0].examples  # frame 9, annotated but not yet propagated, is nearest
    assert np.array_equal(mask, squares(9, 0) == 1)
    session.box_preview("squares-a", 5, (4, 4, 30, 30), (), 1)  # a box alone starts from the object's colours
    ((image, mask),) = recording.known[1].examples
    assert np.array_equal(mask, squares(9, 0) == 1)


def test_with_a_stride_the_current_masks_are_named_by_the_frames_numbers(
    davis: Path, made: Path, tmp_path: Path
) -> None:
    """``masks/00004.png`` is frame 4, as the person sees it (it had been loop frame 4: frame 8)."""
    state = tmp_path / "strided"
    drawn = ("--video", "squares-a", "--frame", "0", "--mask", str(made / "a0.png"), "--stride", "2")
    assert add(state, *drawn, root=davis) == 0
    session = AnnotationSession.open(state)
    numbers = session.frames("squares-a")
    assert numbers[:3] == [0, 2, 4]
    saved = sorted(path.name for path in (state / "squares-a" / "masks").iterdir())
    assert saved == [f"{n:05d}.png" for n in numbers]
    current = session.state("squares-a")
    assert current is not None and current.numbers == numbers and len(current.masks) == len(numbers)
    for t, n in enumerate(numbers):
        assert np.array_equal(mask(state / "squares-a" / "masks" / f"{n:05d}.png"), current.masks[t])
    reloaded, whole = VideoState.load(state / "squares-a")
    assert whole and reloaded.numbers == numbers  # read back from the files it named so


def test_a_person_s_own_frames_name_their_current_masks(davis: Path, made: Path, tmp_path: Path) -> None:
    """``masks/frame_0001.png`` is the mask of ``frame_0001.jpg`` (frame 0); it had been ``00000.png``."""
    frames = tmp_path / "myvideo"
    frames.mkdir()
    for n, path in enumerate(sorted((davis / "JPEGImages" / "480p" / "squares-a").glob("*.jpg"))):
        shutil.copy(path, frames / f"frame_{n + 1:04d}.jpg")
    state = tmp_path / "own"
    start = ["--state", str(state), "--format", "video", "--root", str(frames), "--video", "myvideo"]
    assert main(["annotate", "add", *start, "--frame", "0", "--mask", str(made / "a0.png")]) == 0
    names = [f"frame_{n:04d}" for n in range(1, len(list(frames.iterdir())) + 1)]
    assert sorted(p.name for p in (state / "myvideo" / "masks").iterdir()) == [f"{n}.png" for n in names]
    current = AnnotationSession.open(state).state("myvideo")
    assert current is not None
    assert np.array_equal(mask(state / "myvideo" / "masks" / "frame_0001.png"), squares(0, 0))
    reloaded, whole = VideoState.load(state / "myvideo")
    assert whole and reloaded.frame_names == names and np.array_equal(reloaded.masks[3], current.masks[3])


def test_own_frames_numbered_from_one_without_padding_are_read_in_their_order(
    davis: Path, made: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """ffmpeg's ``%d.jpg`` (1.jpg … 10.jpg) is a video's frames 0…9 in order (refused before: no 0.jpg)."""
    frames = tmp_path / "clip"
    frames.mkdir()
    sources = sorted((davis / "JPEGImages" / "480p" / "squares-a").glob("*.jpg"))
    for n, path in enumerate(sources):
        shutil.copy(path, frames / f"{n + 1}.jpg")
    state = tmp_path / "own"
    start = ["--state", str(state), "--format", "video", "--root", str(frames), "--video", "clip"]
    assert main(["annotate", "add", *start, "--frame", "0", "--mask", str(made / "a0.png")]) == 0
    assert (
        main(
            [
                "annotate",
                "add",
                "--state",
                str(state),
                "--video",
                "clip",
                "--frame",
                "9",
                "--mask",
                str(made / "a0.png"),
            ]
        )
        == 0
    )
    assert "clip frame 9 (10.jpg)" in capsys.readouterr().out
    assert (
        AnnotationSession.open(state).frame_image("clip", 9).tobytes()
        == read_frame(frames / "10.jpg").tobytes()
    )


def test_a_davis_sequence_named_otherwise_than_by_number_is_in_natural_order(tmp_path: Path) -> None:
    """``frame_10.jpg`` comes after ``frame_9.jpg``, not after ``frame_1.jpg`` (name order shifted frames)."""
    root = write_moving_squares(tmp_path / "davis")
    folder = root / "JPEGImages/480p/squares-a"
    for path in sorted(folder.glob("*.jpg")):
        path.rename(folder / f"frame_{int(path.stem) + 1}.jpg")
    names = [path.name for path in DavisFormat(root).numbered_frame_paths("squares-a")]
    assert names == [f"frame_{n}.jpg" for n in range(1, len(names) + 1)] and len(names) >= 10


def test_add_a_box_draws_its_object_as_the_page_s_box_tool_and_keeps_the_others(
    started: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    session = AnnotationSession.open(started)
    rows, columns = np.nonzero(squares(5, 0) == 1)
    box = (int(columns.min()) - 2, int(rows.min()) - 2, int(columns.max()) + 2, int(rows.max()) + 2)
    current = session.current_mask("squares-a", 5)
    drawn = session.box_preview("squares-a", 5, box, (), 1)
    capsys.readouterr()
    boxed = ("--video", "squares-a", "--frame", "5", "--box", ",".join(map(str, box)), "--object", "1")
    assert add(started, *boxed) == 0
    # object 2, kept as it was, is booked as looked at (free); the frame's look once (1 s) and the box 7 s
    assert capsys.readouterr().out.startswith(
        "squares-a frame 5 (00005.jpg): box of object 1, object 2 kept (8 s); 2 of 10 frames"
    )
    state, _ = VideoState.load(started / "squares-a")
    expected = np.where(current == 1, 0, current)
    expected[drawn] = 1
    assert np.array_equal(state.annotated[5], expected)  # object 2 as it was, object 1 the box tool's
    made = {a.object: a for a in state.annotations if a.frame == 5}
    assert (made[1].kind, made[1].box) == ("box", (box[0], box[1], box[2] + 1, box[3] + 1))
    assert made[2].kept
    clicks = tmp_path / "clicks.json"
    clicks.write_text('{"clicks": [{"object": 2, "x": 3, "y": 3, "positive": false}]}', encoding="utf-8")
    assert add(started, *boxed, "--box-clicks", str(clicks)) == 2
    assert "clicks: clicks of object 2: a box's clicks are its object's (1)" in capsys.readouterr().err
    assert add(started, "--video", "squares-a", "--frame", "5", "--box", "1,1,5,5") == 2
    assert "--object: names the object the --box draws" in capsys.readouterr().err
    before = (started / "squares-a" / "state.json").read_bytes()
    assert add(started, "--video", "squares-a", "--frame", "5", "--box", "0,0,64,10", "--object", "1") == 2
    _, (height, width) = session.frame_shape("squares-a", 5)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: --box: 0,0,64,10 reaches past the {width}×{height} frame 00005.jpg "
        f"(x 0…{width - 1}, y 0…{height - 1}, corners included)"
    )
    assert (started / "squares-a" / "state.json").read_bytes() == before  # nothing booked
    # a 1-px box (a typo) had replaced object 1 with a line; a click outside the box had been dropped, booked
    assert add(started, "--video", "squares-a", "--frame", "5", "--box", "30,3,30,40", "--object", "1") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: box: 30,3,30,40 is 1×38 px: a box is drawn around an object, at least 5 px a side "
        "(a smaller drag on the page is a click)"
    )
    clicks.write_text('{"clicks": [{"object": 1, "x": 0, "y": 0, "positive": true}]}', encoding="utf-8")
    assert add(started, *boxed, "--box-clicks", str(clicks)) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: clicks: the click at x 0, y 0 lies outside the box {','.join(map(str, box))}: a box's mask "
        "stays inside it, so its clicks are in it too"
    )
    assert add(started, *boxed, "--name", "1=sky", "--name", "1=cloud") == 2  # the last had won
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: --name: object 1 is named twice ('sky' and 'cloud'): give one"
    )
    assert (started / "squares-a" / "state.json").read_bytes() == before
    with pytest.raises(SystemExit) as bad:  # argparse's own errors: the tip and one line, no usage
        add(started, "--video", "squares-a", "--frame", "5", "--box", "1,2,3")
    assert bad.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "tip: for the accepted options run: frugalseg annotate add --help",
        "error: argument --box: expected X0,Y0,X1,Y1 in whole pixels, got '1,2,3'",
    ]


def test_two_first_additions_to_a_new_session_keep_both(davis: Path, made: Path, tmp_path: Path) -> None:
    """Two ``annotate add`` started together on a new session had both said "1 of N frames annotated",
    and the state kept one: a session not saved yet took no lock."""
    import threading

    folder = tmp_path / "new" / "session"
    first, second = (AnnotationSession.open(folder, root=str(davis)) for _ in range(2))
    inside, release = threading.Event(), threading.Event()
    propagate = first._propagate

    def held(*args, **kwargs) -> None:  # the first addition stays inside its write until released
        inside.set()
        release.wait(60)
        propagate(*args, **kwargs)

    first._propagate = held  # type: ignore[method-assign]

    def adding(session: AnnotationSession, frame: int, mask: Path) -> threading.Thread:
        given = session.read_given("squares-a", frame, mask=mask)
        return threading.Thread(target=session.add, args=("squares-a", frame, given), daemon=True)

    threads = [adding(first, 0, made / "a0.png"), adding(second, 9, made / "a9.png")]
    threads[0].start()
    assert inside.wait(60)
    threads[1].start()
    threads[1].join(1.0)
    assert threads[1].is_alive()  # waits for the first
    release.set()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(AnnotationSession.open(folder).state("squares-a").annotated) == [0, 9]


def test_an_interrupted_first_addition_leaves_no_folder_behind(
    davis: Path, made: Path, tmp_path: Path
) -> None:
    """Ctrl-C while the first annotation propagates: the folders it made for the session go again."""
    folder = tmp_path / "new" / "session"
    session = AnnotationSession.open(folder, root=str(davis))
    given = session.read_given("squares-a", 0, mask=made / "a0.png")

    def interrupted(*args, **kwargs) -> None:
        assert (folder / "squares-a").is_dir()  # made, and locked, for the write
        raise KeyboardInterrupt

    session._propagate = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        session.add("squares-a", 0, given)
    assert not folder.exists() and (tmp_path / "new").is_dir()  # the folder above: its lock
    assert session.finish("squares-a") is None and not folder.exists()  # `propose`'s: nothing made


def test_a_first_addition_waiting_on_one_that_is_refused_goes_on(
    davis: Path, made: Path, tmp_path: Path
) -> None:
    """The refused one removed the folders it made while the other waited on their locks: the other then
    failed with FileNotFoundError, or wrote beside a third one's lock."""
    import threading

    folder = tmp_path / "new" / "session"
    first, second = (AnnotationSession.open(folder, root=str(davis)) for _ in range(2))
    inside, release = threading.Event(), threading.Event()

    def refused(*args, **kwargs) -> None:
        inside.set()
        release.wait(60)
        raise DataError(made / "a0.png", "refused")

    first._propagate = refused  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def adding(session: AnnotationSession, frame: int, mask: Path) -> threading.Thread:
        given = session.read_given("squares-a", frame, mask=mask)

        def run() -> None:
            try:
                session.add("squares-a", frame, given)
            except BaseException as err:
                errors.append(err)

        return threading.Thread(target=run, daemon=True)

    propagate, writing = second._propagate, []

    def watched(*args, **kwargs) -> None:  # the waiter writes into the folder it holds the lock of
        writing.append(os.stat(folder / "squares-a").st_ino)
        threads[0].join(60)  # the refused one has cleaned up by now
        writing.append(os.stat(folder / "squares-a").st_ino)
        propagate(*args, **kwargs)

    second._propagate = watched  # type: ignore[method-assign]
    threads = [adding(first, 0, made / "a0.png"), adding(second, 9, made / "a9.png")]
    threads[0].start()
    assert inside.wait(60)
    threads[1].start()
    threads[1].join(1.0)
    assert threads[1].is_alive()
    release.set()
    for thread in threads:
        thread.join(120)
    assert [str(err) for err in errors] == [f"{made / 'a0.png'}: refused"]
    assert len(writing) == 2 and writing[0] == writing[1]  # not removed under it
    assert sorted(AnnotationSession.open(folder).state("squares-a").annotated) == [9]


def test_a_video_whose_state_json_is_gone_is_refused_not_restarted(started: Path, made: Path, capsys) -> None:
    """``propose`` had proposed the video's first frame again, and the next ``add`` deleted the annotated
    masks the lost ``state.json`` had named."""
    state = started / "squares-a" / "state.json"
    state.unlink()
    before = files(started)
    assert propose(started) == 2
    error = (
        f"{state}: missing, and {started / 'squares-a' / 'annotated'} holds 1 annotated frame(s) (it was "
        "deleted, or a first save was killed): restore it"
    )
    assert error in capsys.readouterr().err
    assert add(started, "--video", "squares-a", "--frame", "9", "--mask", str(made / "a9.png")) == 2
    assert error in capsys.readouterr().err
    assert files(started) == before


def test_the_loops_errors_name_their_flags(started: Path, davis: Path, tmp_path: Path, capsys) -> None:
    """They had named the session's fields: "frames: …", "budget_hours: …", and "root: … holds no session"
    for a --state that held none."""
    assert propose(started, "--frames", "nosuch") == 2
    assert "error: --frames: unknown frame selector 'nosuch'; choose from " in capsys.readouterr().err
    assert propose(tmp_path / "nowhere") == 2
    said = capsys.readouterr().err
    assert f"error: --state: {tmp_path / 'nowhere'} holds no session yet: give --root (its data set)" in said
    simulate = ["annotate", "simulate", "--root", str(davis), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*simulate, "--budget-hours", "0"]) == 2
    assert "error: --budget-hours: the budget must be a number of hours > 0, got 0" in capsys.readouterr().err


def test_a_new_sessions_second_handle_of_other_settings_is_refused_once_the_first_saved(
    davis: Path, made: Path, tmp_path: Path
) -> None:
    """Opened on a new folder before any addition, a handle with another stride had written its video's
    state into the session the first saved, and every later `propose` refused the session."""
    folder = tmp_path / "session"
    first = AnnotationSession.open(folder, root=str(davis))
    other = AnnotationSession.open(folder, root=str(davis), stride=3)
    first.add("squares-a", 0, first.read_given("squares-a", 0, mask=made / "a0.png"))
    before = files(folder)
    with pytest.raises(ConfigError, match=f"state: {folder} was started meanwhile with other settings"):
        other.add("squares-b", 0, other.read_given("squares-b", 0, mask=made / "b0.png"))
    assert files(folder) == before


def test_a_first_save_cut_short_leaves_no_masks_that_would_lock_the_video_out(
    davis: Path, made: Path, tmp_path: Path, monkeypatch
) -> None:
    """Ctrl-C while a video's first state was written left annotated/ without state.json, which is then
    refused as a lost state; the save removes what it wrote, and the next addition goes on."""
    import frugalseg.active.objects.state as state_module

    folder = tmp_path / "session"
    session = AnnotationSession.open(folder, root=str(davis))
    given = session.read_given("squares-a", 0, mask=made / "a0.png")
    write = state_module.write_json_atomic

    def interrupted(path: Path, *args, **kwargs) -> None:
        if path.name == "state.json":
            assert any((path.parent / "annotated").iterdir())  # the masks were written before it
            raise KeyboardInterrupt
        write(path, *args, **kwargs)

    monkeypatch.setattr(state_module, "write_json_atomic", interrupted)
    with pytest.raises(KeyboardInterrupt):
        session.add("squares-a", 0, given)
    monkeypatch.setattr(state_module, "write_json_atomic", write)
    assert not (folder / "squares-a" / "annotated").exists() and not (folder / "squares-a" / "masks").exists()
    again = AnnotationSession.open(folder)
    assert (
        again.add("squares-a", 0, again.read_given("squares-a", 0, mask=made / "a0.png")).annotated_frames
        == 1
    )


def test_a_session_in_the_current_folder_is_written_not_locked_against_itself(
    davis: Path, made: Path, tmp_path: Path, monkeypatch
) -> None:
    """``--state .``: the folder above `.` was `.` itself, which the addition then locked twice and waited on
    forever."""
    import threading

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    session = AnnotationSession.open(".", root=str(davis))
    given = session.read_given("squares-a", 0, mask=made / "a0.png")
    adding = threading.Thread(target=session.add, args=("squares-a", 0, given), daemon=True)
    adding.start()
    adding.join(60)
    assert not adding.is_alive() and (here / "squares-a" / "state.json").is_file()


def test_a_first_save_cut_short_after_its_commit_keeps_its_masks(
    davis: Path, made: Path, tmp_path: Path, monkeypatch
) -> None:
    """A Ctrl-C after state.json was written (cleaning up temporaries) had removed the masks it names."""
    import frugalseg.active.objects.state as state_module

    folder = tmp_path / "session"
    session = AnnotationSession.open(folder, root=str(davis))
    given = session.read_given("squares-a", 0, mask=made / "a0.png")

    def interrupted(*args, **kwargs) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(state_module, "remove_temporaries", interrupted)
    with pytest.raises(KeyboardInterrupt):
        session.add("squares-a", 0, given)
    monkeypatch.undo()
    assert sorted(AnnotationSession.open(folder).state("squares-a").annotated) == [0]
