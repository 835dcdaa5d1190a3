"""A person's clip with a truncated frame or frames of another size: refused before anything is written.

And a session whose propagation failed all the same (a frame damaged inside, which only decoding
finds) still proposes from what is known and exports what was annotated. The data are squares-a
and squares-b of `data.fake_davis` (10 frames of 64×48) without their masks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from data.fake_davis import jpeg, palette_png, squares, write_moving_squares

from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main
from frugalseg.errors import DataError

pytestmark = pytest.mark.usefixtures("one_cv_thread")


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_moving_squares(tmp_path_factory.mktemp("davis"))
    shutil.rmtree(root / "Annotations")
    return root


@pytest.fixture(scope="module")
def a0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("made") / "a0.png"
    palette_png(path, squares(0, 0))
    return path


def frame(root: Path, t: int, video: str = "squares-a") -> Path:
    return root / "JPEGImages" / "480p" / video / f"{t:05d}.jpg"


@pytest.fixture
def davis(clean: Path, tmp_path: Path) -> Path:
    """A copy of the data set to damage."""
    return Path(shutil.copytree(clean, tmp_path / "davis"))


def smaller(root: Path) -> Path:
    """Frame 5 of squares-a at 32×24 among frames of 64×48."""
    jpeg(frame(root, 5), np.full((24, 32, 3), 90, np.uint8))
    return frame(root, 5)


def truncated(root: Path) -> Path:
    """Frame 4 of squares-a without its last 100 bytes (its header whole)."""
    path = frame(root, 4)
    path.write_bytes(path.read_bytes()[:-100])
    return path


def damaged_inside(root: Path) -> Path:
    """Frame 4 of squares-a with a zeroed stretch: its header and end are whole, its data are not."""
    path = frame(root, 4)
    data = bytearray(path.read_bytes())
    data[-200:-150] = bytes(50)
    path.write_bytes(bytes(data))
    return path


def cli(*words: str | Path) -> int:
    return main(["annotate", *map(str, words)])


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (smaller, "is 32×24, the video's first frame 64×48"),
        (truncated, "the image file ends early (truncated): its decoded pixels would be wrong"),
    ],
)
def test_propose_and_add_refuse_a_bad_frame_before_writing(
    davis: Path, a0: Path, tmp_path: Path, capsys, damage, problem: str
) -> None:
    """propose and the first add name the frame (exit 2, no session folder); the other video is proposed."""
    bad = damage(davis)
    state = tmp_path / "session"
    start = ["--state", state, "--root", davis, "--split", "val"]
    capsys.readouterr()
    assert cli("propose", *start) == 2
    assert capsys.readouterr().err == f"error: {bad}: {problem}\n"
    assert cli("add", *start, "--video", "squares-a", "--frame", "0", "--mask", a0) == 2
    assert capsys.readouterr().err == f"error: {bad}: {problem}\n"
    assert not state.exists()
    assert cli("propose", *start, "--video", "squares-b") == 0
    assert capsys.readouterr().out.startswith("next: squares-b frame 0 ")


def test_the_page_add_is_refused_too(davis: Path, a0: Path, tmp_path: Path) -> None:
    """An addition saved before propagating (the page's) checks the frames first: nothing is written."""
    bad = smaller(davis)
    session = AnnotationSession.open(tmp_path / "session", root=davis, split="val")
    given = session.read_given("squares-a", 0, mask=a0)
    with pytest.raises(DataError) as refused:
        session.add("squares-a", 0, given, propagate=False)
    assert str(refused.value) == f"{bad}: is 32×24, the video's first frame 64×48"
    assert not (tmp_path / "session").exists()


def test_a_session_started_on_frames_of_two_sizes_is_refused_clearly(
    davis: Path, a0: Path, tmp_path: Path, capsys
) -> None:
    """Frames that changed size after the first add: propose names the frame (no engine traceback)."""
    state = tmp_path / "session"
    start = ["--state", state, "--root", davis, "--split", "val"]
    assert cli("add", *start, "--video", "squares-a", "--frame", "0", "--mask", a0) == 0
    (state / "squares-a" / "state.json").touch()  # masks written before the frames changed …
    for mask in (state / "squares-a" / "masks").iterdir():
        mask.unlink()  # … and lost: propagated again
    bad = smaller(davis)
    capsys.readouterr()
    assert cli("propose", "--state", state, "--video", "squares-a") == 2
    assert capsys.readouterr().err == f"error: {bad}: is 32×24, the video's first frame 64×48\n"


def saved_unpropagated(davis: Path, a0: Path, folder: Path) -> AnnotationSession:
    """A session whose frame 0 of squares-a is saved (masks out of date) and whose frame 4 fails to decode."""
    session = AnnotationSession.open(folder, root=davis, split="val")
    session.add("squares-a", 0, session.read_given("squares-a", 0, mask=a0), propagate=False)
    damaged_inside(davis)
    return session


def test_a_failed_propagation_proposes_from_the_annotations(davis: Path, a0: Path, tmp_path: Path) -> None:
    """The page's state of a video whose propagation failed has no masks: the proposal counts distance."""
    session = saved_unpropagated(davis, a0, tmp_path / "session")
    state = session.annotated_state("squares-a")
    assert state is not None and state.masks == [] and state.disagreement == []
    options = ProposalOptions(types="mask")
    proposal = session.propose(options, video="squares-a", states={"squares-a": state})
    assert proposal is not None
    assert (proposal.video, proposal.frame, proposal.kind, proposal.objects) == (
        "squares-a",
        7,
        "mask",
        [1, 2],
    )
    assert proposal.reason.endswith(
        "; the video's masks are not propagated: known from its annotated frames alone"
    )
    with pytest.raises(DataError, match="00004.jpg: corrupt JPEG data"):
        session.propose(options, video="squares-a")  # the saved state: propagated, which names the frame


def test_export_keeps_what_was_annotated(davis: Path, a0: Path, tmp_path: Path, capsys) -> None:
    """annotate export of a video that cannot be propagated: its annotated frame alone, with a warning."""
    state = tmp_path / "session"
    saved_unpropagated(davis, a0, state)
    out = tmp_path / "store"
    capsys.readouterr()
    assert cli("export", "--state", state, "--out", out) == 0
    printed = capsys.readouterr()
    assert printed.err == (
        f"warning: squares-a: its masks could not be propagated ({frame(davis, 4)}: corrupt JPEG data "
        "(Corrupt JPEG data: premature end of data segment): decoders fill it with made-up pixels); only "
        "its 1 annotated frame exported\n"
    )
    assert printed.out.startswith("1 labels written to ")
    records = LabelStore(out).records()
    assert [(r["clip_id"], r["offset"], r["kind"]) for r in records] == [("squares-a", 0, "fine")]
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["unpropagated"] == ["squares-a"]
