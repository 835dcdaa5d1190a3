"""`frugalseg label report` of an `annotate export`: the booked hours, offsets from the annotated frames.

A person draws frame 0 of squares-a (objects 1 and 2, `data.fake_davis`), clicks object 1 on frame 6
and boxes object 2 on frame 9; the flow engine propagates the rest. Before, every propagated frame
was recorded as coming from a manual mask on itself (``source_offset`` = its own offset), and the
report charged 80 s for each of its objects: 1609.5 s (0.45 h) for a session that booked 170.5 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.autolabel.report import evaluate_store
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main

pytestmark = pytest.mark.usefixtures("one_cv_thread")


@pytest.fixture(scope="module")
def exported(frames: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(session state, its export) after a drawn frame 0, one click on frame 6 and a box on frame 9."""
    tmp = tmp_path_factory.mktemp("booked")
    state = tmp / "session"
    clicks = tmp / "clicks.json"
    clicks.write_text(json.dumps({"clicks": [{"object": 1, "x": 22, "y": 14, "positive": True}]}))
    start = ["annotate", "add", "--state", str(state), "--video", "squares-a"]
    options = ["--format", "video", "--root", str(frames), "--flow-downscale", "2"]
    assert main([*start, *options, "--frame", "0", "--mask", str(frames.parents[3] / "a0.png")]) == 0
    assert main([*start, "--frame", "6", "--clicks", str(clicks)]) == 0
    assert main([*start, "--frame", "9", "--box", "40,29,51,38", "--object", "2"]) == 0
    out = tmp / "labels"
    assert main(["annotate", "export", "--state", str(state), "--out", str(out)]) == 0
    return state, out


def test_propagated_frames_come_from_the_nearest_annotated_frame(exported: tuple[Path, Path]) -> None:
    _, out = exported
    sources = {(r["offset"], r["kind"]): r["source_offset"] for r in LabelStore(out).records()}
    assert sources == {
        (0, "fine"): 0,
        (1, "pseudo"): 0,
        (2, "pseudo"): 0,
        (3, "pseudo"): 0,  # as near to 6 as to 0: the earlier
        (4, "pseudo"): 6,
        (5, "pseudo"): 6,
        (6, "clicks"): 6,
        (6, "pseudo"): 6,  # the click model's mask of the clicked frame
        (7, "pseudo"): 6,
        (8, "pseudo"): 9,
        (9, "boxes"): 9,
        (9, "pseudo"): 9,
    }


def test_the_report_costs_what_the_session_booked(exported: tuple[Path, Path]) -> None:
    state, out = exported
    booked = AnnotationSession.open(state).state("squares-a").seconds
    # two objects drawn; one click and its frame; a box, and object 1 of its frame looked at and kept
    assert booked == 2 * 80 + (1.5 + 1) + (7 + 1)
    report = evaluate_store(out, progress=False)
    cost = report["cost"]
    assert cost["hours"] * 3600 == pytest.approx(booked)
    assert cost["seconds"] == {"fine": 160.0, "pseudo": 1.0, "clicks": 2.5, "boxes": 7.0}
    # frame 9's object 1, kept (1 s), on its pseudo label: a frame partly annotated (it had counted nothing)
    units = {"object masks": 2, "clicks": 1, "clicked frames": 1, "boxes": 1, "partly annotated frames": 1}
    assert cost["units"] == units
    assert cost["booked"] is True and cost["machine_seconds"] is None and cost["uncosted_labels"] == {}
    # the offset column: from the annotated frame each label came from, not the frame's index
    rows = [(row["kind"], row["offset"], row["labels"]) for row in report["rows"]]
    assert rows == [
        ("boxes", 0, 1),
        ("clicks", 0, 1),
        ("fine", 0, 1),
        ("pseudo", -2, 1),
        ("pseudo", -1, 2),
        ("pseudo", 0, 2),
        ("pseudo", 1, 2),
        ("pseudo", 2, 1),
        ("pseudo", 3, 1),
    ]
    per_clip = {(r["kind"], r["offset"]): r["source_offset"] for r in report["per_clip"]}
    assert per_clip["pseudo", 5] == 6 and per_clip["pseudo", 8] == 9


def test_the_printed_cost_line_says_the_booked_hours(exported: tuple[Path, Path], capsys) -> None:
    _, out = exported
    capsys.readouterr()
    assert main(["label", "report", str(out), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    units = "2 object masks, 1 clicks, 1 clicked frames, 1 boxes, 1 partly annotated frames"
    assert f"annotation cost: 0.05 h of human work ({units})" in lines
