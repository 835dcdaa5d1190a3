"""The annotation page runs no script from its data: names are written as text, and a Content-Security-Policy
allows the page's own script file alone.

The browser test serves a copy of the DAVIS sample whose video is named as markup with an inline handler,
names its object the same way, and checks in headless Chromium that no handler ran, that the names are
shown as text, and that the policy blocked nothing of the page's own.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from starlette.testclient import TestClient

from app.conftest import serve
from app.test_browser import browser, wait_for  # noqa: F401  (browser: the headless Chromium fixture)
from frugalseg.app import SessionService, create_app
from frugalseg.app.server import SECURITY_HEADERS

STATIC = Path(__file__).resolve().parents[2] / "frugalseg" / "app" / "static"
TITLE = "frugalseg annotate"
HOSTILE_VIDEO = """<img src=x onerror="document.title='XSS video'">"""
HOSTILE_OBJECT = """<img src=x onerror="document.title='XSS object'"><u>markup</u>"""
TOKEN = "page-security-token"


def test_every_response_carries_the_policy(service: SessionService, tmp_path: Path) -> None:
    app = create_app(service, token=TOKEN, exports=tmp_path / "exports")
    with TestClient(app, raise_server_exceptions=False) as client:
        responses = {
            "page": client.get(f"/?token={TOKEN}"),
            "script": client.get("/static/page.js"),  # no token: the package's file, no data
            "style": client.get("/static/page.css"),
            "api": client.get(f"/api/session?token={TOKEN}"),
            "no token": client.get("/"),
            "unknown static file": client.get("/static/index.html"),
        }
    codes = {what: response.status_code for what, response in responses.items()}
    assert codes == {
        "page": 200, "script": 200, "style": 200, "api": 200, "no token": 401, "unknown static file": 404,
    }  # fmt: skip
    for what, response in responses.items():
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy, what
        assert response.headers["x-content-type-options"] == "nosniff", what
        assert response.headers["referrer-policy"] == "no-referrer", what  # the token is in the page's URL
    assert responses["script"].headers["content-type"].startswith("text/javascript")
    assert responses["script"].text == (STATIC / "page.js").read_text(encoding="utf-8")
    assert responses["page"].headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]


def test_the_page_has_no_inline_script_handler_or_style() -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/page.js">']
    assert not re.search(r"\son[a-z]+\s*=|\sstyle\s*=|<style", page)
    script = (STATIC / "page.js").read_text(encoding="utf-8")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)


def hostile_davis(root: Path, davis: Path) -> Path:
    """A DAVIS layout of one video, blackswan's first 10 frames (linked), named `HOSTILE_VIDEO`."""
    for folder, suffix in (("JPEGImages", "jpg"), ("Annotations", "png")):
        video = root / folder / "480p" / HOSTILE_VIDEO
        video.mkdir(parents=True)
        for frame in (f"{t:05d}.{suffix}" for t in range(10)):
            (video / frame).symlink_to(davis / folder / "480p" / "blackswan" / frame)
    return root


def call(address: str, path: str, body: bytes | None = None, kind: str = "application/json") -> dict:
    """The JSON answer of the served page's API at ``path`` (with the address's token)."""
    base = urlsplit(address)
    request = urllib.request.Request(f"{base.scheme}://{base.netloc}{path}?{base.query}", data=body)
    if body is not None:
        request.add_header("Content-Type", kind)
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


@pytest.fixture
def hostile(tmp_path: Path, shared_data: Path) -> Iterator[str]:
    """`annotate serve` with a token on `hostile_davis`; its first mask names its object `HOSTILE_OBJECT`."""
    root = hostile_davis(tmp_path / "davis", shared_data / "davis_dev")
    server, address = serve(tmp_path / "state", root, "--token", TOKEN)
    frame0 = f"/api/videos/{quote(HOSTILE_VIDEO, safe='')}/0"
    truth = root / "Annotations" / "480p" / HOSTILE_VIDEO / "00000.png"
    uploaded = call(address, frame0 + "/upload", truth.read_bytes())
    body = {"mask": uploaded["rle"], "names": {"1": HOSTILE_OBJECT}}
    job = call(address, frame0 + "/submit", json.dumps(body).encode())["job"]
    for _ in range(600):  # the propagation, so that the page opens on a proposal and the object's name
        if next(j for j in call(address, "/api/jobs")["jobs"] if j["id"] == job["id"])["status"] == "done":
            break
        time.sleep(0.2)
    yield address
    server.terminate()
    server.wait(30)


@pytest.mark.slow
def test_hostile_names_run_nothing_in_the_browser(browser, hostile: str) -> None:  # noqa: F811
    browser.get(hostile)
    wait_for(browser, "return document.body.dataset.ready === '1'")
    shown = browser.execute_script(
        "return {title: document.title, images: document.querySelectorAll('img[src=x], u').length,"
        " video: document.querySelector('tr.video td').textContent,"
        " proposal: document.getElementById('proposal').textContent,"
        " objects: Array.from(document.querySelectorAll('#object option')).map((o) => o.textContent),"
        " frame: document.getElementById('frameinfo').textContent}"
    )
    assert shown["title"] == TITLE  # neither handler ran
    assert shown["images"] == 0  # nor was any name parsed as HTML
    assert shown["video"] == HOSTILE_VIDEO
    assert shown["proposal"].startswith(f"Next: {HOSTILE_VIDEO} frame ")
    assert shown["objects"] == [f"1: {HOSTILE_OBJECT}"]
    assert shown["frame"].startswith(HOSTILE_VIDEO)
    # the page works under its own policy: nothing of its own was refused
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []
