"""The page's Export says how many labels its store holds, of every kind (clicks and boxes labels included),
as ``annotate export`` does, not how many frames its tool files hold."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from data.fake_davis import squares, write_moving_squares
from starlette.testclient import TestClient

from frugalseg.active.objects.session.given import DrawnBox, GivenAnnotation
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.active.objects.simulation.annotation_types import GivenClick
from frugalseg.app import SessionService, create_app
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import main
from frugalseg.interop import stored_frames

FRAMES = 6
#: The person's clicks on frame 3 of squares-a: on object 1, off it (background), on object 2.
CLICKS = [GivenClick(1, 8, 12, True), GivenClick(1, 30, 5, False), GivenClick(2, 45, 25, True)]


@pytest.fixture
def session(tmp_path: Path, one_cv_thread) -> AnnotationSession:
    """Two clips of 6 frames: a drawn mask and clicks on squares-a, a box on squares-b (its frame 0)."""
    root = write_moving_squares(tmp_path / "own")
    shutil.rmtree(root / "Annotations")  # a person's frames: no masks, no splits
    shutil.rmtree(root / "ImageSets")
    session = AnnotationSession.open(tmp_path / "state", root=root, max_frames=FRAMES)
    shape = squares(0, 0).shape
    session.add("squares-a", 0, GivenAnnotation(Path("a0"), shape, squares(0, 0)))
    session.add("squares-a", 3, GivenAnnotation(Path("a3"), shape, clicks=CLICKS))
    session.add(
        "squares-b", 0, GivenAnnotation(Path("b0"), shape, squares(0, 1), boxes={1: DrawnBox(2, 6, 18, 22)})
    )
    return session


def test_export_counts_every_label_of_its_store(session: AnnotationSession, tmp_path: Path, capsys) -> None:
    service = SessionService(session)
    with TestClient(
        create_app(service, exports=tmp_path / "exports"), raise_server_exceptions=False
    ) as client:
        exported = client.post("/api/export")
        assert exported.status_code == 200, exported.text
        again = client.post("/api/export")  # an unchanged session: the same store, the same labels
    store = tmp_path / "exports" / "store-001"
    kinds = Counter((r["clip_id"], r["kind"]) for r in LabelStore(store).records())
    assert kinds == {
        ("squares-a", "fine"): 1,
        ("squares-a", "pseudo"): 5,
        ("squares-a", "clicks"): 1,
        ("squares-b", "pseudo"): 6,
        ("squares-b", "boxes"): 1,
    }
    assert len(stored_frames(LabelStore(store), session.format)) == 12  # what the tool files hold
    assert exported.json()["store"] == str(store)
    assert exported.json()["written"] == 14
    assert exported.json()["unchanged"] is False  # the page had said "written" again for the same store
    assert again.json() == exported.json() | {"unchanged": True}
    # `annotate export` of the same session says the same
    capsys.readouterr()
    assert main(["annotate", "export", "--state", str(session.folder), "--out", str(tmp_path / "cli")]) == 0
    assert capsys.readouterr().out.startswith(f"14 labels written to {tmp_path / 'cli'} ")
