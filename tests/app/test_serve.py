"""`annotate serve` as a user runs it: a token on any address but 127.0.0.1; killed during a propagation, it
loses nothing that was submitted, and a restart finishes it."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
from cli.test_dispatch import ASCII_LOCALE

import frugalseg.app
from app.conftest import SESSION_FLAGS, open_session, serve
from frugalseg.cli import main

STATIC = Path(frugalseg.app.__file__).parent / "static"

pytestmark = pytest.mark.slow
VIDEO = "car-shadow"


def test_killed_during_propagation_then_restarted(tmp_path: Path, shared_data: Path) -> None:
    davis, state = shared_data / "davis_dev", tmp_path / "state"
    truth = davis / "Annotations" / "480p" / VIDEO / "00000.png"
    server, address = serve(state, davis)
    try:
        with httpx.Client(base_url=address, timeout=60) as http:
            ids = http.post(f"/api/videos/{VIDEO}/0/upload", content=truth.read_bytes()).json()["rle"]
            assert http.post(f"/api/videos/{VIDEO}/0/submit", json={"mask": ids}).status_code == 202
            server.kill()  # SIGKILL: no cleanup, mid-propagation
            server.wait(30)
    finally:
        server.kill()
    saved, current = open_session(state, davis).saved_state(VIDEO)
    assert len(saved.annotations) == 1 and saved.annotations[0].frame == 0  # the annotation was kept
    assert not current  # and its propagation had not been saved

    server, address = serve(state, davis)
    try:
        with httpx.Client(base_url=address, timeout=60) as http:
            for _ in range(600):
                jobs = http.get("/api/jobs").json()["jobs"]
                if jobs and jobs[-1]["status"] == "done":
                    break
                time.sleep(0.1)
            assert [(j["video"], j["frame"], j["status"]) for j in jobs] == [(VIDEO, None, "done")]
            assert http.get(f"/api/videos/{VIDEO}").json()["annotated"] == [0]
    finally:
        server.terminate()
        server.wait(30)
    cli = tmp_path / "cli"
    add = ["annotate", "add", "--state", str(cli), "--root", str(davis), *SESSION_FLAGS, "--video", VIDEO]
    assert main([*add, "--frame", "0", "--mask", str(truth)]) == 0
    assert (state / VIDEO / "state.json").read_text(encoding="utf-8") == (
        cli / VIDEO / "state.json"
    ).read_text(encoding="utf-8")


def test_another_address_needs_the_printed_token(tmp_path: Path, shared_data: Path) -> None:
    server, address = serve(tmp_path / "state", shared_data / "davis_dev", "--host", "0.0.0.0")
    try:
        assert address.startswith(f"http://{socket.gethostname()}:") and "/?token=" in address
        port, token = address.split(":")[2].split("/")[0], address.split("token=")[1]
        assert len(token) >= 24
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for path in ("/", "/api/session", f"/api/videos/{VIDEO}/0/image.jpg"):
                assert http.get(path).status_code == 401
                assert http.get(path, params={"token": token[:-1]}).status_code == 401
                assert http.get(path, params={"token": token}).status_code == 200
    finally:
        server.terminate()
        server.wait(30)
    assert not (tmp_path / "state").exists()  # nothing was written


def test_the_page_is_served_whole_under_a_locale_that_is_not_utf_8(tmp_path: Path, shared_data: Path) -> None:
    """The page's files are UTF-8 (its "…" and "→"), whatever the locale the server runs in."""
    server, address = serve(tmp_path / "state", shared_data / "davis_dev", env=ASCII_LOCALE)
    try:
        with httpx.Client(base_url=address, timeout=60) as http:
            for path, shipped in (("/", "index.html"), ("/static/page.js", "page.js")):
                answer = http.get(path)
                assert answer.status_code == 200, path
                expected = (STATIC / shipped).read_text(encoding="utf-8")
                assert not expected.isascii() and answer.text == expected, path
    finally:
        server.terminate()
        server.wait(30)
