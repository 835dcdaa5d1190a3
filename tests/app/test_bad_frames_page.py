"""The page over a clip with a bad frame: serve refuses it first; a propagation that fails breaks nothing.

A frame damaged inside (header and end whole) passes the cheap check and fails only where the
propagation decodes it: the saved annotation stays, proposals go on from it, and opening that frame
logs that the click model could not ready it instead of an unhandled exception.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from data.fake_davis import jpeg, squares, write_moving_squares
from starlette.testclient import TestClient

from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.app import SessionService, create_app
from frugalseg.app.server import encode_rle
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main

pytestmark = pytest.mark.usefixtures("one_cv_thread")


@pytest.fixture
def davis(tmp_path: Path) -> Path:
    root = write_moving_squares(tmp_path / "davis")
    shutil.rmtree(root / "Annotations")
    return root


def frame(root: Path, t: int) -> Path:
    return root / "JPEGImages" / "480p" / "squares-a" / f"{t:05d}.jpg"


@pytest.fixture
def service(davis: Path, tmp_path: Path) -> SessionService:
    """The page over squares-a and squares-b, frame 4 of squares-a damaged inside (a zeroed stretch)."""
    path = frame(davis, 4)
    data = bytearray(path.read_bytes())
    data[-200:-150] = bytes(50)
    path.write_bytes(bytes(data))
    session = AnnotationSession.open(tmp_path / "state", root=davis, split="val")
    return SessionService(session, ProposalOptions(types="mask"))


@pytest.fixture
def client(service: SessionService, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(service, exports=tmp_path / "exports", max_upload=1 << 20)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


def test_a_failed_propagation_leaves_proposals_and_frames_working(
    client: TestClient, service: SessionService, davis: Path, tmp_path: Path, caplog
) -> None:
    sent = client.post("/api/videos/squares-a/0/submit", json={"mask": encode_rle(squares(0, 0))})
    assert sent.status_code == 202, sent.text
    service.wait()
    jobs = client.get("/api/jobs").json()["jobs"]
    assert jobs[-1]["status"] == "failed"
    assert jobs[-1]["error"] == (
        f"{frame(davis, 4)}: corrupt JPEG data (Corrupt JPEG data: premature end of data "
        "segment): decoders fill it with made-up pixels"
    )
    assert (tmp_path / "state" / "squares-a" / "annotated").is_dir()  # the annotation is saved

    answer = client.get("/api/proposal?video=squares-a")
    assert answer.status_code == 200, answer.text
    proposal = answer.json()["proposal"]
    assert (proposal["video"], proposal["frame"], proposal["kind"]) == ("squares-a", 7, "mask")
    assert proposal["reason"].endswith(
        "the video's masks are not propagated: known from its annotated frames alone"
    )

    service.wait()  # the proposal may have started the video's propagation again; it fails again
    exported = client.post("/api/export")  # what was annotated, as `annotate export` exports it
    assert exported.status_code == 200, exported.text
    records = LabelStore(exported.json()["store"]).records()
    assert [(r["clip_id"], r["offset"], r["kind"]) for r in records] == [("squares-a", 0, "fine")]

    with caplog.at_level(logging.WARNING, logger="frugalseg.app.jobs"):
        opened = client.get("/api/videos/squares-a/4/mask")  # its background task readies the frame
    assert opened.status_code == 200, opened.text
    readied = [
        r.getMessage()
        for r in caplog.records
        if r.name == "frugalseg.app.jobs" and "readied" in r.getMessage()
    ]
    assert readied == [
        f"frame 4 of squares-a not readied for clicks: {frame(davis, 4)}: corrupt JPEG data (Corrupt JPEG "
        "data: premature end of data segment): decoders fill it with made-up pixels"
    ]


def test_serve_refuses_a_clip_of_two_frame_sizes(davis: Path, tmp_path: Path, capsys) -> None:
    """Every video is checked before the page serves: a frame of another size is named, exit 2."""
    jpeg(frame(davis, 5), np.full((24, 32, 3), 90, np.uint8))
    state = tmp_path / "state"
    command = [
        "annotate",
        "serve",
        "--state",
        str(state),
        "--root",
        str(davis),
        "--split",
        "val",
        "--port",
        "0",
    ]
    assert main(command) == 2
    assert capsys.readouterr().err == f"error: {frame(davis, 5)}: is 32×24, the video's first frame 64×48\n"
    assert not state.exists()


def test_a_full_disk_is_said_naming_the_file_and_a_failed_propagation_without_a_class_name(
    client: TestClient, tmp_path: Path, monkeypatch
) -> None:
    """A full disk had been "internal error (see the server's log)" on Submit and Export (its ENOSPC, raised
    by write or fsync, names no file); a failed propagation's reason began with its class (``DataError``)."""
    import errno

    import frugalseg.data.files
    from frugalseg.app.jobs import job_problem
    from frugalseg.errors import DataError

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(frugalseg.data.files.os, "fsync", full)
    sent = client.post("/api/videos/squares-b/0/submit", json={"mask": encode_rle(squares(0, 0))})
    said = sent.json()["error"]
    assert sent.status_code == 507 and said.startswith(str(tmp_path / "state")), said
    assert said.endswith(": No space left on device (the disk is full: free some space and try again)")
    assert not list((tmp_path / "state").rglob(".*.tmp"))
    assert job_problem(DataError("a.png", "truncated")) == "a.png: truncated"
    assert job_problem(PermissionError(errno.EACCES, "Permission denied", "/s")) == "/s: Permission denied"
    assert job_problem(ValueError("odd")) == "ValueError: odd"


def test_a_frame_removed_while_the_page_is_open_is_said_not_shown_under_another_frames_mask(
    davis: Path, tmp_path: Path
) -> None:
    """A person's frames (`--format video`): with shot 06 gone, loop frame 5 showed shot 07's image beside
    shot 06's mask, and the video's info failed with an IndexError ("internal error")."""
    clip = tmp_path / "My clip"
    clip.mkdir()
    for t in range(10):
        shutil.copy(frame(davis, t), clip / f"shot {t + 1:02d}.jpg")
    session = AnnotationSession.open(tmp_path / "state", root=clip, format="video")
    service = SessionService(session, ProposalOptions(types="mask"))
    app = create_app(service, exports=tmp_path / "exports", max_upload=1 << 20)
    with TestClient(app, raise_server_exceptions=False) as client:
        sent = client.post("/api/videos/My clip/9/submit", json={"mask": encode_rle(squares(9, 0))})
        assert sent.status_code == 202, sent.text
        service.wait()
        assert client.get("/api/videos/My clip").status_code == 200
        (clip / "shot 06.jpg").rename(tmp_path / "shot 06.jpg")
        for route in ("/api/videos/My clip", "/api/videos/My clip/5/image.jpg", "/api/videos/My clip/4/mask"):
            answer = client.get(route)
            assert answer.status_code == 400, (route, answer.text)
            assert answer.json()["error"].startswith(
                f"{clip}: its frames changed since the session annotated"
            )
