"""What ``annotate propose`` and ``annotate export`` tell a new user: runnable hints, one-line refusals.

The data are squares-a of `data.fake_davis` (10 frames of 64×48 holding objects 1 and 2) as a person's
folder of frames (format ``video``).
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.cli import main
from frugalseg.errors import DataError

pytestmark = pytest.mark.usefixtures("one_cv_thread")


def test_the_first_proposal_s_then_line_starts_the_session_as_named_and_runs(
    frames: Path, tmp_path: Path, capsys
) -> None:
    state = tmp_path / "s"
    start = ["--format", "video", "--root", str(frames), "--flow-downscale", "2", "--max-frames", "6"]
    assert main(["annotate", "propose", "--state", str(state), *start]) == 0
    then = capsys.readouterr().out.splitlines()[-1]
    assert then == (
        f"then: frugalseg annotate add --state {state} --format video --root {frames} --max-frames 6 "
        "--flow-downscale 2 --video squares-a --frame 0 --mask YOUR_MASK.png"
    )
    words = shlex.split(then.removeprefix("then: frugalseg "))
    words[words.index("YOUR_MASK.png")] = str(frames.parents[3] / "a0.png")
    assert main(words) == 0
    assert "1 of 6 frames annotated" in capsys.readouterr().out
    assert AnnotationSession.open(state).settings.engine.options["downscale"] == 2
    # once the session is saved, its settings are its own: the line names none
    assert main(["annotate", "propose", "--state", str(state), "--frames", "uniform"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"then: frugalseg annotate add --state {state} --video squares-a --frame 5 --mask YOUR_MASK.png"
    )


def test_the_engine_and_its_options_given_to_the_first_proposal_are_repeated(
    frames: Path, tmp_path: Path, capsys
) -> None:
    state = tmp_path / "s"
    start = ["--root", str(frames), "--format", "video", "--engine", "flow", "--flow-downscale", "2"]
    assert main(["annotate", "propose", "--state", str(state), *start]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"then: frugalseg annotate add --state {state} --format video --root {frames} --engine flow "
        "--flow-downscale 2 --video squares-a --frame 0 --mask YOUR_MASK.png"
    )


def test_the_then_line_quotes_a_session_folder_and_a_video_named_with_spaces(
    frames: Path, tmp_path: Path, capsys
) -> None:
    clip, state, drawn = tmp_path / "my clip", tmp_path / "my session", str(frames.parents[3] / "a0.png")
    shutil.copytree(frames, clip)
    start = ["--format", "video", "--root", str(clip), "--max-frames", "4", "--flow-downscale", "2"]
    first = ["--video", "my clip", "--frame", "0", "--mask", drawn]
    assert main(["annotate", "add", "--state", str(state), *start, *first]) == 0
    capsys.readouterr()
    assert main(["annotate", "propose", "--state", str(state), "--frames", "uniform", "--types", "mask"]) == 0
    then = capsys.readouterr().out.splitlines()[-1]
    named = f"--state '{state}' --video 'my clip'"
    assert then == f"then: frugalseg annotate add {named} --frame 3 --mask YOUR_MASK.png"
    words = shlex.split(then.removeprefix("then: frugalseg "))
    words[words.index("YOUR_MASK.png")] = drawn
    assert main(words) == 0
    assert "2 of 4 frames annotated" in capsys.readouterr().out


def session(frames: Path, state: Path, *options: str) -> Path:
    """A session at ``state`` whose frame 0 is drawn (objects 1 and 2), on the first 4 frames."""
    start = ["--format", "video", "--root", str(frames), "--max-frames", "4", "--flow-downscale", "2"]
    first = ["--video", "squares-a", "--frame", "0", "--mask", str(frames.parents[3] / "a0.png")]
    assert main(["annotate", "add", "--state", str(state), *start, *options, *first]) == 0
    return state


def export(state: Path, out: Path) -> int:
    return main(["annotate", "export", "--state", str(state), "--out", str(out)])


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_export_refusals_name_the_option_and_the_problem_in_one_short_line(
    frames: Path, tmp_path: Path, capsys
) -> None:
    missing, out = tmp_path / "nothing", tmp_path / "labels"
    assert export(missing, out) == 2
    assert capsys.readouterr().err == (
        f"error: --state: {missing}: no annotation session there (`annotate add` starts one); "
        "nothing to export\n"
    )
    assert not missing.exists() and not out.exists()

    one = session(frames, tmp_path / "one")
    a_file = tmp_path / "a-file"
    a_file.write_text("mine\n", encoding="utf-8")
    capsys.readouterr()
    assert export(one, a_file) == 2
    assert (
        capsys.readouterr().err
        == f"error: --out: {a_file} is a file: name a new folder for the label store\n"
    )
    assert export(one, a_file / "labels") == 2
    assert capsys.readouterr().err == (
        f"error: --out: {a_file}/labels: {a_file} is a file, not a folder: "
        "name a new folder for the label store\n"
    )
    assert a_file.read_text(encoding="utf-8") == "mine\n" and sorted(tmp_path.iterdir()) == [a_file, one]

    # a folder of the person's own files is no store to add to
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine\n", encoding="utf-8")
    assert export(one, notes) == 2
    assert capsys.readouterr().err == (
        f"error: --out: {notes} holds files but no label store: name a new folder for the store\n"
    )
    assert tree(notes) == {"todo.txt": b"mine\n"}
    shutil.rmtree(notes)

    # another session's store: the settings that differ, briefly, and the store as it was
    assert export(one, out) == 0
    other = session(frames, tmp_path / "other", "--stride", "2")
    before = tree(out)
    capsys.readouterr()
    assert export(other, out) == 2
    assert capsys.readouterr().err == (
        f"error: --out: {out} holds an export of another session or of this one before other additions "
        "(settings.session.stride differs); export to a new folder\n"
    )
    assert tree(out) == before


def test_an_export_into_the_data_set_folder_is_refused_as_label_commands_refuse_it(
    frames: Path, tmp_path: Path, capsys
) -> None:
    one = session(frames, tmp_path / "one")
    before = sorted(p.name for p in frames.iterdir())
    capsys.readouterr()
    assert export(one, frames / "labels") == 2
    assert capsys.readouterr().err == (
        f"error: --out: {frames}/labels is inside the data set folder {frames}: labels never go into a "
        "data set; give a label store folder outside it\n"
    )
    assert sorted(p.name for p in frames.iterdir()) == before
    assert export(one, frames.parent) == 2
    assert capsys.readouterr().err == (
        f"error: --out: {frames.parent} holds the data set folder {frames}: labels never go into a "
        "data set; give a label store folder outside it\n"
    )


def test_a_frame_whose_middle_is_zeroed_is_refused_naming_it(frames: Path, tmp_path: Path, capsys) -> None:
    """Its end marker is kept, so OpenCV decodes it with made-up pixels; the session decodes strictly."""
    own = tmp_path / "frames"
    shutil.copytree(frames, own)
    damaged = own / "00002.jpg"
    data = bytearray(damaged.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = bytes(third)
    damaged.write_bytes(bytes(data))
    state = tmp_path / "s"
    start = ["--format", "video", "--root", str(own), "--max-frames", "4", "--flow-downscale", "2"]
    first = ["--video", "frames", "--frame", "0", "--mask", str(frames.parents[3] / "a0.png")]
    assert main(["annotate", "add", "--state", str(state), *start, *first]) == 2
    err = capsys.readouterr().err
    assert f"{damaged}: corrupt JPEG data (" in err and "Traceback" not in err
    assert not state.exists()


@pytest.mark.parametrize("change", ["removed", "added"])
def test_frames_removed_or_added_after_the_first_add_are_refused_naming_the_folder(
    frames: Path, tmp_path: Path, capsys, change: str
) -> None:
    """A session keeps its annotations by loop index: with its second frame gone they stood on the
    frames after it; with a frame added, the page's and export's reads ran past the state's masks."""
    own = tmp_path / "my clip"
    own.mkdir()
    for n, path in enumerate(sorted(frames.glob("*.jpg"))[:5]):
        shutil.copy(path, own / f"shot {n + 1:03d}.jpg")
    state = tmp_path / "s"
    start = ["--format", "video", "--root", str(own), "--flow-downscale", "2"]
    first = ["--video", "my clip", "--frame", "0", "--mask", str(frames.parents[3] / "a0.png")]
    assert main(["annotate", "add", "--state", str(state), *start, *first]) == 0
    if change == "removed":
        (own / "shot 002.jpg").unlink()
        now = "4 (shot 001 … shot 005)"
    else:
        shutil.copy(own / "shot 005.jpg", own / "shot 006.jpg")
        now = "6 (shot 001 … shot 006)"
    capsys.readouterr()
    saved = state / "my clip" / "state.json"
    problem = (
        f"error: {own}: its frames changed since the session annotated them: {saved} "
        f"holds 5 frames (shot 001 … shot 005), the folder {now}; put the frames back as they were, or "
        "annotate them in a new session (another --state)\n"
    )
    for command in (["propose"], ["export", "--out", str(tmp_path / "out")]):
        assert main(["annotate", *command, "--state", str(state)]) == 2
        assert capsys.readouterr().err == problem
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match="its frames changed since the session annotated them"):
        AnnotationSession.open(state).check_frames()  # what `annotate serve` runs before it serves
